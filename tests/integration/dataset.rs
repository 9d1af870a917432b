//! `trainer dataset build` end to end on illustrations drawn here with a tiny cascade, and the
//! detector against OpenCV's boxes on scenes made from ../shared (skipped without it).

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{Rgb, RgbImage};
use trainer::dataset::scenes::{make_scenes, rgb_sha256, sha256_hex};
use trainer::dataset::{Cascade, DetectParams, GrayImage, Rect};

use crate::fixtures::*;

/// A 6x6-window, one-stump cascade that fires where a 2x2-block LBP code is 0: a bright centre
/// block with all eight blocks around it darker.
const BRIGHT_CENTRE_CASCADE: &str = r#"<?xml version="1.0"?>
<opencv_storage>
<cascade>
  <stageType>BOOST</stageType>
  <featureType>LBP</featureType>
  <height>6</height>
  <width>6</width>
  <stageNum>1</stageNum>
  <stages>
    <_>
      <maxWeakCount>1</maxWeakCount>
      <stageThreshold>5.0e-01</stageThreshold>
      <weakClassifiers>
        <_>
          <internalNodes>0 -1 0 1 0 0 0 0 0 0 0</internalNodes>
          <leafValues>1.0 -1.0</leafValues></_></weakClassifiers></_></stages>
  <features><_><rect>0 0 2 2</rect></_></features></cascade>
</opencv_storage>
"#;

/// Draws a "face" for [`BRIGHT_CENTRE_CASCADE`]: a `side`-pixel dark square whose shading
/// follows `style` (so faces differ in their perceptual hash), with a white centre third.
fn draw_face(img: &mut RgbImage, x0: u32, y0: u32, side: u32, style: u32) {
    for y in 0..side {
        for x in 0..side {
            let third = side / 3;
            let centre = (third..2 * third).contains(&x) && (third..2 * third).contains(&y);
            let v = if centre {
                255
            } else {
                let t = match style {
                    0 => x * 80 / side,
                    1 => (side - 1 - x) * 80 / side,
                    3 => y * 80 / side,
                    _ => ((x / 4 + y / 4) % 2) * 70,
                };
                t as u8
            };
            img.put_pixel(x0 + x, y0 + y, Rgb([v, v, v / 2]));
        }
    }
}

fn illustration(faces: &[(u32, u32, u32, u32)], speck: Option<(u32, u32)>) -> RgbImage {
    let mut img = RgbImage::from_pixel(160, 120, Rgb([140, 130, 120]));
    for &(x, y, side, style) in faces {
        draw_face(&mut img, x, y, side, style);
    }
    if let Some((x, y)) = speck {
        img.put_pixel(x, y, Rgb([141, 130, 120]));
    }
    img
}

/// `ill/`: a.png (2 faces), b.png (a copy of a.png's bytes), c.png (a.png with one background
/// pixel changed: both faces near duplicates), d.png (1 face + 1 too small), bad.png (not an
/// image), with sidecar tags.
fn illustrations(dir: &Path) -> PathBuf {
    let ill = dir.join("ill");
    std::fs::create_dir_all(&ill).unwrap();
    let a_faces = [(8, 8, 48, 0), (96, 56, 48, 1)];
    illustration(&a_faces, None)
        .save(ill.join("a.png"))
        .unwrap();
    std::fs::copy(ill.join("a.png"), ill.join("b.png")).unwrap();
    illustration(&a_faces, Some((150, 5)))
        .save(ill.join("c.png"))
        .unwrap();
    illustration(&[(60, 30, 54, 2), (10, 70, 36, 3)], None)
        .save(ill.join("d.png"))
        .unwrap();
    std::fs::write(ill.join("bad.png"), b"this is not a picture").unwrap();
    for (name, tags) in [
        ("a", "red hair, green eyes"),
        ("b", "red hair, green eyes"),
        ("c", "red hair, green eyes"),
        ("d", "blue hair, purple eyes"),
    ] {
        std::fs::write(ill.join(format!("{name}.txt")), tags).unwrap();
    }
    ill
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn dataset_build_crops_dedups_and_trains() {
    let tmp = tempfile::tempdir().unwrap();
    let ill = illustrations(tmp.path());
    let cascade = tmp.path().join("tiny.xml");
    std::fs::write(&cascade, BRIGHT_CENTRE_CASCADE).unwrap();
    let out = tmp.path().join("faces-ds");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "dataset",
            "build",
            "--from",
            ill.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--cascade",
            cascade.to_str().unwrap(),
            "--resolution",
            "16",
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        trainer(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let o = run(&[]);
    assert!(o.status.success(), "build failed: {}", stderr(&o));
    let (so, se) = (stdout(&o), stderr(&o));
    assert!(se.contains("bad.png: not a readable image"), "{se}");
    assert!(so.contains("1 exact duplicates"), "{so}");

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let n = |k: &str| summary[k].as_u64().unwrap();
    assert_eq!(n("illustrations"), 5, "{summary}");
    assert_eq!(n("read"), 3, "{summary}"); // a, c, d (b is a's copy, bad.png unreadable)
    assert_eq!(n("exact_duplicates"), 1);
    assert_eq!(n("faces_found"), 6, "{summary}");
    assert_eq!(n("too_small"), 1, "{summary}");
    assert_eq!(n("near_duplicates"), 2, "{summary}");
    assert_eq!(n("near_groups"), 2, "{summary}");
    assert_eq!(n("written"), 3, "{summary}");

    let meta = std::fs::read_to_string(out.join("metadata.csv")).unwrap();
    let rows: Vec<&str> = meta.lines().collect();
    assert_eq!(
        rows[0],
        "file_name,tags,source,x,y,width,height,tag_confidence"
    );
    assert_eq!(rows.len(), 4, "{meta}");
    assert!(
        rows[1].starts_with("faces/000000.png,\"red hair, green eyes\",a.png,"),
        "{meta}"
    );
    assert!(
        rows[3].contains("\"blue hair, purple eyes\",d.png"),
        "{meta}"
    );
    // The boxes sit on the drawn faces: centred on the 48-pixel square at (8, 8), between its
    // white centre third and its whole size.
    let first: Vec<i32> = csv_rows(&out.join("metadata.csv"))[1][3..7]
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    let (x, y, w, h) = (first[0], first[1], first[2], first[3]);
    assert!(
        (x + w / 2 - 32).abs() <= 3 && (y + h / 2 - 32).abs() <= 3,
        "{meta}"
    );
    assert!((16..=48).contains(&w) && h == w, "{meta}");
    for i in 0..3 {
        let img = image::open(out.join(format!("faces/{i:06}.png"))).unwrap();
        assert_eq!((img.width(), img.height()), (16, 16));
    }
    let dups = std::fs::read_to_string(out.join("duplicates.csv")).unwrap();
    assert!(dups.contains("exact,a.png,b.png,0"), "{dups}");
    assert!(dups.contains("near,faces/000000.png,\"c.png#"), "{dups}");

    // The result trains as it is.
    let runs = tmp.path().join("runs");
    let o = trainer(&tiny_train_args(&out, &runs, "2"));
    assert!(
        o.status.success(),
        "train on the built dataset: {}",
        stderr(&o)
    );

    // A non-empty --out is left alone without --force.
    let before = std::fs::read(out.join("metadata.csv")).unwrap();
    let o = run(&["--min-face", "8"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is not empty; give --force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(out.join("metadata.csv")).unwrap(), before);
    // With --force it is rebuilt: a smaller --min-face keeps the small face too.
    let o = run(&["--min-face", "8", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let meta = std::fs::read_to_string(out.join("metadata.csv")).unwrap();
    assert_eq!(meta.lines().count(), 5, "{meta}");
}

#[test]
fn dataset_build_tags_untagged_faces_with_the_tagger() {
    let tmp = tempfile::tempdir().unwrap();
    let ill = illustrations(tmp.path());
    // Keep d.png's tags; a.png and c.png lose theirs.
    for name in ["a", "b", "c"] {
        std::fs::remove_file(ill.join(format!("{name}.txt"))).unwrap();
    }
    let cascade = tmp.path().join("tiny.xml");
    std::fs::write(&cascade, BRIGHT_CENTRE_CASCADE).unwrap();
    let out = tmp.path().join("tagged");
    let tagger = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tagger64");
    let o = trainer(&[
        "dataset",
        "build",
        "--from",
        ill.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--cascade",
        cascade.to_str().unwrap(),
        "--resolution",
        "16",
        "--tagger",
        tagger.to_str().unwrap(),
        "--tag-threshold",
        "0",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("2 faces tagged by the tagger"),
        "{}",
        stdout(&o)
    );
    let mut reader = csv_rows(&out.join("metadata.csv"));
    assert_eq!(reader.remove(0)[7], "tag_confidence");
    assert_eq!(reader.len(), 3);
    for row in &reader[..2] {
        // Threshold 0: every exclusive group gets its most probable tag (hair, eyes).
        assert!(
            row[1].contains("hair") && row[1].contains("eyes"),
            "{row:?}"
        );
        let c: f32 = row[7].parse().unwrap();
        assert!((0.0..=1.0).contains(&c), "{row:?}");
    }
    // Tags from the illustration are kept as they are, with no confidence.
    assert_eq!(reader[2][1], "blue hair, purple eyes");
    assert_eq!(reader[2][7], "");
}

/// The fields of every line of a CSV file (a naive split that respects double quotes).
fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let (mut fields, mut cur, mut quoted) = (Vec::new(), String::new(), false);
            for ch in line.chars() {
                match ch {
                    '"' => quoted = !quoted,
                    ',' if !quoted => fields.push(std::mem::take(&mut cur)),
                    c => cur.push(c),
                }
            }
            fields.push(cur);
            fields
        })
        .collect()
}

#[test]
fn dataset_build_refuses_bad_cascades_and_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let ill = illustrations(tmp.path());
    let truncated = tmp.path().join("truncated.xml");
    std::fs::write(&truncated, &BRIGHT_CENTRE_CASCADE[..300]).unwrap();
    let haar = tmp.path().join("haar.xml");
    std::fs::write(&haar, BRIGHT_CENTRE_CASCADE.replace(">LBP<", ">HAAR<")).unwrap();
    let out = tmp.path().join("out");
    let (i, o) = (ill.to_str().unwrap(), out.to_str().unwrap());
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "dataset",
                "build",
                "--from",
                i,
                "--out",
                o,
                "--cascade",
                "nope.xml",
            ],
            "cannot read the cascade file nope.xml",
        ),
        (
            &[
                "dataset",
                "build",
                "--from",
                i,
                "--out",
                o,
                "--cascade",
                truncated.to_str().unwrap(),
            ],
            "not a well-formed XML file",
        ),
        (
            &[
                "dataset",
                "build",
                "--from",
                i,
                "--out",
                o,
                "--cascade",
                haar.to_str().unwrap(),
            ],
            "featureType is HAAR",
        ),
        (
            &[
                "dataset",
                "build",
                "--from",
                "no-such-dir",
                "--out",
                o,
                "--whole-images",
            ],
            "is not a folder of illustrations",
        ),
        (&["dataset", "build", "--from", i, "--out", o], "--cascade"),
    ];
    for (args, needle) in cases {
        let r = trainer(args);
        assert!(!r.status.success(), "{args:?} succeeded");
        assert!(stderr(&r).contains(needle), "{args:?}: {}", stderr(&r));
    }
    assert!(!out.join("metadata.csv").exists());
}

/// ../shared beside the repository (or `$KYARA_SHARED`), when it is there.
fn shared_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KYARA_SHARED") {
        return Some(PathBuf::from(p));
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared"))
        .find(|s| s.join("models/lbpcascade_animeface").is_dir())
}

/// Recorded by tests/reference/detect_faces.py.
#[derive(serde::Deserialize)]
struct Reference {
    opencv: String,
    seed: u64,
    count: usize,
    scenes: Vec<RefScene>,
}

#[derive(serde::Deserialize)]
struct RefScene {
    file: String,
    rgb_sha256: String,
    boxes: Vec<[i32; 4]>,
    raw_hits: usize,
    raw_sha256: String,
}

/// Python's `json.dumps(sorted(boxes))`, for comparing raw hits by hash.
fn py_json_boxes(boxes: &[Rect]) -> String {
    let mut v: Vec<[i32; 4]> = boxes
        .iter()
        .map(|r| [r.x, r.y, r.width, r.height])
        .collect();
    v.sort();
    let items: Vec<String> = v
        .iter()
        .map(|b| format!("[{}, {}, {}, {}]", b[0], b[1], b[2], b[3]))
        .collect();
    format!("[{}]", items.join(", "))
}

#[test]
fn opencv_agreement_on_scenes() {
    let Some(shared) = shared_dir() else {
        eprintln!(
            "skipped: no ../shared (lbpcascade_animeface and anime-faces-64) beside the repository"
        );
        return;
    };
    let cascade_path = shared.join("models/lbpcascade_animeface/lbpcascade_animeface.xml");
    let faces = shared.join("data/anime-faces-64");
    if !cascade_path.is_file() || !faces.is_dir() {
        eprintln!(
            "skipped: {} or {} is missing",
            cascade_path.display(),
            faces.display()
        );
        return;
    }
    let reference: Reference = serde_json::from_str(include_str!("../reference/detect_faces.json"))
        .expect("tests/reference/detect_faces.json");
    let cascade = Cascade::load(&cascade_path).unwrap();
    let scenes = make_scenes(&faces, reference.count, reference.seed, 0.0).unwrap();
    let params = DetectParams::default();

    let (mut total, mut matched, mut identical, mut extra) = (0, 0, 0, 0);
    let (mut raw_same, mut raw_ours, mut raw_cv) = (0, 0, 0);
    let (mut truth_total, mut found, mut false_pos) = (0, 0, 0);
    let mut pixels = 0usize;
    let mut seconds = 0.0;
    for (scene, r) in scenes.iter().zip(&reference.scenes) {
        assert_eq!(scene.name, r.file);
        assert_eq!(
            rgb_sha256(&scene.image),
            r.rgb_sha256,
            "{}: the scene differs from the one OpenCV saw; rerun tests/reference/detect_faces.py",
            r.file
        );
        let gray = GrayImage::from_rgb(&scene.image);
        let t = Instant::now();
        let ours = cascade.detect(&gray, &params);
        seconds += t.elapsed().as_secs_f64();
        pixels += gray.width * gray.height;
        let raw = cascade.detect_raw(&gray, &params);
        raw_ours += raw.len();
        raw_cv += r.raw_hits;
        if sha256_hex(py_json_boxes(&raw).as_bytes()) == r.raw_sha256 {
            raw_same += 1;
        } else if let Some(d) = std::env::var_os("KYARA_DUMP_RAW") {
            // For diagnosis: kyara's raw hits of the scenes that differ, as JSON.
            std::fs::write(
                Path::new(&d).join(format!("{}.json", r.file)),
                py_json_boxes(&raw),
            )
            .unwrap();
        }
        let cv: Vec<Rect> = r
            .boxes
            .iter()
            .map(|b| Rect::new(b[0], b[1], b[2], b[3]))
            .collect();
        let best = |b: &Rect, among: &[Rect]| among.iter().map(|o| b.iou(o)).fold(0.0, f64::max);
        total += cv.len();
        matched += cv.iter().filter(|b| best(b, &ours) >= 0.9).count();
        identical += cv.iter().filter(|b| ours.contains(b)).count();
        extra += ours.iter().filter(|b| best(b, &cv) < 0.5).count();
        // Against the truth: a box whose centre lies in a pasted face, 0.3-1.2 x its side.
        truth_total += scene.faces.len();
        let hits = |t: &Rect, b: &Rect| {
            let (cx, cy) = (b.x + b.width / 2, b.y + b.height / 2);
            (t.x..t.x + t.width).contains(&cx)
                && (t.y..t.y + t.height).contains(&cy)
                && (0.3..=1.2).contains(&(f64::from(b.width) / f64::from(t.width)))
        };
        found += scene
            .faces
            .iter()
            .filter(|f| ours.iter().any(|b| hits(&f.rect, b)))
            .count();
        false_pos += ours
            .iter()
            .filter(|b| !scene.faces.iter().any(|f| hits(&f.rect, b)))
            .count();
    }
    eprintln!(
        "OpenCV {}: {matched}/{total} boxes matched (IoU >= 0.9), {identical} identical, {extra} extra; raw hits {raw_ours} \
         vs {raw_cv}, identical in {raw_same}/{} scenes; truth: {found}/{truth_total} faces found, \
         {false_pos} false positives; detection {:.2} MP/s (test profile, 1 thread)",
        reference.opencv,
        scenes.len(),
        pixels as f64 / 1e6 / seconds
    );
    assert!(total > 50);
    assert!(matched as f64 >= 0.95 * total as f64, "{matched}/{total}");
    assert!(
        identical as f64 >= 0.95 * total as f64,
        "{identical}/{total} identical"
    );
    assert!(
        extra as f64 <= (0.05 * total as f64).max(1.0),
        "{extra} extra boxes"
    );
}
