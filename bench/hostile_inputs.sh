#!/usr/bin/env bash
# Hostile but fair inputs to `trainer`, each with the message it now gives (first line of the
# error) and its exit status. Nothing here may panic (exit 101), abort (134) or hang:
#   bench/hostile_inputs.sh
# Needs a release build (cargo build --release -p trainer). Works in a temporary folder.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${KYARA_TRAINER:-${CARGO_TARGET_DIR:-target}/release/trainer}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
MODEL=www/models/anime64
bad=0

# One case: NAME, then the command. Prints the exit status and the error's first line.
case_() {
  local name=$1; shift
  local out status
  out=$(timeout 120 "$@" 2>&1 >/dev/null); status=$?
  local msg
  msg=$(printf '%s\n' "$out" | grep -v '^loading\|^decoded\|^[0-9]* images' \
    | grep -m1 -A1 -i 'error\|warning\|skipped\|refus\|cannot\|not\|must' | tr '\n' ' ' | cut -c1-400)
  [ -n "$msg" ] || msg=$(printf '%s\n' "$out" | tail -1)
  printf '| %s | %s | %s |\n' "$name" "$status" "${msg//|/\\|}"
  case $status in 101|134|124|137) bad=$((bad + 1)) ;; esac
}
card_with() { # card_with DIR PYTHON-EXPR-ON-c : a copy of the default model with its card edited
  # (and unsealed, as a card from before the seal, so that the check each row is about speaks;
  # the seal has rows of its own below)
  mkdir -p "$1"; cp "$MODEL"/* "$1"/
  python3 - "$1/model.json" "$2" <<'PY'
import json, sys
p, expr = sys.argv[1], sys.argv[2]
c = json.load(open(p)); exec(expr); c.pop("seal", None); json.dump(c, open(p, "w"))
PY
}

# A small dataset: faces drawn by the shipped model.
"$BIN" generate --model "$MODEL" --seeds 0-11 --out "$W/faces" >/dev/null 2>&1
mk_data() { # mk_data DIR: 12 images + metadata.csv (red/blonde hair, blue/green eyes)
  mkdir -p "$1"; cp "$W"/faces/*.png "$1"/
  { echo "file_name,tags"; i=0; for f in "$1"/*.png; do
      echo "$(basename "$f"),\"$([ $((i % 2)) = 0 ] && echo red || echo blonde) hair, $([ $((i % 3)) = 0 ] && echo blue || echo green) eyes\""
      i=$((i + 1)); done; } > "$1/metadata.csv"
}
TINY=(--quiet --g-channels 8 --g-blocks 1 --d-channels 8 --latent-dim 16 --resolution 16 --no-cache)
echo "| input | exit | message |"
echo "|---|---|---|"

card_with "$W/abs" 'c["weights"] = "/etc/passwd"'
case_ "card naming an absolute weights path" "$BIN" generate --model "$W/abs" --seeds 1 --out "$W/o"
card_with "$W/zero" 'c["weights"] = "../../dev/zero"'
case_ "card naming ../../dev/zero" "$BIN" convert --model "$W/zero" --out "$W/o2"
card_with "$W/blocks" 'c["generator"]["res_blocks"] = 10**9'
case_ "card: res_blocks 1e9" "$BIN" generate --model "$W/blocks" --seeds 1 --out "$W/o"
card_with "$W/chan" 'c["generator"]["channels"] = 2**62'
case_ "card: channels 2^62" "$BIN" generate --model "$W/chan" --seeds 1 --out "$W/o"
card_with "$W/res" 'c["generator"]["resolution"] = 2**40; c["resolution"] = 2**40'
case_ "card: resolution 2^40" "$BIN" generate --model "$W/res" --seeds 1 --out "$W/o"
card_with "$W/order" 'c["vocab"]["tags"].reverse()'
case_ "card: tag list reordered" "$BIN" generate --model "$W/order" --seeds 1 --out "$W/o"
card_with "$W/flip" 'pass'
python3 -c "
import json,sys; d='$W/flip'; c=json.load(open(d+'/model.json')); p=d+'/'+c['weights']
b=bytearray(open(p,'rb').read()); b[len(b)//2]^=1; open(p,'wb').write(b)"
case_ "weights: one bit flipped" "$BIN" generate --model "$W/flip" --seeds 1 --out "$W/o"
card_with "$W/cut" 'pass'
python3 -c "
import json; d='$W/cut'; c=json.load(open(d+'/model.json')); p=d+'/'+c['weights']
b=open(p,'rb').read(); open(p,'wb').write(b[:len(b)//3])"
case_ "weights: cut to a third" "$BIN" generate --model "$W/cut" --seeds 1 --out "$W/o"
card_with "$W/foreign" 'c.pop("weights_sha256", None); c.pop("tags_sha256", None); c.pop("seal", None)'
cp www/models/dcgan64/generator.bpk "$W/foreign/$(python3 -c "import json; print(json.load(open('$W/foreign/model.json'))['weights'])")"
case_ "weights: another model's (no checksums)" "$BIN" generate --model "$W/foreign" --seeds 1 --out "$W/o"
printf 'not json' > "$W/nj.json"
case_ "card: not JSON" "$BIN" generate --model "$W/nj.json" --seeds 1 --out "$W/o"

mk_data "$W/d-two"; sed -i '2s/"red hair, /"red hair, blonde hair, /' "$W/d-two/metadata.csv"
for i in $(seq 1 200); do cp "$W/d-two/seed0001.png" "$W/d-two/x$i.png"; echo "x$i.png,\"red hair, blue eyes\"" >> "$W/d-two/metadata.csv"; done
case_ "data: one row with two hair colours" "$BIN" train --data "$W/d-two" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-quote"; sed -i '3s/,"/,"unterminated /; 3s/"$//' "$W/d-quote/metadata.csv"
case_ "data: one unterminated quote" "$BIN" train --data "$W/d-quote" --out "$W/r" "${TINY[@]}" --steps 1 --strict
mk_data "$W/d-many"; python3 -c "
import sys; p='$W/d-many/metadata.csv'; L=open(p).read().splitlines()
L[1]=L[1].split(',')[0]+',\"'+', '.join('tag%d'%i for i in range(10000))+'\"'; open(p,'w').write('\n'.join(L)+'\n')"
case_ "data: a row with 10,000 tags" "$BIN" train --data "$W/d-many" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-bomb"; python3 - "$W/d-bomb/seed0000.png" <<'PY'
import struct, sys, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
w = h = 13000
raw = zlib.compress(b"".join(b"\0" + b"\0" * (3 * w) for _ in range(h)), 9)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
PY
case_ "data: a 13000x13000 PNG bomb ($(du -k "$W/d-bomb/seed0000.png" | cut -f1) KB)" "$BIN" train --data "$W/d-bomb" --out "$W/r" "${TINY[@]}" --steps 1 --strict
mk_data "$W/d-side"; rm "$W/d-side/metadata.csv"; for f in "$W"/d-side/*.png; do printf '\xef\xbb\xbfred hair\r\nblue eyes\r\n' > "${f%.png}.txt"; done
case_ "data: kohya sidecars with a UTF-8 BOM (trains; tags read)" "$BIN" train --data "$W/d-side" --out "$W/r-side" "${TINY[@]}" --steps 1
mk_data "$W/d-allbad"; for f in "$W"/d-allbad/*.png; do printf 'garbage' > "$f"; done
case_ "data: every image corrupt" "$BIN" train --data "$W/d-allbad" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-ok"
case_ "cli: --batch 4096" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --steps 1 --batch 4096
case_ "cli: --steps -1" "$BIN" train --data "$W/d-ok" --out "$W/r" --steps -1
case_ "cli: --lr nan" "$BIN" train --data "$W/d-ok" --out "$W/r" --lr nan
case_ "cli: --diverge-at 0" "$BIN" train --data "$W/d-ok" --out "$W/r" --diverge-at 0
case_ "cli: --seeds 5-x" "$BIN" generate --model "$MODEL" --seeds 5-x --out "$W/o"
case_ "cli: --tags 'zebra hair'" "$BIN" generate --model "$MODEL" --seeds 1 --tags "zebra hair" --out "$W/o"
case_ "cli: --edit 'nope=+2'" "$BIN" generate --model "$MODEL" --seeds 1 --edit "nope=+2" --out "$W/o"
case_ "cli: --link with an unknown direction" "$BIN" generate --model "$MODEL" --link "seed=1&d=smile:1" --out "$W/o"
"$BIN" train --data "$W/d-ok" --out "$W/rr" "${TINY[@]}" --steps 2 >/dev/null 2>&1
case_ "cli: --resume with --batch 8" "$BIN" train --resume "$(ls -d "$W"/rr/*/)" --batch 8
case_ "cli: --batch 4096 at 64 px (default architecture)" "$BIN" train --data "$W/d-ok" --out "$W/r" --steps 1 --quiet --no-cache --batch 4096
sh -c "'$BIN' train --data '$W/d-ok' --out '$W/rc' ${TINY[*]} --steps 3 >&- 2>&-; echo \$? > '$W/closed'"
printf '| cli: train with stdout and stderr closed | %s | (nothing can be printed; %s checkpoint) |\n' \
  "$(cat "$W/closed")" "$(cat "$W"/rc/*/checkpoints/latest 2>/dev/null || echo no)"

# Issue 31: outputs own only what they create; inputs are files of bounded size; recipe numbers
# stay within the card.
card_with "$W/m" 'pass'; cp -r www/models/stylegan2-64 "$W/sg2"
case_ "out: convert --out k6 --json k6/model.json" "$BIN" convert --model "$MODEL" --out "$W/k6" --json "$W/k6/model.json" --check-seeds 0
case_ "out: generate --sheet M/model.json" "$BIN" generate --model "$W/m" --seeds 0-1 --out "$W/g" --sheet "$W/m/model.json"
case_ "out: interpolate --out M/model.json" "$BIN" interpolate --model "$W/m" --from 1 --to 2 --out "$W/m/model.json"
case_ "out: eval --json M/model.json" "$BIN" eval --model "$W/m" --tagger models/tagger64 --data "$W/d-ok" --json "$W/m/model.json"
case_ "out: convert --json /dev/full" "$BIN" convert --model "$MODEL" --out "$W/k7" --json /dev/full --check-seeds 0
ln -s "$W/target.json" "$W/link.json"; mkfifo "$W/fifo.json"
case_ "out: --json a symbolic link" "$BIN" convert --model "$MODEL" --out "$W/k8" --json "$W/link.json" --check-seeds 0
case_ "out: --json a FIFO" "$BIN" convert --model "$MODEL" --out "$W/k8" --json "$W/fifo.json" --check-seeds 0
"$BIN" train --data "$W/d-ok" --out "$W/rx" "${TINY[@]}" --steps 2 --checkpoint-every 2 >/dev/null 2>&1
RX=$(ls -d "$W"/rx/*/ | head -1)
case_ "out: export --out D holding another model" "$BIN" export --run "$RX" --out "$W/sg2"
case_ "out: generate --seeds 0-3 --out g --sheet g/seed0000.png" "$BIN" generate --model "$W/m" --seeds 0-3 --out "$W/g" --sheet "$W/g/seed0000.png"
case_ "out: generate --sheet on the model's weights" "$BIN" generate --model "$W/m" --seeds 0 --out "$W/g2" --sheet "$W/m/$(python3 -c "import json; print(json.load(open('$W/m/model.json'))['weights'])")"
"$BIN" interpolate --model "$W/m" --from 1 --to 2 --out "$W/strip.png" >/dev/null 2>&1
case_ "out: interpolate --out over its earlier strip (no --force)" "$BIN" interpolate --model "$W/m" --from 1 --to 2 --out "$W/strip.png"
case_ "directions: --sefa 2 on the shipped card (keeps the other 28)" "$BIN" directions --model "$W/sg2" --sefa 2
printf '| (card after it: %s directions) | | |\n' "$(python3 -c "import json; print(len(json.load(open('$W/sg2/model.json'))['directions']))")"
case_ "directions: --name '1=aqua eyes'" "$BIN" directions --model "$W/sg2" --sefa 2 --name "1=aqua eyes"
case_ "directions: --name '1='" "$BIN" directions --model "$W/sg2" --sefa 2 --name "1="
case_ "directions: a name given twice" "$BIN" directions --model "$W/sg2" --sefa 2 --name "1=a" --name "2=a"
mk_data "$W/d-zero"; echo '/dev/zero,"red hair, blue eyes"' >> "$W/d-zero/metadata.csv"
case_ "in: a data row naming /dev/zero" "$BIN" train --data "$W/d-zero" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-fifo"; mkfifo "$W/d-fifo/pipe.png"; echo 'pipe.png,"red hair, blue eyes"' >> "$W/d-fifo/metadata.csv"
case_ "in: a data row naming a FIFO" "$BIN" train --data "$W/d-fifo" --out "$W/r" "${TINY[@]}" --steps 1
case_ "in: generate --spec /dev/zero" "$BIN" generate --model "$MODEL" --spec /dev/zero --out "$W/o"
mk_data "$W/d-loop"; rm "$W/d-loop/metadata.csv"; mkdir "$W/d-loop/sub"; ln -s .. "$W/d-loop/sub/up"
for f in "$W"/d-loop/*.png; do echo "red hair, blue eyes" > "${f%.png}.txt"; done
case_ "in: a kohya folder with a link loop sub/up -> .." "$BIN" train --data "$W/d-loop" --out "$W/r" "${TINY[@]}" --steps 1
case_ "recipe: --edit 'sefa 4=1e308'" "$BIN" generate --model www/models/stylegan2-64 --seeds 1 --edit "sefa 4=1e308" --out "$W/o"
case_ "recipe: --edit 'face outline=1e30' (range 4)" "$BIN" generate --model www/models/stylegan2-64 --seeds 1 --edit "face outline=1e30" --out "$W/o"
case_ "recipe: link s=red_hair:1e308" "$BIN" generate --model www/models/stylegan2-64 --link "seed=1&s=red_hair:1e308" --out "$W/o"
case_ "recipe: link d=face_outline:1e308" "$BIN" generate --model www/models/stylegan2-64 --link "seed=1&d=face_outline:1e308" --out "$W/o"
case_ "recipe: link v=5:1e308" "$BIN" generate --model www/models/stylegan2-64 --link "seed=1&v=5:1e308" --out "$W/o"
case_ "recipe: link fuse=9:10 (10 styles)" "$BIN" generate --model www/models/stylegan2-64 --link "seed=1&fuse=9:10" --out "$W/o"
cp -r "$RX" "$W/other-run"; RXC=$(ls -d "$RX"checkpoints/step-* | head -1)
echo "../../other-run/checkpoints/$(basename "$RXC")" > "$RX/checkpoints/latest"
case_ "ckpt: latest pointing outside its run" "$BIN" export --run "$RX" --out "$W/e1"
basename "$RXC" > "$RX/checkpoints/latest"; rm "$RXC/sha256.json"
case_ "ckpt: sha256.json deleted" "$BIN" export --run "$RX" --out "$W/e2"

# Issue 31, second round: a card is sealed whole; int8 quantises or refuses; data sets never
# change meaning silently; tag refuses an open quote; messages name what is wrong.
sg2_with() { # sg2_with DIR PYTHON-EXPR-ON-c : a copy of the stylegan2 model with its card edited
  mkdir -p "$1"; cp www/models/stylegan2-64/* "$1"/
  python3 - "$1/model.json" "$2" <<'PY'
import json, sys
p, expr = sys.argv[1], sys.argv[2]
c = json.load(open(p)); exec(expr); json.dump(c, open(p, "w"))
PY
}
sg2_with "$W/lr" 'c["generator"]["lr_mul"] = 1.0'
case_ "seal: generator.lr_mul 10 -> 1" "$BIN" generate --model "$W/lr" --seeds 1 --out "$W/o"
sg2_with "$W/mlr" 'c["generator"]["mapping_lr_mul"] = 1.0'
case_ "seal: generator.mapping_lr_mul 0.01 -> 1" "$BIN" generate --model "$W/mlr" --seeds 1 --out "$W/o"
sg2_with "$W/grp" 'c["vocab"]["groups"] = []'
case_ "seal: vocab.groups []" "$BIN" generate --model "$W/grp" --seeds 1 --out "$W/o"
sg2_with "$W/spc" 'next(d for d in c["directions"] if d.get("space") == "w")["space"] = "z"'
case_ "seal: a w direction relabelled z" "$BIN" generate --model "$W/spc" --seeds 1 --out "$W/o"
sg2_with "$W/unsealed" 'c.pop("seal", None)'
case_ "seal: a card written before the seal (loads)" "$BIN" generate --model "$W/unsealed" --seeds 1 --out "$W/o"
case_ "seal: trainer seal on it" "$BIN" seal --model "$W/unsealed"
mkdir -p "$W/tg"; cp models/tagger64/* "$W/tg/"
python3 -c "
import json; p='$W/tg/tagger.json'; c=json.load(open(p)); c['vocab']['tags'].reverse(); json.dump(c, open(p,'w'))"
mk_data "$W/d-tag"; rm "$W/d-tag/metadata.csv"
case_ "tagger card: tag list reversed" "$BIN" tag --tagger "$W/tg" --data "$W/d-tag"
case_ "convert stylegan2-64 --precision int8 (quantised)" "$BIN" convert --model www/models/stylegan2-64 --out "$W/sg8" --precision int8 --check-seeds 0-3
case_ "convert dcgan64 --precision int8 (no dense layer)" "$BIN" convert --model www/models/dcgan64 --out "$W/dc8" --precision int8 --check-seeds 0
mk_data "$W/d-one"; sed -i '2s/"red hair, /"red hair, blonde hair, /' "$W/d-one/metadata.csv"
case_ "data: one two-hair row in 12 rows (skipped, named)" "$BIN" train --data "$W/d-one" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-three"; for i in $(seq 1 188); do cp "$W/d-three/seed0001.png" "$W/d-three/x$i.png"; echo "x$i.png,\"red hair, blue eyes\"" >> "$W/d-three/metadata.csv"; done
sed -i '2,4s/"red hair, /"red hair, blonde hair, /; 2,4s/"blonde hair, /"blonde hair, red hair, /' "$W/d-three/metadata.csv"
case_ "data: 3 two-hair rows in 200 (group reported)" "$BIN" train --data "$W/d-three" --out "$W/r" "${TINY[@]}" --steps 1
case_ "data: the same, --strict" "$BIN" train --data "$W/d-three" --out "$W/r" "${TINY[@]}" --steps 1 --strict
mk_data "$W/d-dup"; echo 'seed0000.png,"blonde hair, green eyes"' >> "$W/d-dup/metadata.csv"
case_ "data: a file listed twice with other tags" "$BIN" train --data "$W/d-dup" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-q"; sed -i '3s/,"/,"unterminated /; 3s/"$//' "$W/d-q/metadata.csv"; cp "$W/d-q/seed0000.png" "$W/d-q/new.png"
case_ "tag: metadata.csv with an unclosed quote" "$BIN" tag --tagger models/tagger64 --data "$W/d-q"
mk_data "$W/d-u8"; rm "$W/d-u8/metadata.csv"; cp "$W/d-u8/seed0000.png" "$W/d-u8/$(printf 'b\xff.png')"
case_ "tag: an image whose name is not UTF-8" "$BIN" tag --tagger models/tagger64 --data "$W/d-u8"
"$BIN" train --data "$W/d-ok" --out "$W/rv" "${TINY[@]}" --steps 2 >/dev/null 2>&1
RV=$(ls -d "$W"/rv/*/ | head -1)
python3 -c "
import json; p='${RV}config.json'; c=json.load(open(p)); c['vocab']['tags'].reverse(); json.dump(c, open(p,'w'))"
case_ "resume: config.json vocab reversed" "$BIN" train --resume "$RV" --steps 3
python3 -c "
import json; p='${RV}config.json'; c=json.load(open(p)); c['vocab']['tags'].reverse(); c['diverge_at'] = -1; json.dump(c, open(p,'w'))"
case_ "resume: config.json diverge_at -1" "$BIN" train --resume "$RV" --steps 3

# Issue 31's done-when: a fresh round of our own, on the fixed code. Each row says what it
# should do; the note of the stop that added them lists what each did.
SG=www/models/stylegan2-64
TINYC=(--quiet --g-channels 8 --g-blocks 1 --d-channels 8 --latent-dim 16 --resolution 16)
case_ "fresh: --seeds 0-100000000 (huge range)" "$BIN" generate --model "$MODEL" --seeds 0-100000000 --out "$W/f1"
case_ "fresh: --seeds 3-1 (reversed)" "$BIN" generate --model "$MODEL" --seeds 3-1 --out "$W/f2"
case_ "fresh: --seeds '' (empty)" "$BIN" generate --model "$MODEL" --seeds "" --out "$W/f3"
case_ "fresh: --seeds 99999999999999999999 (overflow)" "$BIN" generate --model "$MODEL" --seeds 99999999999999999999 --out "$W/f4"
case_ "fresh: --tags 'blonde hair, red hair' (one group twice)" "$BIN" generate --model "$MODEL" --seeds 1 --tags "blonde hair, red hair" --out "$W/f5"
case_ "fresh: --tags 'blonde hair, blonde hair' (same tag twice)" "$BIN" generate --model "$MODEL" --seeds 1 --tags "blonde hair, blonde hair" --out "$W/f6"
case_ "fresh: --tags ',,,' (only commas)" "$BIN" generate --model "$MODEL" --seeds 1 --tags ",,," --out "$W/f7"
case_ "fresh: --model a folder with no card (www/models)" "$BIN" generate --model www/models --seeds 1 --out "$W/f8"
case_ "fresh: --model a missing path" "$BIN" generate --model "$W/nothing-here" --seeds 1 --out "$W/f9"
printf 'x' > "$W/afile"
case_ "fresh: --out an existing regular file" "$BIN" generate --model "$MODEL" --seeds 1 --out "$W/afile"
case_ "fresh: --psi nan (StyleGAN2)" "$BIN" generate --model "$SG" --seeds 1 --psi nan --out "$W/f10"
case_ "fresh: --psi inf (StyleGAN2)" "$BIN" generate --model "$SG" --seeds 1 --psi inf --out "$W/f11"
case_ "fresh: --psi 0.5 on a model with no styles" "$BIN" generate --model "$MODEL" --seeds 1 --psi 0.5 --out "$W/f12"
case_ "fresh: link seed=1&seed=2 (a key twice)" "$BIN" generate --model "$MODEL" --link "seed=1&seed=2" --out "$W/f13"
case_ "fresh: link seed=abc" "$BIN" generate --model "$MODEL" --link "seed=abc" --out "$W/f14"
case_ "fresh: link tags=blue%20eyes (percent-encoded)" "$BIN" generate --model "$MODEL" --link "seed=1&tags=blue%20eyes" --out "$W/f15"
case_ "fresh: link tags=%ZZ (bad escape)" "$BIN" generate --model "$MODEL" --link "seed=1&tags=%ZZ" --out "$W/f16"
case_ "fresh: link model=../../etc (another model's name)" "$BIN" generate --model "$MODEL" --link "model=../../etc&seed=1" --out "$W/f17"
case_ "fresh: link s=blue_eyes:nan" "$BIN" generate --model "$MODEL" --link "seed=1&s=blue_eyes:nan" --out "$W/f18"
case_ "fresh: link v=0:-1 (negative variation)" "$BIN" generate --model "$MODEL" --link "seed=1&v=0:-1" --out "$W/f19"
case_ "fresh: link psi=-3 (StyleGAN2)" "$BIN" generate --model "$SG" --link "seed=1&psi=-3" --out "$W/f20"
case_ "fresh: link fuse=-1:2" "$BIN" generate --model "$SG" --link "seed=1&fuse=-1:2" --out "$W/f21"
printf '#seed=1&tags=blonde_hair\n#seed=2\n' > "$W/two.link"
case_ "fresh: --spec with two permalinks" "$BIN" generate --model "$MODEL" --spec "$W/two.link" --out "$W/f22"
case_ "fresh: interpolate --steps 0" "$BIN" interpolate --model "$MODEL" --from 1 --to 2 --steps 0 --out "$W/i1.png"
case_ "fresh: interpolate --steps 100000" "$BIN" interpolate --model "$MODEL" --from 1 --to 2 --steps 100000 --out "$W/i2.png"
case_ "fresh: interpolate --from '1:zebra hair'" "$BIN" interpolate --model "$MODEL" --from "1:zebra hair" --to 2 --out "$W/i3.png"
case_ "fresh: interpolate --out into a missing folder" "$BIN" interpolate --model "$MODEL" --from 1 --to 2 --out "$W/no/such/dir/i4.png"
case_ "fresh: train --resolution 48 (not a power of two)" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]/16/48}" --steps 1
case_ "fresh: train --resolution 0" "$BIN" train --data "$W/d-ok" --out "$W/r" --resolution 0 --steps 1 --quiet --no-cache
case_ "fresh: train --latent-dim 0" "$BIN" train --data "$W/d-ok" --out "$W/r" --latent-dim 0 --steps 1 --quiet --no-cache
case_ "fresh: train --batch 0" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --batch 0 --steps 1
case_ "fresh: train --lr -1" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --lr -1 --steps 1
case_ "fresh: train --ema-half-life -5" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --ema-half-life -5 --steps 1
case_ "fresh: train --n-critic 0" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --n-critic 0 --steps 1
case_ "fresh: train --recipe mode-seeking:weight=nan" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --recipe mode-seeking:weight=nan --steps 1
case_ "fresh: train --recipe bogus" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --recipe bogus --steps 1
case_ "fresh: train --recipe condition-ramp:start=10,end=5" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --recipe condition-ramp:start=10,end=5 --steps 1
case_ "fresh: train --recipe drift:weight=1,weight=2" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --recipe drift:weight=1,weight=2 --steps 1
mkdir -p "$W/d-empty"
case_ "fresh: data: an empty folder" "$BIN" train --data "$W/d-empty" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-hdr"; echo "file_name,tags" > "$W/d-hdr/metadata.csv"
case_ "fresh: data: metadata.csv with its header only" "$BIN" train --data "$W/d-hdr" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-trav"; echo '../../../../etc/hostname,"red hair, blue eyes"' >> "$W/d-trav/metadata.csv"
case_ "fresh: data: a row naming ../../../../etc/hostname" "$BIN" train --data "$W/d-trav" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-abs"; echo "$W/faces/seed0000.png,\"red hair, blue eyes\"" >> "$W/d-abs/metadata.csv"
case_ "fresh: data: a row with an absolute path" "$BIN" train --data "$W/d-abs" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-notags"; sed -i '2s/,".*"$/,""/' "$W/d-notags/metadata.csv"
case_ "fresh: data: a row with no tags" "$BIN" train --data "$W/d-notags" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-tiny"; python3 -c "
import zlib, struct, sys
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
raw = b'\x00\xff\x00\x00'
open(sys.argv[1], 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 1, 1, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
" "$W/d-tiny/seed0000.png"
case_ "fresh: data: a 1x1 image" "$BIN" train --data "$W/d-tiny" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-zerob"; : > "$W/d-zerob/seed0001.png"
case_ "fresh: data: a zero-byte image" "$BIN" train --data "$W/d-zerob" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-crlf"; python3 -c "
import sys; p=sys.argv[1]; t=open(p).read(); open(p,'w',newline='').write('\ufeff' + t.replace('\n','\r\n'))" "$W/d-crlf/metadata.csv"
case_ "fresh: data: metadata.csv with a BOM and CRLF (trains)" "$BIN" train --data "$W/d-crlf" --out "$W/r" "${TINY[@]}" --steps 1
mkdir -p "$W/ro"; chmod 555 "$W/ro"
case_ "fresh: train --out a read-only folder" "$BIN" train --data "$W/d-ok" --out "$W/ro" "${TINY[@]}" --steps 1
chmod 755 "$W/ro"
mkdir -p "$W/norun"
case_ "fresh: export --run a folder that is no run" "$BIN" export --run "$W/norun" --out "$W/e3"
case_ "fresh: train --resume a folder that is no run" "$BIN" train --resume "$W/norun" --steps 3
cp -r "$W/rr" "$W/rtr"; RT=$(ls -d "$W"/rtr/*/ | head -1); head -c 40 "${RT}config.json" > "$W/cfg"; mv "$W/cfg" "${RT}config.json"
case_ "fresh: resume: config.json truncated" "$BIN" train --resume "$RT" --steps 3
case_ "fresh: eval --per-combo 0" "$BIN" eval --model "$MODEL" --tagger models/tagger64 --data "$W/d-ok" --per-combo 0
case_ "fresh: eval --tagger a generator card" "$BIN" eval --model "$MODEL" --tagger "$MODEL" --data "$W/d-ok"
case_ "fresh: tag --tagger the shape encoder" "$BIN" tag --tagger models/shape64 --data "$W/d-tag"
case_ "fresh: directions --sefa 0" "$BIN" directions --model "$W/sg2" --sefa 0
case_ "fresh: directions --sefa 100000" "$BIN" directions --model "$W/sg2" --sefa 100000
case_ "fresh: directions on a model with no styles (anime64)" "$BIN" directions --model "$W/m" --sefa 2
case_ "fresh: convert --precision fp64" "$BIN" convert --model "$MODEL" --out "$W/k9" --precision fp64
card_with "$W/dt" 'c["weights_dtype"] = "f64"'
case_ "fresh: card: weights_dtype f64" "$BIN" generate --model "$W/dt" --seeds 1 --out "$W/o"
sg2_with "$W/dlen" 'c["directions"][0]["vector"] = c["directions"][0]["vector"][:3]; c.pop("seal", None)'
case_ "fresh: card: a direction of 3 numbers (unsealed)" "$BIN" generate --model "$W/dlen" --seeds 1 --out "$W/o"
sg2_with "$W/dinf" 'c.pop("seal", None)'
sed -i 's/"vector": \[\([-0-9.e]*\)/"vector": [1e999/' "$W/dinf/model.json"
case_ "fresh: card: a direction holding 1e999 (unsealed)" "$BIN" generate --model "$W/dinf" --seeds 1 --out "$W/o"
sg2_with "$W/fseal" 'c["seal"]["sha256"] = "0" * 64'
case_ "fresh: card: a forged seal" "$BIN" generate --model "$W/fseal" --seeds 1 --out "$W/o"
sg2_with "$W/wseal" 'pass'
python3 -c "
import json; d='$W/wseal'; c=json.load(open(d+'/model.json')); p=d+'/'+c['weights']
b=bytearray(open(p,'rb').read()); b[-5]^=4; open(p,'wb').write(b)"
case_ "fresh: seal --force on changed weights" "$BIN" seal --model "$W/wseal" --force
case_ "fresh: seal --model a PNG" "$BIN" seal --model "$W/faces/seed0000.png"
case_ "fresh: seal --model the shape encoder's folder" "$BIN" seal --model models/shape64
mkdir -p "$W/cache"; "$BIN" train --data "$W/d-ok" --out "$W/rca" "${TINYC[@]}" --cache-dir "$W/cache" --steps 1 >/dev/null 2>&1
for f in "$W"/cache/*.bin; do head -c 100 "$f" > "$f.t"; mv "$f.t" "$f"; done
case_ "fresh: a truncated decode cache (decoded again)" "$BIN" train --data "$W/d-ok" --out "$W/rca2" "${TINYC[@]}" --cache-dir "$W/cache" --steps 1
case_ "fresh: --cache-dir a regular file" "$BIN" train --data "$W/d-ok" --out "$W/rca3" "${TINYC[@]}" --cache-dir "$W/afile" --steps 1
mkdir -p "$W/db-in"; printf 'not an image' > "$W/db-in/a.png"; cp "$W/faces/seed0001.png" "$W/db-in/b.png"
case_ "fresh: dataset build --cascade a PNG" "$BIN" dataset build --from "$W/db-in" --out "$W/db-out" --cascade "$W/faces/seed0000.png"
case_ "fresh: dataset build --whole-images, one corrupt input" "$BIN" dataset build --from "$W/db-in" --out "$W/db-out2" --whole-images
case_ "fresh: dataset build --resolution 0" "$BIN" dataset build --from "$W/db-in" --out "$W/db-out3" --whole-images --resolution 0

# Issue 31's done-when, second fresh round (after the first round's six were fixed).
case_ "fresh2: --seeds 1,1,1 (a seed thrice)" "$BIN" generate --model "$MODEL" --seeds 1,1,1 --out "$W/g1"
case_ "fresh2: --seeds 18446744073709551615 (the largest)" "$BIN" generate --model "$MODEL" --seeds 18446744073709551615 --out "$W/g2"
case_ "fresh2: --seeds -1" "$BIN" generate --model "$MODEL" --seeds -1 --out "$W/g3"
case_ "fresh2: --tags 'BLONDE_HAIR' (another spelling)" "$BIN" generate --model "$MODEL" --seeds 1 --tags "BLONDE_HAIR" --out "$W/g4"
case_ "fresh2: --tags with a Cyrillic o ('blоnde hair')" "$BIN" generate --model "$MODEL" --seeds 1 --tags "blоnde hair" --out "$W/g5"
case_ "fresh2: --edit 'sefa 1=+1, sefa 1=-1' (a direction twice)" "$BIN" generate --model "$SG" --seeds 1 --edit "sefa 1=+1, sefa 1=-1" --out "$W/g6"
case_ "fresh2: link s=blue_eyes:1,blue_eyes:2 (a tag twice)" "$BIN" generate --model "$MODEL" --link "seed=1&s=blue_eyes:1,blue_eyes:2" --out "$W/g7"
case_ "fresh2: link d=sefa_1:1,sefa_1:2 (a direction twice)" "$BIN" generate --model "$SG" --link "seed=1&d=sefa_1:1,sefa_1:2" --out "$W/g8"
case_ "fresh2: link fuse_tags without fuse" "$BIN" generate --model "$SG" --link "seed=1&fuse_tags=red_hair" --out "$W/g9"
case_ "fresh2: link fuse=3:2&fuse_tags=zebra" "$BIN" generate --model "$SG" --link "seed=1&fuse=3:2&fuse_tags=zebra" --out "$W/g10"
case_ "fresh2: link a whole URL with a query" "$BIN" generate --model "$MODEL" --link "https://x.org/?model=q#seed=3&tags=red_hair" --out "$W/g11"
case_ "fresh2: --link '' (empty)" "$BIN" generate --model "$MODEL" --link "" --out "$W/g12"
case_ "fresh2: --link '#' (a bare hash)" "$BIN" generate --model "$MODEL" --link "#" --out "$W/g13"
case_ "fresh2: link psi=1e-300" "$BIN" generate --model "$SG" --link "seed=1&psi=1e-300" --out "$W/g14"
case_ "fresh2: --link and --spec together" "$BIN" generate --model "$MODEL" --link "seed=1" --spec "$W/two.link" --out "$W/g15"
case_ "fresh2: --out '' (empty path)" "$BIN" generate --model "$MODEL" --seeds 1 --out ""
case_ "fresh2: interpolate --from 1 --to 1 (one face)" "$BIN" interpolate --model "$MODEL" --from 1 --to 1 --out "$W/i5.png"
case_ "fresh2: interpolate with psi on a model without styles" "$BIN" interpolate --model "$MODEL" --from "#seed=1&psi=0.5" --to 2 --out "$W/i6.png"
mkdir -p "$W/emptyrun"; cp "${RX}config.json" "$W/emptyrun/"
case_ "fresh2: interpolate --model a run with no checkpoint" "$BIN" interpolate --model "$W/emptyrun" --from 1 --to 2 --out "$W/i7.png"
card_with "$W/c-unknown" 'c["colour_space"] = "cmyk"'
case_ "fresh2: card with an unknown field (unsealed)" "$BIN" generate --model "$W/c-unknown" --seeds 1 --out "$W/o"
card_with "$W/c-dupkey" 'pass'
python3 -c "
p='$W/c-dupkey/model.json'; t=open(p).read(); open(p,'w').write(t.replace('{', '{\"weights\": \"other.bpk\", ', 1))"
case_ "fresh2: card with the key weights twice" "$BIN" generate --model "$W/c-dupkey" --seeds 1 --out "$W/o"
card_with "$W/c-ver" 'c["version"] = 99'
case_ "fresh2: card version 99" "$BIN" generate --model "$W/c-ver" --seeds 1 --out "$W/o"
card_with "$W/c-wdir" 'pass'
W1=$(python3 -c "import json; print(json.load(open('$W/c-wdir/model.json'))['weights'])"); rm "$W/c-wdir/$W1"; mkdir "$W/c-wdir/$W1"
case_ "fresh2: weights that are a folder" "$BIN" generate --model "$W/c-wdir" --seeds 1 --out "$W/o"
card_with "$W/c-wempty" 'pass'; : > "$W/c-wempty/$W1"
case_ "fresh2: weights of 0 bytes" "$BIN" generate --model "$W/c-wempty" --seeds 1 --out "$W/o"
card_with "$W/c-wlink" 'pass'; rm "$W/c-wlink/$W1"; ln -s "$PWD/www/models/dcgan64/generator.bpk" "$W/c-wlink/$W1"
case_ "fresh2: weights a link to another model's" "$BIN" generate --model "$W/c-wlink" --seeds 1 --out "$W/o"
mkdir -p "$W/c-huge"; head -c $((65 << 20)) /dev/zero | tr '\0' ' ' > "$W/c-huge/model.json"
case_ "fresh2: a 65 MiB card" "$BIN" generate --model "$W/c-huge" --seeds 1 --out "$W/o"
mkdir -p "$W/tg2"; cp models/tagger64/* "$W/tg2/"
python3 -c "
import json; p='$W/tg2/tagger.json'; c=json.load(open(p)); c['vocab']['groups'] = []; json.dump(c, open(p,'w'))"
mk_data "$W/d-tg2"; rm "$W/d-tg2/metadata.csv"
case_ "fresh2: tagger card with its groups removed" "$BIN" tag --tagger "$W/tg2" --data "$W/d-tg2"
mkdir -p "$W/tg3"; cp models/tagger64/* "$W/tg3/"
python3 -c "
import json; p='$W/tg3/tagger.json'; c=json.load(open(p)); del c['seal']
c['tagger']['channels'] = c['tagger']['max_channels'] = 10**9; json.dump(c, open(p,'w'))"
case_ "fresh3: unsealed tagger card claiming 10^9 channels" "$BIN" tag --tagger "$W/tg3" --data "$W/d-tg2"
mk_data "$W/d-extra"; sed -i '1s/$/,extra/; 2,$s/$/,x/' "$W/d-extra/metadata.csv"
case_ "fresh2: data: metadata.csv with an extra column (trains)" "$BIN" train --data "$W/d-extra" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-swap"; python3 -c "
import csv,sys; p=sys.argv[1]; rows=list(csv.reader(open(p)))
w=csv.writer(open(p,'w',newline='')); [w.writerow([r[1], r[0]]) for r in rows]" "$W/d-swap/metadata.csv"
case_ "fresh2: data: columns in the other order (tags,file_name)" "$BIN" train --data "$W/d-swap" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-notagcol"; sed -i '1s/.*/file_name,labels/' "$W/d-notagcol/metadata.csv"
case_ "fresh2: data: no tags column" "$BIN" train --data "$W/d-notagcol" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-nul"; printf 'seed\0000.png,"red hair, blue eyes"\n' >> "$W/d-nul/metadata.csv"
case_ "fresh2: data: a NUL byte in a file name" "$BIN" train --data "$W/d-nul" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-u16"; python3 -c "
import sys; p=sys.argv[1]; t=open(p).read(); open(p,'wb').write(t.encode('utf-16'))" "$W/d-u16/metadata.csv"
case_ "fresh2: data: metadata.csv in UTF-16" "$BIN" train --data "$W/d-u16" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-16bit"; python3 -c "
import zlib, struct, sys
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
w = h = 16; raw = b''.join(b'\x00' + b'\x80\x00' * w for _ in range(h))
open(sys.argv[1], 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, 0, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
" "$W/d-16bit/seed0000.png"
case_ "fresh2: data: a 16-bit grey PNG (trains)" "$BIN" train --data "$W/d-16bit" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-half"; python3 -c "
import sys; p=sys.argv[1]; b=open(p,'rb').read(); open(p,'wb').write(b[:len(b)//2])" "$W/d-half/seed0002.png"
case_ "fresh2: data: a PNG cut in half" "$BIN" train --data "$W/d-half" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-case"; rm "$W/d-case/metadata.csv"; for f in "$W"/d-case/*.png; do echo "Red Hair, BLUE EYES" > "${f%.png}.txt"; done
case_ "fresh2: data: sidecar tags in capitals (trains as red hair)" "$BIN" train --data "$W/d-case" --out "$W/r" "${TINY[@]}" --steps 1
case_ "fresh2: --data the metadata.csv file itself" "$BIN" train --data "$W/d-ok/metadata.csv" --out "$W/r" "${TINY[@]}" --steps 1
mk_data "$W/d-same"; python3 -c "
import sys; p=sys.argv[1]; open(p,'w').write('file_name,tags\n' + ''.join('seed0000.png,\"red hair, blue eyes\"\n' for _ in range(12)))" "$W/d-same/metadata.csv"
case_ "fresh2: data: every row the same file, same tags" "$BIN" train --data "$W/d-same" --out "$W/r" "${TINY[@]}" --steps 1
case_ "fresh2: train --sample-every 0" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --steps 1 --sample-every 0
case_ "fresh2: train --checkpoint-every 99999999999999999999" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --steps 1 --checkpoint-every 99999999999999999999
case_ "fresh2: train --seed -5" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --steps 1 --seed -5
case_ "fresh2: train --g res_blocks=-1" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --steps 1 --g res_blocks=-1
case_ "fresh2: train --g nonsense=1" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --steps 1 --g nonsense=1
case_ "fresh2: train --g res_blocks (no value)" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --steps 1 --g res_blocks
case_ "fresh2: train --d mbstd_group=64 (batch 32)" "$BIN" train --data "$W/d-ok" --out "$W/r" "${TINY[@]}" --steps 1 --d mbstd_group=64
case_ "fresh2: train --resume with --data" "$BIN" train --resume "$(ls -d "$W"/rr/*/)" --data "$W/d-ok" --steps 3
cp -r "$W/rr" "$W/rlat"; RL=$(ls -d "$W"/rlat/*/); : > "${RL}checkpoints/latest"
case_ "fresh2: resume: checkpoints/latest empty" "$BIN" train --resume "$RL" --steps 3
cp -r "$W/rr" "$W/rst"; RS=$(ls -d "$W"/rst/*/); rm -f "${RS}stats.jsonl"
case_ "fresh2: resume: stats.jsonl deleted (resumes)" "$BIN" train --resume "$RS" --steps 3
case_ "fresh2: export --name ''" "$BIN" export --run "$RX" --out "$W/e4" --name ""
case_ "fresh2: convert --check-seeds 5-1" "$BIN" convert --model "$MODEL" --out "$W/k10" --check-seeds 5-1
case_ "fresh2: eval --data a set of 12 (no held-out images?)" "$BIN" eval --model "$MODEL" --tagger models/tagger64 --data "$W/d-ok" --per-combo 1 --no-shape
case_ "fresh2: eval --sheet-size 0" "$BIN" eval --model "$MODEL" --tagger models/tagger64 --data "$W/d-ok" --sheets "$W/sh" --sheet-size 0
case_ "fresh2: directions --samples 0" "$BIN" directions --model "$W/sg2" --sefa 2 --tagger models/tagger64 --samples 0
mk_data "$W/db-self"
case_ "fresh2: dataset build --out the --from folder" "$BIN" dataset build --from "$W/db-self" --out "$W/db-self" --whole-images
case_ "fresh2: dataset build --out inside --from" "$BIN" dataset build --from "$W/db-self" --out "$W/db-self/out" --whole-images
printf '| (db-self after them: %s files) | | |\n' "$(ls "$W/db-self" | wc -l)"
case_ "fresh2: tag --threshold 1.5" "$BIN" tag --tagger models/tagger64 --data "$W/d-tag" --threshold 1.5
case_ "fresh2: tag --threshold nan" "$BIN" tag --tagger models/tagger64 --data "$W/d-tag" --threshold nan
mk_data "$W/d-mdir"; rm "$W/d-mdir/metadata.csv"; mkdir "$W/d-mdir/metadata.csv"
case_ "fresh2: tag where metadata.csv is a folder" "$BIN" tag --tagger models/tagger64 --data "$W/d-mdir"
case_ "fresh2: shape check --encoder a tagger" "$BIN" shape check --encoder models/tagger64 --data "$W/d-ok"
case_ "fresh2: bench --batch 0" "$BIN" bench --batch 0
case_ "fresh2: bench --arch nope" "$BIN" bench --arch nope

echo
echo "panics, aborts or hangs: $bad"
