#!/usr/bin/env bash
# kill -9 at random moments during `export`, `convert` and checkpointing `train`, then check that
# what the killed command writes to still loads (the previous model or the new one, whole):
#   bench/kill_survival.sh [TRIES=20] [DATA=../shared/data/anime-faces-64]
# Needs a release build (cargo build --release -p trainer). Prints one line per try and a total
# per command. Works in a temporary folder; writes nothing else.
set -uo pipefail
cd "$(dirname "$0")/.."
TRIES=${1:-20}
DATA=${2:-../shared/data/anime-faces-64}
BIN=${KYARA_TRAINER:-${CARGO_TARGET_DIR:-target}/release/trainer}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

ms() { date +%s%3N; }
loads() { "$BIN" generate --model "$1" --seeds 1 --out "$W/check" >/dev/null 2>&1; }

# A run of the default architecture (so each write is the size of a real one), two checkpoints.
"$BIN" train --data "$DATA" --out "$W/runs" --steps 2 --checkpoint-every 1 --sample-every 100 \
  --quiet >/dev/null 2>&1 || { echo "setup: train failed" >&2; exit 1; }
RUN=$(ls -d "$W"/runs/*/)
"$BIN" export --run "$RUN" --out "$W/model" >/dev/null 2>&1 || { echo "setup: export failed" >&2; exit 1; }
"$BIN" convert --model "$W/model" --out "$W/half" --precision f16 --check-seeds 0-1 >/dev/null 2>&1 \
  || { echo "setup: convert failed" >&2; exit 1; }

# Time one uninterrupted run of each command: kills land anywhere in that span.
t0=$(ms); "$BIN" export --run "$RUN" --out "$W/model" --force >/dev/null 2>&1; t_export=$(( $(ms) - t0 ))
t0=$(ms); "$BIN" convert --model "$W/model" --out "$W/half" --precision f16 --check-seeds 0-1 --force >/dev/null 2>&1
t_convert=$(( $(ms) - t0 ))
t0=$(ms); "$BIN" train --resume "$RUN" --steps 4 --checkpoint-every 1 --quiet >/dev/null 2>&1
t_train=$(( $(ms) - t0 ))
echo "uninterrupted: export ${t_export} ms, convert ${t_convert} ms, train 2 steps + checkpoints ${t_train} ms"

survived_export=0; survived_convert=0; survived_train=0; landed_train=0
landed_export=0; landed_convert=0
# A kill "landed mid-write" when it left a temporary file or a second weights file behind.
# Leftovers of an earlier killed try (temporary files, weights no card names) are removed
# before the next, so that each try's count is its own.
tidy() {
  local keep f
  keep=$(python3 -c "import json; print(json.load(open('$1/model.json'))['weights'])")
  for f in "$1"/.tmp-* "$1"/*.bpk; do
    [ -e "$f" ] && [ "$(basename "$f")" != "$keep" ] && rm -f "$f"
  done
  return 0
}
midwrite() { [ "$(ls -A "$1" | grep -c '^\.tmp-\|\.bpk$')" -gt 1 ]; }
# Runs a command and kills it with SIGKILL: on odd tries at a uniformly random moment of its
# usual run time (MS), on even tries 0-20 ms after a temporary file first shows in WATCH, i.e.
# while it writes (most of a run is reading and computing; the writes take milliseconds).
#   run_and_kill MS WATCH CMD...
run_and_kill() {
  local ms=$1 watch=$2; shift 2
  python3 - "$ms" "$watch" "$((i % 2))" "$@" <<'PY'
import os, random, subprocess, sys, time
ms, watch, at_write, cmd = float(sys.argv[1]), sys.argv[2], sys.argv[3] == "0", sys.argv[4:]
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if at_write:
    while p.poll() is None:
        try:
            if any(n.startswith(".tmp-") for n in os.listdir(watch)):
                time.sleep(random.uniform(0, 0.02))
                break
        except FileNotFoundError:
            pass
        time.sleep(0.0002)
else:
    time.sleep(random.uniform(0, ms) / 1000)
p.kill()
p.wait()
PY
}
for i in $(seq 1 "$TRIES"); do
  # export: OUT holds the previous export; killed, it must still load.
  tidy "$W/model"; tidy "$W/half"
  run_and_kill "$t_export" "$W/model" "$BIN" export --run "$RUN" --out "$W/model" --force \
    --precision "$([ $((i % 4)) -lt 2 ] && echo f16 || echo f32)"
  midwrite "$W/model" && landed_export=$((landed_export + 1))
  if loads "$W/model"; then survived_export=$((survived_export + 1)); r=ok; else r=LOST; fi
  echo "export  try $i: $r ($(ls "$W/model" | wc -l) files)"

  # convert: OUT holds an earlier conversion; the source is never touched.
  tidy "$W/model"; tidy "$W/half"
  run_and_kill "$t_convert" "$W/half" "$BIN" convert --model "$W/model" --out "$W/half" --force \
    --precision "$([ $((i % 4)) -lt 2 ] && echo int8 || echo f16)" --check-seeds 0-1
  midwrite "$W/half" && landed_convert=$((landed_convert + 1))
  if loads "$W/half" && loads "$W/model"; then survived_convert=$((survived_convert + 1)); r=ok; else r=LOST; fi
  echo "convert try $i: $r"

  # train: a checkpoint every step; after the kill the run must resume (and export).
  before=$(cat "$RUN/checkpoints/latest")
  run_and_kill "$t_train" "$RUN/checkpoints" "$BIN" train --resume "$RUN" --steps $((4 + 2 * i)) \
    --checkpoint-every 1 --quiet
  after=$(cat "$RUN/checkpoints/latest")
  ls -d "$RUN"/checkpoints/.tmp-* >/dev/null 2>&1 && landed_train=$((landed_train + 1))
  if "$BIN" train --resume "$RUN" --steps $((4 + 2 * i)) --checkpoint-every 1 --quiet >/dev/null 2>&1 \
      && loads "$RUN"; then
    survived_train=$((survived_train + 1)); r=ok
  else
    r=LOST
  fi
  echo "train   try $i: $r (latest $before -> $after)"
done
echo "survived: export $survived_export/$TRIES ($landed_export landed mid-write), \
convert $survived_convert/$TRIES ($landed_convert mid-write), checkpointing train \
$survived_train/$TRIES ($landed_train left a half-written checkpoint)"
