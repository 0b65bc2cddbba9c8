#!/usr/bin/env bash
# GPU results for issue 8: train-step benchmark at the paper's real shapes, the
# Reuters benchmark (paper-style preset) and the four main models on EURLEX57K.
#
#   bash benchmarks/gpu_results.sh [OUT_DIR]            # default OUT_DIR: runs/gpu-results
#
# Environment (all optional):
#   DATA         data directory with reuters21578.tar.gz and EURLEX57K.tar.gz (or EURLEX57K/)
#                (default: $XMTC_DATA, else ./shared/data, else ../shared/data)
#   EMBEDDINGS   GloVe text file for --embeddings (default: $DATA/glove.6B.50d.subset.txt.gz if present)
#   EPOCHS       epochs of each EURLEX57K model (default: the preset's 20; lower it to fit the device budget)
#   STAGES       which stages to run, any of: step memory reuters eurlex57k (default: all four, in that order)
#   PYTHON       interpreter (default: python3)
#
# Each stage writes under OUT_DIR and logs to OUT_DIR/<stage>.log; a failed stage
# does not stop the others (the exit code is the number of failed stages).
# Printed at the end: the hardware, torch version and every command that ran
# (OUT_DIR/commands.txt), for the results tables of docs/results.md.
#
# With the device tool (runs in the repo root; only the working tree travels,
# 64 MiB at most): copy the data into an ignored folder of the checkout first,
#   echo /gpu_data/ >> .git/info/exclude; mkdir -p gpu_data
#   cp ../shared/data/reuters21578.tar.gz ../shared/data/glove.6B.50d.subset.txt.gz gpu_data/
# EURLEX57K.tar.gz is 72 MB, over the 64 MiB limit: carry a slimmer copy (e.g. the
# JSON files without the unused `attachments`/`uri` fields, re-packed with xz or gzip -9)
# or the prepared-dataset cache, in separate calls if needed; then
#   run(command="DATA=gpu_data OUT=$OUT bash benchmarks/gpu_results.sh $OUT/results", carry=["gpu_data"])
# and split the stages over several calls (STAGES=step, STAGES=reuters, ...): one
# call may run at most 10 minutes.
set -u
OUT_DIR=${1:-runs/gpu-results}
PY=${PYTHON:-python3}
if [ -n "${DATA:-}" ]; then :
elif [ -n "${XMTC_DATA:-}" ]; then DATA=$XMTC_DATA
elif [ -d shared/data ]; then DATA=shared/data
else DATA=../shared/data; fi
EMB=${EMBEDDINGS:-}
if [ -z "$EMB" ] && [ -f "$DATA/glove.6B.50d.subset.txt.gz" ]; then EMB=$DATA/glove.6B.50d.subset.txt.gz; fi
EMB_ARGS=()
[ -n "$EMB" ] && EMB_ARGS=(--embeddings "$EMB")
EPOCH_ARGS=()
[ -n "${EPOCHS:-}" ] && EPOCH_ARGS=(--epochs "$EPOCHS")
STAGES=${STAGES:-"step memory reuters eurlex57k"}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR"
: > "$OUT_DIR/commands.txt"
FAILED=0

run() {  # run STAGE CMD...: log the command, run it, keep going on failure
    local stage=$1; shift
    echo "$*" >> "$OUT_DIR/commands.txt"
    echo "== [$stage] $*"
    local t0=$(date +%s)
    if "$@" > >(tee -a "$OUT_DIR/$stage.log") 2>&1; then
        echo "== [$stage] ok in $(( $(date +%s) - t0 )) s"
    else
        echo "== [$stage] FAILED (exit $?) after $(( $(date +%s) - t0 )) s; see $OUT_DIR/$stage.log"
        FAILED=$((FAILED + 1))
    fi
}

{
    echo "date: $(date -u +%FT%TZ)"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: n/a"
    $PY -c 'import torch, platform; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "python", platform.python_version())'
    echo "git: $(git rev-parse --short HEAD 2>/dev/null) $(git status --porcelain 2>/dev/null | wc -l) changed files"
} | tee "$OUT_DIR/hardware.txt"

for stage in $STAGES; do
    case $stage in
    step)
        # 1. train step at the real shapes, bf16 autocast, CUDA events; matching % and IPOT %
        run step $PY benchmarks/train_step.py --device cuda --scale 1 --max-vocab 0 --steps 10 --warmup 3 \
            --json "$OUT_DIR/train_step_cuda.json"
        # the same with the eager IPOT (no torch.compile): what the fused loop saves
        run step $PY benchmarks/train_step.py --device cuda --scale 1 --max-vocab 0 --steps 10 --warmup 3 \
            --ipot-impl eager --json "$OUT_DIR/train_step_cuda_eager_ipot.json"
        # the set loss alone, batched vs per-example reference, at the paper's sizes
        run step $PY benchmarks/set_loss.py --device cuda --json "$OUT_DIR/set_loss_cuda.json"
        ;;
    memory)
        # 2. Amazon-670K (V = 670,091 + 4, bottleneck 512, B = 64, N = 7) trains on one GPU: peak memory
        run memory $PY benchmarks/train_step.py --device cuda --scale 1 --max-vocab 0 --preset amazon670k \
            --steps 3 --warmup 1 --json "$OUT_DIR/amazon670k_memory_cuda.json"
        ;;
    reuters)
        # 3. Reuters-21578 ModApte, all eight variants of the paper's tables (paper-style preset, not --fast)
        run reuters $PY examples/benchmark.py --data reuters --data-dir "$DATA" "${EMB_ARGS[@]}" --device cuda \
            --out "$OUT_DIR/benchmark-reuters"
        ;;
    eurlex57k)
        # 4. the four main models on EURLEX57K (preset: 20 epochs, batch 32, lr 1e-3, S = 1000)
        for model in seq2seq mlc2seq sgm otseq2set; do
            run eurlex57k $PY examples/train_$model.py --data eurlex57k --data-dir "$DATA" "${EMB_ARGS[@]}" \
                "${EPOCH_ARGS[@]}" --device cuda --out "$OUT_DIR/$model-eurlex57k" --overwrite
        done
        ;;
    *) echo "unknown stage $stage (choose from: step memory reuters eurlex57k)"; FAILED=$((FAILED + 1)) ;;
    esac
done

echo "commands: $OUT_DIR/commands.txt; failed stages: $FAILED"
exit $FAILED
