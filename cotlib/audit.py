"""Audits of a student's test predictions: where the rationale gets the intermediate right
and the final answer after `-->` is still wrong (the copy step, not the reasoning, failed)."""
from __future__ import annotations

import re

from .tasks import Sample, Task

LAST_LETTER = re.compile(r"last letter of [\"']?(.+?)[\"']? is [\"']?([^\W\d_])[\"']?", re.I)
DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")


def _normal(text: str) -> str:
    return DATE.sub(lambda m: f"{int(m[1]):02d}/{int(m[2]):02d}/{m[3]}", text).lower()


def intermediate_answer(task: Task, sample: Sample, rationale: str) -> str | None:
    """What the rationale itself concludes: Last Letter's per-word letters joined; for a
    choice, the letter of the choice text it names last. None where the task has no such step."""
    if task.answer_type == "letters":
        return "".join(letter for _, letter in LAST_LETTER.findall(rationale)) or None
    if task.answer_type != "choice":
        return None
    text, choices = _normal(rationale), [_normal(c) for c in sample.choices]
    named = [(text.rfind(c), i) for i, c in enumerate(choices) if c and c in text]
    return chr(ord("A") + max(named)[1]) if named else None


def intermediate_counts(task: Task, predictions: list[dict]) -> dict:
    """Per task: predictions whose rationale reaches the gold intermediate, and of those the
    ones whose final answer is wrong ("intermediate right, final wrong")."""
    if task.answer_type not in ("letters", "choice"):  # no intermediate to read
        return {"task": task.name, "predictions": len(predictions)}
    right = wrong_final = 0
    for p in predictions:
        found = intermediate_answer(task, task.samples()[p["sample_index"]], p["rationale"])
        if found is None or not task.is_correct(found, p["answer"]):
            continue
        right += 1
        wrong_final += not p["correct"]
    return {"task": task.name, "predictions": len(predictions), "intermediate_right": right,
            "intermediate_right_final_wrong": wrong_final}
