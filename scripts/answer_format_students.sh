#!/usr/bin/env bash
# Paper against copyable answer format (Gemma-3-270M, default profile: 2 epochs, lr 1e-4,
# same seed), most telling cells first; rerun to resume (finished and committed cells are
# reused). The table and its predictions are saved after every cell.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
# full head: the committed cells predate the task vocabulary (same recipe for both formats)
run() { $PY -m cotlib run --profile default --no-task-vocab --methods fine_tune_cot --tasks "$@"
        save; }
save() { $PY - <<'PY'
from cotlib import experiments, results, tables
cells = [dict(task=task, answer_format=form, **teacher)
         for task, teachers in [
             ("last_letter_concatenation", [{}, dict(teacher="esc:gpt-3.5-turbo", degree=4)]),
             ("date_understanding", [{}, dict(teacher="mot:gpt-3.5-turbo-cot1", degree=4)]),
             ("tracking_shuffled_objects", [{}])]
         for teacher in teachers for form in ("paper", "copyable")]
profile = experiments.get_profile("default", task_vocab=False)
table = tables.cells_table(profile, cells, choose="answer_format")
results.save_table(table, results.RESULTS / "answer_format.csv", "cells_table", profile, index=False,
                   cells=cells, choose="answer_format")
print(table.round(2).to_string(index=False))
PY
}
$PY -m cotlib restore
run last_letter_concatenation --teacher esc:gpt-3.5-turbo --D 4 --answer-format copyable
run last_letter_concatenation --answer-format copyable
run last_letter_concatenation
run date_understanding
run date_understanding --answer-format copyable
run date_understanding --teacher mot:gpt-3.5-turbo-cot1 --D 4 --answer-format copyable
run tracking_shuffled_objects
run tracking_shuffled_objects --answer-format copyable
