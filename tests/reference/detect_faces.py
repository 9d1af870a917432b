"""OpenCV's face boxes on kyara's test scenes, the reference for kyara's LBP cascade detector.

The scenes are never stored: kyara draws them from the face crops in ../shared (deterministic
for a seed), this script reads them, runs cv2.CascadeClassifier.detectMultiScale with the
settings of lbpcascade_animeface's reference usage and records the boxes as JSON. The
integration test `dataset::opencv_agreement_on_scenes` draws the same scenes again (checking
each scene's pixel hash against the one recorded here) and compares kyara's boxes.

    cargo run --release -p trainer -- dataset scenes \
        --faces ../shared/data/anime-faces-64 --out /tmp/scenes --count 40 --seed 0
    pip install "opencv-python-headless<5"
    python tests/reference/detect_faces.py --scenes /tmp/scenes \
        --cascade ../shared/models/lbpcascade_animeface/lbpcascade_animeface.xml \
        --out tests/reference/detect_faces.json
"""

import argparse
import hashlib
import json
import os

import cv2

SCALE_FACTOR = 1.1
MIN_NEIGHBORS = 5
MIN_SIZE = (24, 24)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", required=True, help="folder written by `trainer dataset scenes`")
    ap.add_argument("--cascade", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    with open(os.path.join(args.scenes, "truth.json")) as f:
        truth = json.load(f)
    cascade = cv2.CascadeClassifier(args.cascade)
    if cascade.empty():
        raise SystemExit(f"OpenCV cannot load {args.cascade}")

    scenes = []
    for s in truth["scenes"]:
        bgr = cv2.imread(os.path.join(args.scenes, s["file"]), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if hashlib.sha256(rgb.tobytes()).hexdigest() != s["rgb_sha256"]:
            raise SystemExit(f"{s['file']}: pixels differ from truth.json")
        gray = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        boxes = cascade.detectMultiScale(
            gray, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS, minSize=MIN_SIZE
        )
        raw = cascade.detectMultiScale(
            gray, scaleFactor=SCALE_FACTOR, minNeighbors=0, minSize=MIN_SIZE
        )
        scenes.append(
            {
                "file": s["file"],
                "rgb_sha256": s["rgb_sha256"],
                "boxes": sorted([int(v) for v in b] for b in boxes),
                "raw_hits": len(raw),
                # Every raw window hit, sorted: checks the evaluation itself, before grouping.
                "raw_sha256": hashlib.sha256(
                    json.dumps(sorted([int(v) for v in b] for b in raw)).encode()
                ).hexdigest(),
            }
        )
    out = {
        "opencv": cv2.__version__,
        "faces": "data/anime-faces-64",
        "seed": truth["seed"],
        "count": len(scenes),
        "scale_factor": SCALE_FACTOR,
        "min_neighbors": MIN_NEIGHBORS,
        "min_size": list(MIN_SIZE),
        "scenes": scenes,
    }
    head = json.dumps({k: v for k, v in out.items() if k != "scenes"})[:-1]
    with open(args.out, "w") as f:
        f.write(head + ', "scenes": [\n' + ",\n".join(json.dumps(s) for s in scenes) + "\n]}\n")
    total = sum(len(s["boxes"]) for s in scenes)
    print(f"{len(scenes)} scenes, {total} boxes -> {args.out}")


if __name__ == "__main__":
    main()
