#!/usr/bin/env bash
# Diverse reasoning (notebook 05): Gemma-3-270M Fine-tune-CoT students at each D of
# `studies.DIVERSE_PLAN` (Last Letter esc:gpt-3.5-turbo at D=1,2,4,8,16, Date
# mot:gpt-3.5-turbo-cot1 and SVAMP mcc-kd:gpt-3.5-turbo at D=1,2,4,8; MultiArith, our local
# Qwen at T=0.7, D=1,2,4), each task with its reference cells (vanilla, recorded
# text-davinci-002 at D=1), every D training as
# many optimizer steps as D=1 (fixed steps: 2 CPU cores cannot afford the paper's fixed epochs,
# ~15 h on the full profile); then the paper's fixed epochs on EPOCHS_TASKS. One task at a time;
# rerun to resume (finished or committed cells are reused, a killed cell resumes from its
# checkpoint); the table and its predictions are saved after each cell.
# Recipe: PROFILE (default: full, the recipe chosen on validation), EPOCHS and LR (unset:
# the profile's). First see the cells and their estimated time:
#   python -m cotlib study diverse --plan --budget epochs steps
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PROFILE=${PROFILE:-full}
RECIPE=(--profile "$PROFILE" ${EPOCHS:+--epochs "$EPOCHS"} ${LR:+--learning-rate "$LR"})
TASKS=${TASKS:-"last_letter_concatenation date_understanding svamp multiarith"}
EPOCHS_TASKS=${EPOCHS_TASKS:-"last_letter_concatenation"}  # fixed epochs vs fixed steps
# the table as far as it is finished (blank: not run) with its predictions, training nothing
save() { $PY -m cotlib study diverse "${RECIPE[@]}" --budget epochs steps --plan \
    --out "results/diverse_reasoning_${PROFILE}.csv"; }
$PY -m cotlib restore  # committed cells are reused, not trained again
cell() { $PY -m cotlib study diverse "${RECIPE[@]}" --tasks "$1" --budget "$2" --D "$3" && save; }
for task in $TASKS; do  # one D at a time, saved after each (a D not in a task's plan: nothing)
    for d in 1 2 4 8 16; do cell "$task" steps "$d"; done
done
for task in $EPOCHS_TASKS; do
    for d in 1 2 4 8 16; do cell "$task" epochs "$d"; done
done
