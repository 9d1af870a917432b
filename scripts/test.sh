#!/usr/bin/env bash
# Everything the project checks: formatting and lints, Rust tests, the WebAssembly build, and the
# page in a real browser compared against the native CLI.
#   scripts/test.sh
# Needs: rustup, node >= 20 + npm, and Debian's chromium at /usr/bin/chromium (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test --workspace"
cargo test --workspace

echo "== build the web page (WebAssembly)"
bash scripts/build-web.sh

echo "== node tests (the page's modules over the WebAssembly build, no browser)"
node --test tests/node/

model=$(node -e 'console.log(JSON.parse(require("fs").readFileSync("www/models/index.json", "utf8")).default)')
echo "== native reference face: model $model, seed 42, blonde hair + blue eyes"
ref_dir=$(mktemp -d)
trap 'rm -rf "$ref_dir"' EXIT
# `cargo test` above built the CLI (the tests crate's copy of it); no extra release build.
"${CARGO_TARGET_DIR:-target}/debug/kyara-trainer" generate \
  --model "www/models/$model/model.json" --tags "blonde hair, blue eyes" --seeds 42 --out "$ref_dir"
export KYARA_NATIVE_PNG="$ref_dir/seed0042.png"
test -f "$KYARA_NATIVE_PNG" || { echo "test: $KYARA_NATIVE_PNG was not written" >&2; exit 1; }

echo "== native references of the face recipe: a permalink with s=, v=, d=; a transition"
# The shipped models have no latent directions: a copy of the default model whose card gains one
# (a fixed vector), for the tests only. tests/browser/recipe.test.mjs compares the page with these.
recipe="$ref_dir/recipe"
mkdir -p "$recipe/directed"
node -e '
const fs = require("fs");
const [src, dst] = process.argv.slice(1);
const card = JSON.parse(fs.readFileSync(`${src}/model.json`, "utf8"));
const vector = Array.from({ length: card.generator.latent_dim }, (_, i) => Math.round(1000 * Math.sin(0.7 * i)) / 1000);
card.directions = [{ name: "kyara test", vector }];
fs.writeFileSync(`${dst}/model.json`, JSON.stringify(card, null, 2));
fs.copyFileSync(`${src}/${card.weights}`, `${dst}/${card.weights}`);
' "www/models/$model" "$recipe/directed"
# The edited card no longer matches its seal (issue 31): reseal it on purpose, as a user would.
"${CARGO_TARGET_DIR:-target}/debug/kyara-trainer" seal --model "$recipe/directed" --force >/dev/null
link='#model=directed&seed=42&tags=blue_eyes,blonde_hair&s=blue_eyes:1.45,red_hair:0.3&v=851501:0.35,7:1.2&d=kyara_test:1.5'
from='#model=directed&seed=11&tags=blonde_hair&s=blue_eyes:0.5&v=77:0.35'
to='#model=directed&seed=12&tags=red_hair&d=kyara_test:-2'
steps=8
"${CARGO_TARGET_DIR:-target}/debug/kyara-trainer" generate --model "$recipe/directed" --link "$link" --out "$recipe/link"
cp "$recipe/link/seed0042.png" "$recipe/link.png"
"${CARGO_TARGET_DIR:-target}/debug/kyara-trainer" interpolate --model "$recipe/directed" \
  --from "$from" --to "$to" --steps "$steps" --out "$recipe/strip.png"
printf '%s\n' "$link" > "$recipe/link.txt"
printf '%s\n' "$from" > "$recipe/from.txt"
printf '%s\n' "$to" > "$recipe/to.txt"
printf '%s\n' "$steps" > "$recipe/steps.txt"

echo "== a small StyleGAN2-style model (2 steps on faces the default model drew) and its psi + fusion reference"
# The default model has no styles; recipe.test.mjs draws this small one's link in the page (models/styled/).
kt="${CARGO_TARGET_DIR:-target}/debug/kyara-trainer"
faces="$ref_dir/faces"
"$kt" generate --model "www/models/$model" --seeds 0-11 --out "$faces" >/dev/null
{
  echo "file_name,tags"
  i=0
  for f in "$faces"/seed*.png; do
    if [ $((i % 2)) = 0 ]; then t="red hair, blue eyes"; else t="blonde hair, green eyes"; fi
    echo "$(basename "$f"),\"$t\""
    i=$((i + 1))
  done
} > "$faces/metadata.csv"
"$kt" train --data "$faces" --out "$ref_dir/styled-runs" --steps 2 --quiet --no-cache --arch stylegan2 \
  --resolution 16 --g-channels 8 --g-blocks 1 --d-channels 8 --latent-dim 8 --batch 4 --sample-every 100
"$kt" export --run "$(ls -d "$ref_dir"/styled-runs/*/ | head -1)" --out "$recipe/styled" >/dev/null
styled_link='#model=styled&seed=5&tags=red_hair&psi=0.6&fuse=9:2'
"$kt" generate --model "$recipe/styled" --link "$styled_link" --out "$recipe/styled-link"
cp "$recipe/styled-link/seed0005.png" "$recipe/styled.png"
printf '%s\n' "$styled_link" > "$recipe/styled.txt"
export KYARA_RECIPE_DIR="$recipe"

echo "== browser test (Chromium)"
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  npm ci --prefix tests/browser --no-audit --no-fund
fi
node --test tests/browser/
