"""Reusable wiring of the steps: tables and runs that notebooks and the CLI share."""
from __future__ import annotations

import pandas as pd

from .tasks import TASKS, Task
from .teachers import read_log, log_path, recorded


def teacher_accuracy(task: Task, part: str | None, strict: bool = False) -> float:
    """Recorded teacher accuracy (%) on a split part (None: every logged question)."""
    completions = recorded(task)
    if part is not None:
        try:
            wanted = set(task.split_indices()[part])
        except KeyError:
            return float("nan")
        completions = [c for c in completions if c.sample_index in wanted]
    if not completions:
        return float("nan")
    if strict:
        correct = [c.raw_prediction == c.log_gold for c in completions]
    else:
        correct = [task.is_correct(c.prediction, c.answer) for c in completions]
    return 100 * sum(correct) / len(correct)


def task_table() -> pd.DataFrame:
    """One row per task: type, split sizes, answer type, random and recorded-teacher accuracy.

    Teacher accuracy uses the fair comparison (numeric equality, letters only for last
    letters); `teacher_log_strict` re-scores every logged question with exact strings.
    """
    rows = []
    for task in TASKS.values():
        sizes = {part: len(indices) for part, indices in task.split_indices().items()}
        logged = len(read_log(log_path(task), task.trigger))
        rows.append({
            "task": task.name, "type": task.category, "train": sizes["train"],
            "test": sizes["test"], "answer_type": task.answer_type,
            "random": task.random_accuracy(),
            "teacher_train": teacher_accuracy(task, "train"),
            "teacher_test": teacher_accuracy(task, "test"),
            "teacher_log_strict": teacher_accuracy(task, None, strict=True),
            "log_matched": 100 * len(recorded(task)) / logged,
        })
    return pd.DataFrame(rows).set_index("task")


def rationale_lengths() -> pd.DataFrame:
    """Words per recorded teacher rationale, one row per (task, sample)."""
    return pd.DataFrame([
        {"task": task.name, "sample_index": c.sample_index, "words": len(c.rationale.split())}
        for task in TASKS.values() for c in recorded(task)])
