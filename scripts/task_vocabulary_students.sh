#!/usr/bin/env bash
# Full head against the task vocabulary (Gemma-3-270M, default profile: 2 epochs, lr 1e-4, same
# seed) on three tasks; rerun to resume (finished cells are reused). Writes
# results/task_vocabulary.csv with its predictions.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
TASKS="coin_flip date_understanding last_letter_concatenation"
for vocab in --no-task-vocab --task-vocab; do
  $PY -m cotlib run --profile default --methods fine_tune_cot --tasks $TASKS $vocab
done
$PY - <<PY
from cotlib import experiments, results, tables
cells = [dict(task=task, task_vocab=vocab) for task in "$TASKS".split() for vocab in (False, True)]
profile = experiments.get_profile("default")
table = tables.cells_table(profile, cells)
results.save_table(table, results.RESULTS / "task_vocabulary.csv", "cells_table", profile,
                   index=False, cells=cells)
print(table.round(2).to_string(index=False))
PY
