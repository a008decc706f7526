#!/usr/bin/env bash
# The full main table (notebook 04, profile "full": the recipe chosen on validation in
# results/recipe_search.csv) in two passes over the tasks: first the five methods of every
# task, then Fine-tune-CoT again under SEEDS. After each task of the first pass it saves
# results/main_full.csv and audit_full.csv (the tasks whose five methods have finished), and
# after each task of either pass seeds_full.csv (the seeds finished so far, counted), with
# their predictions: every cell's predictions are exported as it finishes, so the table grows
# task by task.
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

def methods(task):
    one = experiments.get_profile("full", tasks=[task])
    return [(one, m) for m in one.methods if experiments.has_cell(get_task(task), m)]

def seeded(task):
    one = experiments.get_profile("full", tasks=[task])
    return [(experiments.with_settings(one, {"seed": s}), "fine_tune_cot") for s in seeds]

def complete(task):
    return all(experiments.finished(experiments.run_dir(p, task, m)) for p, m in methods(task))

def save(note, main):
    # the seed table; with main, the main and audit tables too (seeds change neither)
    profile = experiments.get_profile("full", tasks=[t for t in full.tasks if complete(t)])
    if main:
        results.save_table(tables.main_table(profile, log=lambda m: None),
                           results.RESULTS / "main_full.csv", "main_table", profile)
        results.save_table(tables.audit_table(profile), results.RESULTS / "audit_full.csv",
                           "audit_table", profile)
    results.save_table(tables.seed_table(profile, seeds), results.RESULTS / "seeds_full.csv",
                       "seed_table", profile, index=False, seeds=list(seeds))
    print(f"{note}: saved (the tables hold {len(profile.tasks)} tasks)", flush=True)

for cells, step in ((methods, "five methods"), (seeded, "seeds")):
    for task in order:
        for chosen, method in cells(task):  # exported as it finishes: another machine restores
            experiments.run(chosen, task, method)  # the cell instead of training it again
            results.export_cell(experiments.run_dir(chosen, task, method))
        save(f"{task}, {step}", main=cells is methods)
PY
