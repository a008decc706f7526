#!/usr/bin/env bash
# Recipe search on validation (full profile, Fine-tune-CoT, task vocabulary): each recipe of
# experiments.RECIPES on four tasks, every epoch scored on validation (the best kept) and on
# test for the paper's protocol only. Rerun to resume (finished or committed cells are reused).
# Writes results/recipe_search.csv (always the four tasks: blank what has not run) with its
# predictions after each cell. TASKS and RECIPES (first words of recipe names, e.g. "ours
# between") pick and order what runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEARCH="date_understanding last_letter_concatenation tracking_shuffled_objects multiarith"
TASKS=${TASKS:-$SEARCH}
RECIPES=${RECIPES:-"ours paper's between:"}
$PY -m cotlib restore
$PY - <<PY
from cotlib import experiments, results, tables
profile = experiments.get_profile("full", tasks="$SEARCH".split())
names = [n for word in "$RECIPES".split() for n in experiments.RECIPES if n.split()[0] == word]
if not names:
    raise SystemExit("RECIPES='$RECIPES': no recipe of experiments.RECIPES starts with these words")
for task in "$TASKS".split():  # a task's recipes together: the first are complete soonest
    for name in names:
        settings = experiments.RECIPES[name]
        print(f"{task}: {name}", flush=True)
        experiments.run(experiments.recipe_profile(profile, settings), task, "fine_tune_cot")
        # saved after each cell, so a session that ends mid-search keeps what finished
        table = tables.recipe_table(profile)
        results.save_table(table, results.RESULTS / "recipe_search.csv", "recipe_table",
                           profile, index=False, recipes=experiments.RECIPES)
print(tables.recipe_summary(table).round(2).to_string(index=False), flush=True)
PY
