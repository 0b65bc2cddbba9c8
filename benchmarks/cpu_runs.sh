#!/usr/bin/env bash
# The --preset cpu runs of docs/results.md (EURLEX57K, Reuters), two at a time on a 2-core CPU, each
# continued with --resume where its run directory holds a checkpoint. Run it again after an
# interruption (a session's end): finished runs are skipped, interrupted ones resume from their
# last checkpoint. A finished run is recorded into results/<dataset>/<run>/seed<K>/ (config.json,
# metrics.json, predictions.tsv.gz: the only files committed; examples/results_table.py --record, which
# checks the predictions against the run's test micro-F1); then regenerate the tables of docs/results.md with
#   python examples/results_table.py eurlex57k --write docs/results.md   (and reuters)
#
#   mkdir -p ~/runs && nohup bash benchmarks/cpu_runs.sh > ~/runs/queue.log 2>&1 &
#
# Environment (optional): RUNS (root of the run directories, default ~/runs; a run lives in
# <RUNS>/<dataset>/<run> and logs to <RUNS>/<dataset>/<run>.log; before this script took
# several datasets it was RUNS=~/runs/eurlex57k: pass its parent now), DATA (default ../shared/data),
# PYTHON (python3), LANE_A / LANE_B (the two queues: entries <dataset>/<run>, or a bare <run> of
# eurlex57k; run names as in xmtc/reporting/results.py; an empty LANE_A="" runs nothing in that lane).
set -u
cd "$(dirname "$0")/.."
RUNS=${RUNS:-$HOME/runs}
DATA=${DATA:-../shared/data}
PY=${PYTHON:-python3}
LANE_A=${LANE_A-"otseq2set reuters/otseq2set reuters/mlc2seq reuters/seq2seq reuters/sgm bm_ot bm_lc"}
LANE_B=${LANE_B-"mlc2seq seq2seq sgm bm"}

finished() {  # the run's metrics.json has test metrics
  "$PY" -c 'import json,sys; sys.exit(0 if "test" in json.load(open(sys.argv[1])) else 1)' "$1/metrics.json" 2>/dev/null
}

run_one() {
  local dataset=eurlex57k name=$1
  case $1 in */*) dataset=${1%%/*}; name=${1#*/} ;; esac
  local dir="$RUNS/$dataset/$name"
  mkdir -p "$RUNS/$dataset"
  if finished "$dir"; then echo "$(date +%T) $dataset/$name: finished earlier"; else
    # the command of the results table (xmtc/reporting/results.py), with this machine's data and run directories
    local cmd
    if ! cmd=$("$PY" -c 'import sys; from xmtc.reporting.results import command; print(command(sys.argv[1], "cpu", sys.argv[2], sys.argv[3]))' \
          "$dataset" "$name" "$DATA" 2>&1); then
      echo "$(date +%T) $dataset/$name: skipped, no command for it: ${cmd##*$'\n'}"; return
    fi
    cmd="$PY ${cmd#python } "; cmd="${cmd% --out *} --out $dir"
    if pgrep -f -- "--out $dir( |$)" > /dev/null; then
      echo "$(date +%T) $dataset/$name: another process trains in $dir; skipped"; return
    fi
    [ -f "$dir/checkpoint.pt" ] && cmd="$cmd --resume"
    echo "$(date +%T) $dataset/$name: $cmd"
    $cmd --progress lines >> "$dir.log" 2>&1; local rc=$?
    echo "$(date +%T) $dataset/$name: exit $rc"
  fi
  if finished "$dir"; then
    "$PY" examples/results_table.py "$dataset" --record "$dir" --run "$name" \
      || echo "$(date +%T) $dataset/$name: not recorded (see the line above)"
  fi
}

lane() { for name in $1; do run_one "$name"; done; }

lane "$LANE_A" & a=$!
lane "$LANE_B" & b=$!
wait $a $b
