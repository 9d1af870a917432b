#!/usr/bin/env bash
# Quality over compute: train a generator from scratch for a fixed budget of steps (so a fixed
# number of images seen), then score it with kyara's tagger. Any change to the model or the loss
# can be compared on the same footing by running this with the same DATA, STEPS and seed.
#
#   scripts/quality-benchmark.sh DATA [STEPS] [extra `trainer train` options...]
#   scripts/quality-benchmark.sh ../shared/data/anime-faces-64 500 --loss wgan-gp --n-critic 2
#
# Writes runs/bench/NNNNN-<data>/ with metric-tagger-eval.jsonl (halfway and at the end),
# eval.json (the final `trainer eval`, 10 faces per tag combination) and stats.jsonl
# (train_seconds = the compute spent). Put the table in docs/quality.md with date and machine.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: scripts/quality-benchmark.sh DATA [STEPS] [train options...]}
steps=${2:-500}
shift $(( $# >= 2 ? 2 : 1 ))
tagger=${KYARA_TAGGER:-models/tagger64}

# KYARA_TRAINER=path/to/trainer skips the release build (e.g. target/debug/kyara-trainer after
# `cargo test --workspace`, whose dependencies are optimised too).
trainer=${KYARA_TRAINER:-}
if [ -z "$trainer" ]; then
  cargo build --release -p trainer
  trainer=target/release/trainer
fi
mkdir -p runs/bench
before=$(ls runs/bench)
"$trainer" train --data "$data" --out runs/bench --steps "$steps" --seed 0 --quiet \
  --eval-every $(( steps / 2 > 0 ? steps / 2 : 1 )) --tagger "$tagger" "$@"
run=runs/bench/$(comm -13 <(echo "$before") <(ls runs/bench) | tail -1)
"$trainer" eval --model "$run" --tagger "$tagger" --data "$data" --json "$run/eval.json"
echo "train seconds: $(tail -1 "$run/stats.jsonl" | sed 's/.*"train_seconds":\([0-9.]*\).*/\1/')"
echo "results: $run/eval.json"
