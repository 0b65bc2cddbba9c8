#!/usr/bin/env bash
# The fidelity switches of docs/fidelity.md, one at a time against the authors' defaults,
# over several seeds: OTSeq2Set on DATASET's PRESET, test metrics of the best epoch.
#
#   bash benchmarks/fidelity.sh [OUT_DIR]            # default OUT_DIR: runs/fidelity
#
# Environment (optional): DATASET (eurlex57k), PRESET (fast: "--fast"; cpu: "--preset cpu"),
# SEEDS ("0 1"), DATA (default: $XMTC_DATA, else ../shared/data), PYTHON (python3).
# Finished runs (metrics.json with test metrics) are skipped, so the script can be re-run
# after an interruption. Prints per setting: test micro-F1 per seed, mean and spread.
set -u
OUT=${1:-runs/fidelity}
DATASET=${DATASET:-eurlex57k}
PRESET=${PRESET:-fast}
SEEDS=${SEEDS:-"0 1"}
DATA=${DATA:-${XMTC_DATA:-../shared/data}}
PY=${PYTHON:-python3}
case $PRESET in fast) variant=(--fast) ;; *) variant=(--preset "$PRESET") ;; esac
mkdir -p "$OUT"
settings=("authors:" "empty_uniform:--empty-init uniform" "dropout_all:--dropout-sites all"
          "lightconv_heads:--lightconv-style heads")
for seed in $SEEDS; do
  for s in "${settings[@]}"; do
    name=${s%%:*}; flags=${s#*:}
    dir="$OUT/$DATASET-$PRESET-$name-seed$seed"
    if "$PY" -c 'import json,sys; sys.exit(0 if "test" in json.load(open(sys.argv[1])) else 1)' "$dir/metrics.json" 2>/dev/null; then
      continue
    fi
    # shellcheck disable=SC2086
    "$PY" examples/train_otseq2set.py --data "$DATASET" "${variant[@]}" --data-dir "$DATA" --seed "$seed" $flags \
      --out "$dir" --overwrite --progress lines > "$dir.log" 2>&1 || echo "failed: $dir (see $dir.log)"
  done
done
"$PY" - "$OUT" "$DATASET-$PRESET" <<'EOF'
import json, statistics, sys
from pathlib import Path
out, prefix = Path(sys.argv[1]), sys.argv[2]
rows = {}
for m in sorted(out.glob(f"{prefix}-*-seed*/metrics.json")):
    d = json.loads(m.read_text())
    if "test" not in d:
        continue
    name = m.parent.name[len(prefix) + 1:].rsplit("-seed", 1)[0]
    rows.setdefault(name, []).append((m.parent.name.rsplit("seed", 1)[1], d["test"]))
for name, runs in rows.items():
    f1 = [100 * t["micro_f1"] for _, t in runs]
    p = statistics.mean(100 * t["micro_precision"] for _, t in runs)
    r = statistics.mean(100 * t["micro_recall"] for _, t in runs)
    spread = max(f1) - min(f1)
    print(f"{name:16s} micro-F1 {statistics.mean(f1):6.2f} (seeds {', '.join(f'{s}: {v:.2f}' for (s, _), v in zip(runs, f1))};"
          f" spread {spread:.2f})  P {p:.1f} R {r:.1f}")
EOF
