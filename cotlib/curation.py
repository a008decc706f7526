"""Step 2 of Fine-tune-CoT: turn teacher completions into fine-tuning samples (the text
format lives in `format`). Vanilla fine-tuning: the gold answer without a rationale.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

import pandas as pd

from .data import CotlibError
from .format import ANSWER_SEP, answer_field, cot_completion, prompt_text, vanilla_completion
from .tasks import Task, canonical_gold

FILTERS = ("none", "answer")


class TeacherCompletion(Protocol):
    sample_index: int
    rationale: str
    prediction: str


@dataclass(frozen=True)
class FinetuneSample:
    sample_index: int
    completion_index: int
    prompt: str
    completion: str


def curate(task: Task, completions: Iterable[TeacherCompletion], indices: Iterable[int],
           filter: str = "answer", distinct: bool = False,
           answer_format: str = "paper") -> list[FinetuneSample]:
    """Fine-tune-CoT samples from teacher completions on the samples `indices` (e.g. train).

    filter="answer" keeps only completions whose predicted answer is correct; distinct=True
    drops exact duplicate rationales of a question (the paper's code keeps them: at D > 1
    they weight the data); answer_format="copyable" writes `format.answer_field`'s variant.
    """
    if filter not in FILTERS:
        raise CotlibError(f"unknown curation filter {filter!r}; choose from {', '.join(FILTERS)}")
    wanted, samples, seen = set(indices), task.samples(), set()
    kept = []
    for c in completions:
        if c.sample_index not in wanted or not c.rationale.strip():
            continue
        sample = samples[c.sample_index]
        if filter == "answer" and not task.is_correct(c.prediction, sample.answer):
            continue
        if distinct and (c.sample_index, c.rationale.strip()) in seen:
            continue
        seen.add((c.sample_index, c.rationale.strip()))
        kept.append(FinetuneSample(c.sample_index, getattr(c, "completion_index", 0),
                                   prompt_text(sample.question),
                                   cot_completion(c.rationale, answer_field(
                                       task, sample, c.prediction, answer_format))))
    return kept


def vanilla(task: Task, indices: Iterable[int]) -> list[FinetuneSample]:
    """Vanilla fine-tuning samples: the gold answer without a rationale."""
    samples = task.samples()
    return [FinetuneSample(i, 0, prompt_text(samples[i].question),
                           vanilla_completion(canonical_gold(samples[i].answer)))
            for i in indices]


def report(task: Task, completions: list, curated: list[FinetuneSample],
           count_tokens=lambda text: len(text.split())) -> dict:
    """Per-task curation statistics: completions, kept, kept %, completion length."""
    lengths = pd.Series([count_tokens(s.completion) for s in curated], dtype=float)
    questions = {s.sample_index for s in curated}
    distinct = {(s.sample_index, s.completion.rpartition(ANSWER_SEP)[0]) for s in curated}
    return {"task": task.name, "completions": len(completions), "kept": len(curated),
            "kept_%": 100 * len(curated) / max(1, len(completions)),
            "questions_kept": len(questions),
            "distinct_per_question": len(distinct) / max(1, len(questions)),
            "completion_len_mean": lengths.mean(), "completion_len_max": lengths.max()}
