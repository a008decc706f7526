"""Reports on teachers: the recorded teacher per task (results/tasks.csv), rows of
results/teachers.csv for finished runs, diversity of sampled rationales."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..store import Completion, write_atomic
from ..tasks import TASKS, Task, all_tasks
from .base import accuracy
from .recorded import accuracy_of_recorded, log_path, read_log, recorded

def run_summary(records: list[Completion], task: Task, server_threads: int | None = None) -> dict:
    """One row of results/teachers.csv: accuracy beside text-davinci-002 on the same
    questions, distinct rationales per question, tokens/s, wall time and, for a server on
    `server_threads` cores of this machine, CPU time."""
    ok = [r for r in records if r.status == "ok"]
    questions = {r.sample_index for r in ok}
    davinci = [c for c in recorded(task) if c.sample_index in questions]
    seconds = busy_seconds(records)
    tokens = sum(r.completion_tokens for r in ok)
    per_question = [len({r.rationale for r in ok if r.sample_index == q}) for q in questions]
    first = records[0] if records else None
    return {
        "teacher": first.teacher if first else "", "params": first.params if first else "",
        "task": task.name, "questions": len(questions), "completions": len(ok),
        "failed": len(records) - len(ok), "accuracy": round(accuracy(ok), 2),
        "davinci_accuracy_same_questions": round(accuracy_of_recorded(davinci, task), 2),
        "distinct_rationales_per_question": round(sum(per_question) / max(1, len(questions)), 2),
        "completion_tokens": tokens, "wall_seconds": round(seconds),
        "cpu_seconds": round(seconds * server_threads) if server_threads else float("nan"),
        "tokens_per_second": round(tokens / seconds, 1) if seconds else float("nan"),
        "rationale_cut_at_cap": sum(r.reasoning_finish_reason == "length" for r in ok)}


def diversity(sampled: list[Completion], greedy: list[Completion]):
    """Diverse reasoning per question: right samples, distinct rationales, distinct right
    ones (what curation keeps); and a summary row beside the greedy run where both ran."""
    import pandas as pd  # noqa: PLC0415
    ok = pd.DataFrame([vars(r) for r in sampled if r.status == "ok"])
    per_question = ok.groupby("sample_index").agg(
        right=("correct", "sum"), distinct=("rationale", "nunique"))
    per_question["kept"] = (ok[ok.correct].groupby("sample_index").rationale.nunique()
                            .reindex(per_question.index, fill_value=0))
    first = pd.Series({r.sample_index: r.correct for r in greedy if r.status == "ok"}, dtype=bool)
    both = per_question.index.intersection(first.index)
    any_right = per_question.right > 0
    return {"task": sampled[0].task, "questions": len(per_question),
            "sample_accuracy": 100 * ok.correct.mean(), "any_right_%": 100 * any_right.mean(),
            "distinct_per_question": per_question.distinct.mean(),
            "kept_per_question": per_question.kept.mean(), "questions_with_greedy": len(both),
            "greedy_accuracy_there": 100 * first[both].mean() if len(both) else math.nan,
            "any_right_there_%": 100 * any_right[both].mean() if len(both) else math.nan,
            }, per_question


def busy_seconds(records: list[Completion]) -> float:
    """Wall time spent asking: the union of the requests' intervals, so that concurrent
    requests count once (records without a finish time count their own seconds)."""
    total, end = sum(r.seconds for r in records if not r.finished), float("-inf")
    for start, stop in sorted((r.started, r.finished) for r in records if r.finished):
        total += max(0.0, stop - max(start, end))
        end = max(end, stop)
    return total



def update_table(path: Path, rows: list[dict]) -> None:
    """Replace the rows of the same (teacher, params, task) in a CSV table, keep the rest."""
    import pandas as pd  # noqa: PLC0415
    new = pd.DataFrame(rows)
    key = ["teacher", "params", "task"]
    if Path(path).exists():
        old = pd.read_csv(path)
        kept = old.merge(new[key], on=key, how="left", indicator=True)
        new = pd.concat([old[(kept["_merge"] == "left_only").to_numpy()], new])
    write_atomic(Path(path), new.sort_values(key).to_csv(index=False))


def teacher_accuracy(task: Task, part: str | None, strict: bool = False) -> float:
    """Recorded teacher accuracy (%) on a split part (None: every logged question)."""
    completions = recorded(task)
    if part is not None:
        try:
            wanted = set(task.split_indices()[part])
        except KeyError:
            return float("nan")
        completions = [c for c in completions if c.sample_index in wanted]
    if not strict or not completions:
        return accuracy_of_recorded(completions, task)
    return 100 * sum(c.raw_prediction == c.log_gold for c in completions) / len(completions)


def task_table() -> pd.DataFrame:
    """One row per task (the task files of $COTLIB_TASKS too): type, split sizes, answer type,
    random and recorded-teacher accuracy.

    Teacher accuracy uses the fair comparison (numeric equality, letters only for last
    letters); `teacher_log_strict` re-scores every logged question with exact strings.
    """
    rows = []
    for task in all_tasks().values():
        sizes = {part: len(indices) for part, indices in task.split_indices().items()}
        row = {"task": task.name, "type": task.category, "train": sizes["train"],
               "test": sizes["test"], "answer_type": task.answer_type,
               "random": task.random_accuracy()}
        if task.log:  # a task file has no recorded teacher
            logged = len(read_log(log_path(task), task.trigger))
            row.update(teacher_train=teacher_accuracy(task, "train"),
                       teacher_test=teacher_accuracy(task, "test"),
                       teacher_log_strict=teacher_accuracy(task, None, strict=True),
                       log_matched=100 * len(recorded(task)) / logged)
        rows.append(row)
    return pd.DataFrame(rows).set_index("task")


def rationale_lengths() -> pd.DataFrame:
    """Words per recorded teacher rationale, one row per (task, sample)."""
    return pd.DataFrame([
        {"task": task.name, "sample_index": c.sample_index, "words": len(c.rationale.split())}
        for task in TASKS.values() for c in recorded(task)])
