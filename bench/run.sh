#!/usr/bin/env bash
# kyara vs PyTorch on this machine, same networks, same batch, same thread count:
#   bash bench/run.sh [--batch 64 --steps 3] [--arch dcgan] [--loss hinge]
# Whole training steps and generator forwards, then single layers; tables in target/bench/*.md.
# Needs Python 3 with bench/reference/requirements.txt installed (pip install -r ...).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-target/bench}
mkdir -p "$out"
cargo build --release -p trainer
target/release/trainer bench --json "$out/kyara.json" "$@" > "$out/kyara.md"
python3 bench/reference/bench_torch.py --json "$out/torch.json" "$@"
python3 bench/compare.py "$out/kyara.json" "$out/torch.json" | tee "$out/compare.md"
# Single layers (and each side's matmul peak), same order: kyara, then PyTorch.
batch=64
for ((i = 1; i <= $#; i++)); do [ "${!i}" = --batch ] && j=$((i + 1)) && batch=${!j}; done
target/release/trainer bench --ops --batch "$batch" --json "$out/kyara_ops.json" > "$out/kyara_ops.md"
python3 bench/reference/ops_torch.py --batch "$batch" --json "$out/torch_ops.json"
python3 bench/compare.py --ops "$out/kyara_ops.json" "$out/torch_ops.json" | tee "$out/compare_ops.md"
