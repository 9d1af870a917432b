#!/usr/bin/env bash
# kyara vs PyTorch on this machine, same networks, same batch, same thread count:
#   bash bench/run.sh [--batch 64 --steps 3]
# Needs Python 3 with bench/reference/requirements.txt installed (pip install -r ...).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-target/bench}
mkdir -p "$out"
cargo build --release -p trainer
target/release/trainer bench --json "$out/kyara.json" "$@" > "$out/kyara.md"
python3 bench/reference/bench_torch.py --json "$out/torch.json" "$@"
python3 bench/compare.py "$out/kyara.json" "$out/torch.json" | tee "$out/compare.md"
