#!/usr/bin/env bash
# Threads and processes on a CPU, measured on real training: one OTSeq2Set (or MODEL) epoch
# of EURLEX57K's --fast preset on TRAIN_DOCS documents, run three ways one after the other:
#
#   1 process x 1 thread | 1 process x 2 threads | torchrun 2 processes x 1 thread (gloo)
#
#   bash benchmarks/cpu_threads.sh [OUT_DIR]          # default OUT_DIR: runs/cpu-threads
#
# Environment (optional): DATA (default: $XMTC_DATA, else ../shared/data), MODEL (otseq2set),
# TRAIN_DOCS (1280), REPEATS (2: the three ways alternate REPEATS times, so a background load
# hits them alike), PYTHON (python3). Prints the training docs/s of each run (from its
# metrics.json: documents over training time, evaluation excluded) and the median per way.
set -eu
OUT=${1:-runs/cpu-threads}
DATA=${DATA:-${XMTC_DATA:-../shared/data}}
MODEL=${MODEL:-otseq2set}
TRAIN_DOCS=${TRAIN_DOCS:-1280}
REPEATS=${REPEATS:-2}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
common=(--data eurlex57k --fast --data-dir "$DATA" --epochs 1 --max-train-docs "$TRAIN_DOCS"
        --max-valid-docs 64 --max-test-docs 64 --progress lines --overwrite)
for r in $(seq 1 "$REPEATS"); do
  "$PY" "examples/train_$MODEL.py" "${common[@]}" --threads 1 --out "$OUT/1proc-1thread-$r" > "$OUT/1proc-1thread-$r.log" 2>&1
  "$PY" "examples/train_$MODEL.py" "${common[@]}" --threads 2 --out "$OUT/1proc-2threads-$r" > "$OUT/1proc-2threads-$r.log" 2>&1
  "$PY" -m torch.distributed.run --standalone --nproc_per_node 2 "examples/train_$MODEL.py" "${common[@]}" \
    --threads 1 --out "$OUT/2procs-1thread-$r" > "$OUT/2procs-1thread-$r.log" 2>&1
done
"$PY" - "$OUT" <<'EOF'
import json, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
ways = {}
for m in sorted(out.glob("*/metrics.json")):
    rec = json.loads(m.read_text())["history"][0]["train"]
    way = m.parent.name.rsplit("-", 1)[0]
    ways.setdefault(way, []).append(rec["docs_per_s"])
    print(f"{m.parent.name:24s} {rec['docs_per_s']:6.1f} docs/s ({rec['docs']} docs in {rec['time_s']:.0f} s)")
base = statistics.median(ways.get("1proc-1thread", [float("nan")]))
for way, v in ways.items():
    print(f"median {way:18s} {statistics.median(v):6.1f} docs/s  {statistics.median(v) / base:.2f}x of 1 process x 1 thread")
EOF
