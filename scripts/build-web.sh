#!/usr/bin/env bash
# Builds the `web` crate to WebAssembly and writes the JS bindings into www/pkg/.
#   scripts/build-web.sh
#   KYARA_WEBGPU=1 scripts/build-web.sh   also the WebGPU module (cargo feature `webgpu`, Burn's
#                                         wgpu backend) into www/pkg-gpu/; the page loads it only
#                                         when the browser gives a WebGPU adapter. It compiles
#                                         wgpu and CubeCL: see docs/web.md for how long.
# Installs what it needs the first time: the wasm32 target and the wasm-bindgen CLI whose
# version matches the wasm-bindgen crate in Cargo.lock (they must agree exactly).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [ -z "$want" ]; then
  echo "build-web: no wasm-bindgen in Cargo.lock" >&2
  exit 1
fi
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
  echo "build-web: installing wasm-bindgen-cli $want (found: ${have:-none})"
  # Not --locked: its lockfile can name crate versions that the registry mirror lacks.
  cargo install wasm-bindgen-cli --version "$want"
fi

# WebAssembly SIMD (simd128): Burn's Flex kernels vectorise with it; measured ~20% faster per face
# and 4% larger (docs/web.md). Every current browser has it (Chrome 91, Firefox 89, Safari 16.4).
# KYARA_WASM_SIMD=0 builds without it.
if [ "${KYARA_WASM_SIMD:-1}" = 1 ]; then
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:-} -C target-feature=+simd128"
fi
simd=false
case "${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:-}" in *+simd128*) simd=true ;; esac
out="${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/web.wasm"

webgpu=false
rm -rf www/pkg-gpu
if [ "${KYARA_WEBGPU:-0}" = 1 ]; then
  cargo build -p web --release --target wasm32-unknown-unknown --features webgpu
  wasm-bindgen --target web --out-dir www/pkg-gpu "$out"
  webgpu=true
  size=$(wc -c < www/pkg-gpu/web_bg.wasm)
  echo "build-web: www/pkg-gpu/web_bg.wasm is $size bytes ($(( (size + 1023) / 1024 )) KiB)"
fi

cargo build -p web --release --target wasm32-unknown-unknown
wasm-bindgen --target web --out-dir www/pkg "$out"
# What the worker may load (www/worker.js reads it).
printf '{"simd": %s, "webgpu": %s}\n' "$simd" "$webgpu" > www/pkg/build.json

size=$(wc -c < www/pkg/web_bg.wasm)
echo "build-web: www/pkg/web_bg.wasm is $size bytes ($(( (size + 1023) / 1024 )) KiB)"
