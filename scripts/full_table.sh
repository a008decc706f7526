#!/usr/bin/env bash
# The full main table (notebook 04, profile "full": the recipe chosen on validation in
# results/recipe_search.csv), task by task: the five methods, Fine-tune-CoT again under SEEDS,
# then results/main_full.csv, seeds_full.csv and audit_full.csv saved with their predictions,
# covering every task whose cells have all finished (this run's or earlier ones; each cell's
# predictions are exported as it finishes).
# Rerun to resume (finished or committed cells are reused, a killed cell resumes from its
# checkpoint). TASKS picks and orders tasks (default: all 9).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
TASKS=${TASKS:-}
SEEDS=${SEEDS:-"0 1 2"}
$PY -m cotlib restore
$PY - <<PY
from cotlib import experiments, results, tables
from cotlib.tasks import get_task
full = experiments.get_profile("full")
order = "$TASKS".split() or list(full.tasks)
seeds = tuple(int(s) for s in "$SEEDS".split())

def cells(task):
    one = experiments.get_profile("full", tasks=[task])
    found = [(one, m) for m in one.methods if experiments.has_cell(get_task(task), m)]
    return found + [(experiments.with_settings(one, {"seed": s}), "fine_tune_cot") for s in seeds]

def complete(task):
    return all(experiments.finished(experiments.run_dir(p, task, m)) for p, m in cells(task))

for n, task in enumerate(order, 1):
    for chosen, method in cells(task):  # exported as it finishes: another machine restores
        experiments.run(chosen, task, method)  # the cell instead of training it again
        results.export_cell(experiments.run_dir(chosen, task, method))
    profile = experiments.get_profile("full", tasks=[t for t in full.tasks if complete(t)])
    results.save_table(tables.main_table(profile, log=lambda m: None),
                       results.RESULTS / "main_full.csv", "main_table", profile)
    results.save_table(tables.seed_table(profile, seeds), results.RESULTS / "seeds_full.csv",
                       "seed_table", profile, index=False, seeds=list(seeds))
    results.save_table(tables.audit_table(profile), results.RESULTS / "audit_full.csv",
                       "audit_table", profile)
    print(f"{task}: saved ({n} of {len(order)} here; the tables hold {len(profile.tasks)} tasks)",
          flush=True)
PY
