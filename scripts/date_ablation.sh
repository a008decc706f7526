#!/usr/bin/env bash
# What moves Date Understanding off chance (full profile, Fine-tune-CoT, same recipe and seed):
# the recorded teacher as the main table has it; without the samples whose rationale concludes
# another choice (--consistent-choices); the copyable answer; gpt-3.5-turbo's diverse samples
# (MoT, D=4), with and without the filter. Rerun to resume; the table and its predictions are
# saved after each cell (results/date_ablation_full.csv).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY -m cotlib restore
$PY - <<'PY'
from cotlib import experiments, results, tables
task, mot = "date_understanding", "mot:gpt-3.5-turbo-cot1"
cells = [dict(task=task), dict(task=task, consistent_choices=True),
         dict(task=task, answer_format="copyable"), dict(task=task, teacher=mot, degree=4),
         dict(task=task, teacher=mot, degree=4, consistent_choices=True)]
profile = experiments.get_profile("full", tasks=[task])
for cell in cells:
    print(cell, flush=True)
    experiments.run(experiments.with_settings(profile, cell), task, "fine_tune_cot")
    table = tables.cells_table(profile, cells)
    results.save_table(table, results.RESULTS / "date_ablation_full.csv", "cells_table", profile,
                       index=False, cells=cells)
print(table.round(2).to_string(index=False))
PY
