#!/usr/bin/env bash
# Gemma-3-270M students from four teacher sources (default profile: 2 epochs, lr 1e-4),
# one after another; rerun to resume (finished cells are reused). Then the summary table.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
run() { $PY -m cotlib run --profile default --methods fine_tune_cot --tasks "$1" --teacher "$2" --D "$3"; }
run last_letter_concatenation esc:gpt-3.5-turbo 4
run date_understanding mot:gpt-3.5-turbo-cot1 4
run svamp mcc-kd:gpt-3.5-turbo 1
run multiarith run:qwen2.5-coder-1.5b/zs_cot_T0.7_max256_ans32_seed0 1
$PY - <<'PY'
from cotlib import experiments, results, tables
cells = [("last_letter_concatenation", "esc:gpt-3.5-turbo", 4),
         ("date_understanding", "mot:gpt-3.5-turbo-cot1", 4), ("svamp", "mcc-kd:gpt-3.5-turbo", 1),
         ("multiarith", "run:qwen2.5-coder-1.5b/zs_cot_T0.7_max256_ans32_seed0", 1)]
profile = experiments.get_profile("default")
table = tables.source_table(profile, cells)
results.save_table(table, results.RESULTS / "teacher_sources_default.csv", "source_table", profile,
                   index=False, cells=cells)
print(table.round(2).to_string(index=False))
PY
