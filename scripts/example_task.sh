#!/usr/bin/env bash
# The example task (examples/tasks/reverse_words.jsonl: 300 generated questions, 240 train /
# 60 test) through `distil`: the local Qwen2.5-Coder-1.5B teacher (greedy Zero-shot-CoT, D=1)
# on the 240 train questions, then a Gemma-3-270M student (default profile: 2 epochs, lr 1e-4,
# the last 40 train questions held out), Fine-tune-CoT beside zero-shot and vanilla on test.
# Rerun to resume: stored teacher completions and finished cells are reused.
# CPU: ~240 completions x ~11 CPU-s = ~45 CPU-min of teacher; ~20 CPU-min of student
# training and evaluation (3 cells, 100 questions each).
# Writes the student under runs/distil/reverse_words and copies the small outputs (results,
# model card, curated set, predictions) to results/reverse_words/ to commit.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8080}
URL="http://127.0.0.1:$PORT/v1"
OUT=${OUT:-runs/distil/reverse_words}
up() { $PY -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)" "$URL/models" 2>/dev/null; }
if ! up; then  # no teacher serving yet: start one for this script, stopped on exit
  $PY -m cotlib serve --model qwen2.5-coder-1.5b --parallel 4 --port "$PORT" &
  SERVER=$!
  trap 'kill $SERVER' EXIT
  until up; do sleep 5; kill -0 "$SERVER"; done
fi
$PY -m cotlib distil --task-file examples/tasks/reverse_words.jsonl \
    --teacher local --model qwen2.5-coder-1.5b --base-url "$URL" --D 1 \
    --max-tokens 256 --concurrency 4 --timeout 900 \
    --profile default --baselines zero_shot,vanilla --out "$OUT" --no-progress
mkdir -p results/reverse_words
cp "$OUT"/results.json "$OUT"/train.jsonl "$OUT"/predictions_*.jsonl results/reverse_words/
cp "$OUT"/student/README.md results/reverse_words/model_card.md
$PY -c "import json, sys; from cotlib.distil import accuracy_table; \
print(accuracy_table(json.load(open(sys.argv[1]))))" results/reverse_words/results.json
