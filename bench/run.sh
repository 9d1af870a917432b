#!/usr/bin/env bash
# kyara vs PyTorch on this machine, same networks, same batch, same thread count:
#   bash bench/run.sh [--batch 64 --steps 3] [--arch dcgan] [--loss hinge]
#   ROUNDS=5 bash bench/run.sh   # five rounds (kyara then PyTorch each), with the ratios' range
#   FEATURES=bf16 bash bench/run.sh --precision fp32,bf16   # both precisions (AVX-512 BF16 CPUs;
#                                # PyTorch's side under torch.autocast)
# Whole training steps and generator forwards, then single layers; tables in target/bench/*.md.
# Needs Python 3 with bench/reference/requirements.txt installed (pip install -r ...).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-target/bench}
rounds=${ROUNDS:-1}
mkdir -p "$out"
cargo build --release -p trainer ${FEATURES:+--features "$FEATURES"}
pairs=()
for ((r = 1; r <= rounds; r++)); do
  target/release/trainer bench --json "$out/kyara.$r.json" "$@" > "$out/kyara.$r.md"
  python3 bench/reference/bench_torch.py --json "$out/torch.$r.json" "$@"
  pairs+=("$out/kyara.$r.json" "$out/torch.$r.json")
done
python3 bench/compare.py "${pairs[@]}" | tee "$out/compare.md"
# Single layers (and each side's matmul peak), same order: kyara, then PyTorch.
batch=64
for ((i = 1; i <= $#; i++)); do [ "${!i}" = --batch ] && j=$((i + 1)) && batch=${!j}; done
target/release/trainer bench --ops --batch "$batch" --json "$out/kyara_ops.json" > "$out/kyara_ops.md"
python3 bench/reference/ops_torch.py --batch "$batch" --json "$out/torch_ops.json"
python3 bench/compare.py --ops "$out/kyara_ops.json" "$out/torch_ops.json" | tee "$out/compare_ops.md"
