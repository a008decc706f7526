#!/usr/bin/env bash
# Teacher study (notebook 05): a Gemma-3-270M Fine-tune-CoT student at D=1 from every teacher
# source of `studies.TEACHER_PLAN` on TASKS (default MultiArith and Date: the recorded
# text-davinci-002, greedy few-shot-CoT of six OpenAI models, Plan-and-Solve text-davinci-003
# or gpt-4 from MoT, our local Qwen). SVAMP and StrategyQA are in the plan too (dearer:
# TASKS="svamp strategy_qa"). One task at a time; rerun to resume (finished cells are reused;
# the recorded and Qwen D=1 cells are shared with scripts/diverse_reasoning.sh).
# Recipe: PROFILE (default: full, the recipe chosen on validation), EPOCHS and LR (unset:
# the profile's). First see the cells and their estimated time:
#   python -m cotlib study teachers --plan
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PROFILE=${PROFILE:-full}
RECIPE=(--profile "$PROFILE" ${EPOCHS:+--epochs "$EPOCHS"} ${LR:+--learning-rate "$LR"})
TASKS=${TASKS:-"multiarith date_understanding"}
# the table and the rank correlations as far as they are finished, with their predictions
save() { $PY -m cotlib study teachers "${RECIPE[@]}" --tasks $TASKS --plan \
    --out "results/teacher_study_${PROFILE}.csv"; }
$PY -m cotlib restore  # committed cells are reused, not trained again
for task in $TASKS; do  # one teacher at a time, saved after each
    for teacher in $($PY -c "from cotlib.studies import TEACHER_PLAN; print(*TEACHER_PLAN['$task'])"); do
        $PY -m cotlib study teachers "${RECIPE[@]}" --tasks "$task" --teachers "$teacher" && save
    done
done
