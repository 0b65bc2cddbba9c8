#!/usr/bin/env bash
# EURLEX57K at --preset cpu: every model of the README table, two at a time on a 2-core CPU,
# each continued with --resume where a run directory holds a checkpoint. Run it again after an
# interruption (a session's end): finished runs are skipped, interrupted ones resume from their
# last completed epoch. A finished run's config.json and metrics.json are copied to
# results/eurlex57k/<run>/ (the only files committed); then regenerate the README table with
#   python examples/results_table.py eurlex57k --write README.md
#
#   nohup bash benchmarks/eurlex57k_cpu.sh > ~/runs/eurlex57k/queue.log 2>&1 &
#
# Environment (optional): RUNS (run directories, default ~/runs/eurlex57k), DATA (default
# ../shared/data), PYTHON (python3), LANE_A / LANE_B (the two queues, run names of xmtc/results.py;
# an empty LANE_A="" runs nothing in that lane). Each run logs to <RUNS>/<run>.log.
set -u
cd "$(dirname "$0")/.."
RUNS=${RUNS:-$HOME/runs/eurlex57k}
DATA=${DATA:-../shared/data}
PY=${PYTHON:-python3}
LANE_A=${LANE_A-"otseq2set bm_ot bm bm_lc"}
LANE_B=${LANE_B-"mlc2seq seq2seq sgm"}
mkdir -p "$RUNS"

finished() {  # the run's metrics.json has test metrics
  "$PY" -c 'import json,sys; sys.exit(0 if "test" in json.load(open(sys.argv[1])) else 1)' "$1/metrics.json" 2>/dev/null
}

run_one() {
  local name=$1 dir="$RUNS/$1"
  if finished "$dir"; then echo "$(date +%T) $name: finished earlier"; else
    # the command of the README table (xmtc/results.py), with this machine's data and run directories
    local cmd
    cmd=$("$PY" -c 'import sys; from xmtc.results import command; print(command("eurlex57k", "cpu", sys.argv[1], sys.argv[2]))' \
          "$name" "$DATA")
    cmd="$PY ${cmd#python } "; cmd="${cmd% --out *} --out $dir"
    if pgrep -f -- "--out $dir( |$)" > /dev/null; then
      echo "$(date +%T) $name: another process trains in $dir; skipped"; return
    fi
    [ -f "$dir/checkpoint.pt" ] && cmd="$cmd --resume"
    echo "$(date +%T) $name: $cmd"
    $cmd --progress lines >> "$dir.log" 2>&1; local rc=$?
    echo "$(date +%T) $name: exit $rc"
  fi
  if finished "$dir"; then
    mkdir -p "results/eurlex57k/$name"
    cp "$dir/config.json" "$dir/metrics.json" "results/eurlex57k/$name/"
  fi
}

lane() { for name in $1; do run_one "$name"; done; }

lane "$LANE_A" & a=$!
lane "$LANE_B" & b=$!
wait $a $b
