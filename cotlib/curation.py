"""Step 2 of Fine-tune-CoT: turn teacher completions into fine-tuning samples (the text
format lives in `format`). Vanilla fine-tuning: the gold answer without a rationale.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Protocol

import pandas as pd

from .data import CotlibError
from .format import (ANSWER_SEP, answer_field, cot_completion, prompt_text, read_answer,
                     split_completion, vanilla_completion)
from .tasks import Sample, Task, canonical_gold

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
           filter: str = "answer", distinct: bool = False, answer_format: str = "paper",
           consistent_choices: bool = False) -> list[FinetuneSample]:
    """Fine-tune-CoT samples from teacher completions on the samples `indices` (e.g. train).

    filter="answer" keeps only completions whose predicted answer is correct; distinct=True
    drops exact duplicate rationales of a question (the paper's code keeps them: at D > 1
    they weight the data); answer_format="copyable" writes `format.answer_field`'s variant;
    consistent_choices=True drops multiple-choice samples whose rationale concludes another
    choice than their answer (`named_choice`; a departure: the paper keeps them).
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
        if consistent_choices and named_choice(task, sample, c.rationale) not in (None,
                                                                                   c.prediction):
            continue
        seen.add((c.sample_index, c.rationale.strip()))
        kept.append(FinetuneSample(c.sample_index, getattr(c, "completion_index", 0),
                                   prompt_text(sample.question),
                                   cot_completion(c.rationale, answer_field(
                                       task, sample, c.prediction, answer_format))))
    return kept


# --- the choice a rationale concludes: right answers reached for a wrong reason ----------

DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
SUBJECT = re.compile(r"At the end of the [^,]*, (\w+)")  # Shuffled Objects: whom it asks about
PEOPLE = re.compile(r"^(\w+), (\w+), and (\w+)")


def normal_dates(text: str) -> str:
    """Lowercase text with its MM/DD/YYYY dates zero-padded (5/1/2021 -> 05/01/2021)."""
    return DATE.sub(lambda m: f"{int(m[1]):02d}/{int(m[2]):02d}/{m[3]}", text).lower()


def choice_mentions(sample: Sample, text: str) -> list[tuple[int, int]]:
    """(position, choice index) of each place `text` writes a choice's text, in reading order
    (`normal_dates` on both sides)."""
    text = normal_dates(text)
    return sorted((m.start(), i) for i, c in enumerate(normal_dates(c) for c in sample.choices)
                  if c for m in re.finditer(re.escape(c), text))


def named_choice(task: Task, sample: Sample, rationale: str) -> str | None:
    """The choice letter a rationale concludes; "" for a conclusion that is no choice; None
    where it names none. Dates (every choice a date): the last date it writes. Shuffled
    Objects: the last choice text after the asked person's name ("Alice has the pink ball").
    Else the choice text named last."""
    if task.answer_type != "choice" or not sample.choices:
        return None
    text, choices = normal_dates(rationale), [normal_dates(c) for c in sample.choices]
    if all(DATE.fullmatch(c) for c in choices):
        dates = [m[0] for m in DATE.finditer(text)]
        if not dates:
            return None
        return chr(ord("A") + choices.index(dates[-1])) if dates[-1] in choices else ""
    mentions = choice_mentions(sample, rationale)
    subject, people = SUBJECT.search(sample.question), PEOPLE.match(sample.question)
    if subject and people:
        mentions = [(at, i) for at, i in mentions
                    if person_before(text, at, people.groups()) == subject[1].lower()]
    return chr(ord("A") + mentions[-1][1]) if mentions else None


def person_before(text: str, at: int, people: tuple[str, ...]) -> str:
    """The last of `people` named in lowercase `text` before position `at` ("": none)."""
    names = re.findall(r"\b(" + "|".join(re.escape(p.lower()) for p in people) + r")\b",
                       text[:at])
    return names[-1] if names else ""


def names_other_choice(task: Task, sample: Sample, completion: str) -> bool:
    """Whether a ` <rationale> --> <answer> END` completion concludes another choice than its
    answer: a right answer reached for a wrong reason."""
    rationale, answer = split_completion(completion)
    # read as copyable: a parenthesised letter if there is one (` pink ball (C)`), else the answer
    return named_choice(task, sample, rationale) not in (None, read_answer(task, answer or "",
                                                                           "copyable"))


def vanilla(task: Task, indices: Iterable[int]) -> list[FinetuneSample]:
    """Vanilla fine-tuning samples: the gold answer without a rationale."""
    samples = task.samples()
    return [FinetuneSample(i, 0, prompt_text(samples[i].question),
                           vanilla_completion(canonical_gold(samples[i].answer)))
            for i in indices]


def report(task: Task, completions: list, curated: list[FinetuneSample],
           count_tokens=lambda text: len(text.split()), dropped_other_choice: int = 0) -> dict:
    """Per-task curation statistics: completions, kept, kept %, completion length, and the kept
    samples whose rationale concludes another choice (beside those the filter dropped)."""
    lengths = pd.Series([count_tokens(s.completion) for s in curated], dtype=float)
    samples = task.samples()
    questions = {s.sample_index for s in curated}
    distinct = {(s.sample_index, s.completion.rpartition(ANSWER_SEP)[0]) for s in curated}
    return {"task": task.name, "completions": len(completions), "kept": len(curated),
            "kept_%": 100 * len(curated) / max(1, len(completions)),
            "questions_kept": len(questions),
            "distinct_per_question": len(distinct) / max(1, len(questions)),
            "completion_len_mean": lengths.mean(), "completion_len_max": lengths.max(),
            "names_other_choice": sum(names_other_choice(task, samples[s.sample_index],
                                                         s.completion) for s in curated),
            "dropped_other_choice": dropped_other_choice}
