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

model=$(node -e 'console.log(JSON.parse(require("fs").readFileSync("www/models/index.json", "utf8")).default)')
echo "== native reference face: model $model, seed 42, blonde hair + blue eyes"
ref_dir=$(mktemp -d)
trap 'rm -rf "$ref_dir"' EXIT
# `cargo test` above built the CLI (the tests crate's copy of it); no extra release build.
"${CARGO_TARGET_DIR:-target}/debug/kyara-trainer" generate \
  --model "www/models/$model/model.json" --tags "blonde hair, blue eyes" --seeds 42 --out "$ref_dir"
export KYARA_NATIVE_PNG="$ref_dir/seed0042.png"
test -f "$KYARA_NATIVE_PNG" || { echo "test: $KYARA_NATIVE_PNG was not written" >&2; exit 1; }

echo "== browser test (Chromium)"
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  npm ci --prefix tests/browser --no-audit --no-fund
fi
node --test tests/browser/
