"""Notebook 05's studies, made of Fine-tune-CoT cells (`experiments.run`: a finished cell is
loaded, a missing one trained, or left blank with run_missing=False).

Diverse reasoning: one teacher source at each degree D, per task. Teacher study: many teacher
sources at D=1, per task: the teacher's accuracy on our train split against its student's.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import sources
from .audit import computed_right, intermediate_counts, steps_right, written_equations
from .curation import report
from .data import CotlibError, runs_root
from .experiments import (Profile, finished, read_records, run, run_dir, teacher_completions,
                          train_indices, train_samples)
from .tables import paper_results
from .tasks import Task, get_task

QWEN_T07 = "run:qwen2.5-coder-1.5b/zs_cot_T0.7_max256_ans32_seed0"
# (task, teacher source, degrees): sources with several rationales per train question
DIVERSE_PLAN = (
    # 40 samples, T=0.7; D=16 because D=8 still gained over D=4 at fixed epochs
    ("last_letter_concatenation", "esc:gpt-3.5-turbo", (1, 2, 4, 8, 16)),
    ("date_understanding", "mot:gpt-3.5-turbo-cot1", (1, 2, 4, 8)),  # 20 samples, T not stated
    ("svamp", "mcc-kd:gpt-3.5-turbo", (1, 2, 4, 8)),  # 10 samples on 493 of 700 train questions
    ("multiarith", QWEN_T07, (1, 2, 4)),  # our local Qwen2.5-Coder-1.5B, 4 samples, T=0.7
)
FEW_SHOT_COT = tuple(f"faithful-cot:{model}" for model in (
    "code-davinci-001", "code-davinci-002", "text-davinci-002", "text-davinci-003",
    "gpt-3.5-turbo", "gpt-4"))  # greedy few-shot-CoT
# per task, teacher sources covering (nearly) all train questions at D=1
TEACHER_PLAN = {
    "multiarith": ("recorded", *FEW_SHOT_COT, "plan-and-solve:text-davinci-003", QWEN_T07),
    "date_understanding": ("recorded", *FEW_SHOT_COT, "mot:gpt-4-greedy"),
    "svamp": ("recorded", *FEW_SHOT_COT, "plan-and-solve:text-davinci-003", "dss:palm-540b"),
    "strategy_qa": ("recorded", *FEW_SHOT_COT, "plan-and-solve:text-davinci-003"),
}
# "epochs" (the paper): every D trains the profile's epochs, so D=8 takes ~8x the optimizer
# steps of D=1. "steps": every D trains as many steps as D=1 of the same source.
BUDGETS = ("epochs", "steps")
READINGS = ("rationale_right", "steps_right", "computed_right")  # of test rationales
PAPER_STUDENT = ("GPT-3", "0.3B")  # the paper's smallest GPT-3, the targets
NAN = float("nan")


def planned_steps(profile: Profile, samples: int) -> int:
    """The optimizer steps `students.train` takes on `samples` curated samples (one process)."""
    config = profile.train
    per_epoch = math.ceil(samples / (config.batch_size * config.grad_accum))
    return min(per_epoch * config.epochs, config.max_steps or math.inf)


def budgeted(profile: Profile, task: str, teacher: str, degree: int, budget: str) -> Profile:
    """The profile of one diverse-reasoning cell under a budget rule. "steps" caps training at
    D=1's steps (`TrainConfig.max_steps`, part of the cell's hash; the schedule spans them);
    where nothing is cut, the cell is the "epochs" one."""
    if budget not in BUDGETS:
        raise CotlibError(f"budget {budget!r}: choose from {', '.join(BUDGETS)}")
    cell = replace(profile, tasks=(task,), teacher=teacher, degree=degree)
    if budget == "epochs":
        return cell
    steps = {d: planned_steps(profile, len(train_samples(replace(cell, degree=d),
                                                         get_task(task), "fine_tune_cot")))
             for d in (1, degree)}
    if steps[degree] <= steps[1]:
        return cell
    return replace(cell, train=replace(profile.train, max_steps=steps[1]))


def cell(profile: Profile, task: str, method: str, run_missing: bool = True, log=print) -> dict:
    """A cell's metrics: trained and evaluated if missing (run_missing), else {} if missing."""
    if run_missing:
        return run(profile, task, method, log=log)
    return finished(run_dir(profile, task, method))


def scores(metrics: dict, prefix: str = "") -> dict:
    """Test accuracy with its 95 % interval (NaN: no finished cell)."""
    return {prefix + k: metrics.get(k, NAN) for k in ("accuracy", "ci_low", "ci_high")}


def cell_row(profile: Profile, task: str, run_missing: bool = True, log=print) -> dict:
    """One Fine-tune-CoT cell: its training set (known before training), then its results."""
    chosen = get_task(task)
    curated = train_samples(profile, chosen, "fine_tune_cot")
    kept = set(train_indices(profile, chosen)[0])
    taught = [c for c in teacher_completions(profile, chosen) if c.sample_index in kept]
    curation = report(chosen, taught, curated)
    metrics = cell(profile, task, "fine_tune_cot", run_missing, log)
    where = run_dir(profile, task, "fine_tune_cot")
    return {"cell": f"{task}/{where.name}", "epochs": profile.train.epochs, "train_samples": len(curated),
            "questions_kept": curation["questions_kept"],
            "distinct_per_question": curation["distinct_per_question"],
            "optimizer_steps": planned_steps(profile, len(curated)),
            "train_seconds": metrics.get("seconds", NAN),
            "validation": metrics.get("validation", {}).get("accuracy", NAN),
            **scores(metrics), "n": metrics.get("n", NAN),
            **(rationale_reading(chosen, where) if metrics else dict.fromkeys(READINGS, NAN))}


def rationale_reading(task: Task, out: Path) -> dict:
    """Over a finished cell's test rationales: rationale_right, the % that reach the gold
    answer themselves (Last Letter's letters; a choice's text, whatever letter follows);
    steps_right, the % of their written arithmetic steps whose result is right;
    computed_right, the % whose last written step, computed exactly, gives the gold answer.
    NaN where a task has no such step."""
    predictions = read_records(out / "predictions.jsonl")
    counts = intermediate_counts(task, predictions)
    read = dict.fromkeys(READINGS, NAN)
    if "intermediate_right" in counts:
        read["rationale_right"] = 100 * counts["intermediate_right"] / counts["predictions"]
    if task.answer_type == "number":
        read["steps_right"] = steps_right([p["rationale"] for p in predictions])
        read["computed_right"] = 100 * sum(computed_right(p["rationale"], p["answer"])
                                           for p in predictions) / len(predictions)
    return read


def references(profile: Profile, task: str, run_missing: bool = True, log=print) -> dict:
    """The reference lines of a task: vanilla fine-tuning and the recorded text-davinci-002
    student at D=1, both at the profile's own epochs."""
    own = replace(profile, tasks=(task,))
    recorded = replace(own, teacher="recorded", degree=1, distinct=False, answer_format="paper")
    return {**scores(cell(own, task, "vanilla", run_missing, log), "vanilla_"),
            "vanilla_cell": f"{task}/{run_dir(own, task, 'vanilla').name}",
            **scores(cell(recorded, task, "fine_tune_cot", run_missing, log), "recorded_D1_"),
            "recorded_D1_cell": f"{task}/{run_dir(recorded, task, 'fine_tune_cot').name}"}


def paper_numbers(task: str) -> dict:
    """The paper's GPT-3 0.3B Fine-tune-CoT at D=1 and with diverse reasoning (D=8; 64 on
    MultiArith and SVAMP)."""
    paper = paper_results()
    family, size = PAPER_STUDENT
    return {"paper_D1": paper.loc[(family, "Fine-tune-CoT", size), task],
            "paper_diverse": paper.loc[(family, "Diverse reasoning", size), task]}


def chosen_tasks(plan_tasks, tasks: list[str] | None) -> list[str]:
    if isinstance(tasks, str):
        raise CotlibError(f"parameter tasks={tasks!r}: expected a list of task names")
    unknown = set(tasks or ()) - set(plan_tasks)
    if unknown:
        raise CotlibError(f"task(s) {', '.join(sorted(unknown))} not in the study's plan; "
                          f"it covers {', '.join(plan_tasks)}")
    return [t for t in plan_tasks if not tasks or t in tasks]


def profile_tasks(profile: Profile, tasks: list[str] | None, plan) -> list[str] | None:
    """The tasks a study runs: those asked for; else the plan's tasks the profile has (the
    smoke profile: MultiArith), else all of the plan's (None)."""
    if tasks is not None:
        return tasks
    planned = [entry[0] for entry in plan] if not isinstance(plan, dict) else list(plan)
    return [t for t in planned if t in profile.tasks] or None


def diverse_table(profile: Profile, tasks: list[str] | None = None,
                  budgets: tuple[str, ...] = ("epochs",), degrees: list[int] | None = None,
                  plan=DIVERSE_PLAN, run_missing: bool = True, log=print) -> pd.DataFrame:
    """Diverse reasoning: per task of the plan, its source at each D of the plan (or only
    `degrees`) under each budget rule, beside the reference cells and the paper's numbers.
    Runs what is missing (run_missing)."""
    rows = []
    wanted = chosen_tasks([task for task, _, _ in plan], tasks)
    for task, teacher, planned in (s for s in plan if s[0] in wanted):
        shared = {**references(profile, task, run_missing, log), **paper_numbers(task)}
        for budget in budgets:
            for degree in (d for d in planned if not degrees or d in degrees):
                chosen = budgeted(profile, task, teacher, degree, budget)
                log(f"{task}: {teacher} D={degree} ({budget} budget)")
                rows.append({"task": task, "teacher": teacher, "budget": budget, "D": degree,
                             **cell_row(chosen, task, run_missing, log), **shared})
    return pd.DataFrame(rows)


def diverse_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per task and budget with a D>1 finished: the largest finished D against D=1 of the same
    source and against the paper's GPT-3 0.3B diverse number (gains in points), and at both
    what the test rationales get right (reached the gold answer; the last written step,
    computed exactly, gives it)."""
    rows = []
    for (task, budget), line in table.dropna(subset=["accuracy"]).groupby(["task", "budget"],
                                                                           sort=False):
        first, last = line.loc[line.D.idxmin()], line.loc[line.D.idxmax()]
        if first.D == last.D:
            continue  # only D=1 finished: nothing to compare yet
        rows.append({"task": task, "teacher": first.teacher, "budget": budget,
                     "D1": first.accuracy, "largest_D": last.D, "at_largest_D": last.accuracy,
                     "gain_over_D1": last.accuracy - first.accuracy,
                     **{f"{reading}_{at}": row[reading]
                        for reading in ("rationale_right", "computed_right")
                        for at, row in (("D1", first), ("at_largest_D", last))},
                     "paper_diverse": last.paper_diverse,
                     "over_paper_diverse": last.accuracy - last.paper_diverse})
    return pd.DataFrame(rows)


def teacher_table(profile: Profile, tasks: list[str] | None = None,
                  teachers: list[str] | None = None, plan=TEACHER_PLAN,
                  run_missing: bool = True, log=print) -> pd.DataFrame:
    """The teacher study: per task, each source of the plan (or only `teachers`) with its
    accuracy on our train split (all its train-part completions, D=1) beside its D=1 student;
    `paper_teacher` marks the recorded text-davinci-002. Arithmetic tasks add how often the
    teacher's right rationales and the student's test rationales write out a step (`equations`)."""
    rows = []
    for task in chosen_tasks(list(plan), tasks):
        for teacher in (t for t in plan[task] if not teachers or t in teachers):
            source = sources.get_source(teacher)
            train = sources.completions(source, get_task(task), "train", 1)
            log(f"{task}: {teacher} D=1")
            chosen = replace(profile, teacher=teacher, degree=1)
            row = {"task": task, "teacher": teacher, "model": source.teacher,
                   "style": source.style, "T": source.temperature,
                   "paper_teacher": teacher == "recorded",
                   "teacher_train_accuracy": sources.accuracy(train),
                   "teacher_train_questions": len({c.sample_index for c in train}),
                   **cell_row(chosen, task, run_missing, log)}
            if get_task(task).answer_type == "number":
                row.update(equations(train, run_dir(chosen, task, "fine_tune_cot")))
            rows.append(row)
    return pd.DataFrame(rows)


def equations(train: list, out: Path) -> dict:
    """% of a teacher's right train rationales, and of the test rationales of its student (run
    folder `out`, NaN if not finished), that write an arithmetic step with its result."""
    student = [p["rationale"] for p in read_records(out / "predictions.jsonl")] \
        if finished(out) else []
    return {"teacher_equations": written_equations([c.rationale for c in train if c.correct]),
            "student_equations": written_equations(student)}


def rank_correlation(table: pd.DataFrame, of: str = "teacher_train_accuracy",
                     permutations: int = 100_000) -> pd.DataFrame:
    """Per task: Spearman's rank correlation of a teacher column (`of`: its train accuracy, or
    e.g. teacher_equations) and student test accuracy over the finished cells (average ranks
    for ties; NaN below 3 teachers), and its two-sided p-value under random pairing (seeded
    permutations, (k + 1) / (n + 1))."""
    rows = []
    for task, group in table.dropna(subset=["accuracy", of]).groupby("task", sort=False):
        rho = p_value = NAN
        if len(group) > 2:
            x = group[of].rank().to_numpy()
            y = group.accuracy.rank().to_numpy()
            rho = float(np.corrcoef(x, y)[0, 1])
            shuffled = np.random.default_rng(0).permuted(np.tile(y, (permutations, 1)), axis=1)
            centred = x - x.mean()  # a permutation keeps y's mean and spread
            null = (shuffled - y.mean()) @ centred / (len(x) * x.std() * y.std())
            p_value = (np.sum(np.abs(null) >= abs(rho) - 1e-9) + 1) / (permutations + 1)
        rows.append({"task": task, "teachers": len(group), "spearman": rho,
                     "p_value": p_value})
    return pd.DataFrame(rows, columns=["task", "teachers", "spearman", "p_value"])


# --- cost of the cells still to run ---------------------------------------------------------

def finished_cells(task: str) -> list[dict]:
    """Metrics of the finished Fine-tune-CoT cells of a task under the runs folder, oldest
    first."""
    done = sorted((runs_root() / task).glob("fine_tune_cot-*/metrics.json"),
                  key=lambda p: p.stat().st_mtime)
    return [json.loads(p.read_text()) for p in done]


RECENT = 3  # the newest finished cells time the ones to run (an older machine's do not)


def seconds_to_run(table: pd.DataFrame) -> pd.Series:
    """Estimated training plus evaluation seconds of each row's cell still to run (0 when it
    is finished): its optimizer steps at the seconds per step of the task's RECENT newest
    finished cells (this machine; same teacher source if one is finished, else any; same
    batch size assumed), plus their mean evaluation time. NaN: the task has no finished cell."""
    def one(row) -> float:
        if not math.isnan(row.accuracy):
            return 0.0
        done = finished_cells(row.task)
        alike = ([m for m in done if m.get("teacher", "recorded") == row.teacher] or done)[-RECENT:]
        if not alike:
            return NAN
        per_step = sum(m["seconds"] / m["total_steps"] for m in alike) / len(alike)
        evaluation = sum(m["eval_seconds"] for m in alike) / len(alike)
        return row.optimizer_steps * per_step + evaluation
    return table.apply(one, axis=1)
