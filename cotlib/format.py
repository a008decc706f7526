"""The fine-tune text format of Fine-tune-CoT, written by curation and read back by evaluation.

Prompt `<question> ###`; completion ` <rationale> --> <answer> END` (vanilla: ` <answer> END`).
"""
from __future__ import annotations

import re

from .tasks import Sample, Task

PROMPT_END = " ###"
ANSWER_SEP = " --> "
COMPLETION_END = " END"


def prompt_text(question: str) -> str:
    return question + PROMPT_END


def cot_completion(rationale: str, answer: str) -> str:
    return f" {rationale.strip()}{ANSWER_SEP}{answer}{COMPLETION_END}"


def vanilla_completion(answer: str) -> str:
    return f" {answer}{COMPLETION_END}"


def split_completion(output: str) -> tuple[str, str | None]:
    """(rationale, text after `-->`) of a generated completion, cut at `END`; None: no `-->`."""
    text = output.split(COMPLETION_END.strip())[0]
    rationale, sep, answer = text.partition(ANSWER_SEP.strip())
    return rationale.strip(), answer if sep else None


# After `-->`: the paper writes the answer; the copyable variant writes what a small student
# can copy from its own rationale or the question (a departure, reported as its own row).
ANSWER_FORMATS = ("paper", "copyable")


def answer_field(task: Task, sample: Sample, prediction: str, answer_format: str = "paper") -> str:
    """The text after `-->`: the answer, or (copyable) Last Letter's letters spaced out
    (` y a j o`, one token each) and a choice's text before its letter (` 05/01/2021 (F)`)."""
    if answer_format == "copyable" and task.answer_type == "letters":
        return " ".join(c for c in prediction if c.isalpha())
    if answer_format == "copyable" and task.answer_type == "choice" and prediction:
        return f"{sample.choices[ord(prediction) - ord('A')]} ({prediction})"
    return prediction


def read_answer(task: Task, text: str, answer_format: str = "paper") -> str:
    """The answer in the text after `-->`; a copyable choice is its parenthesised letter."""
    if answer_format == "copyable" and task.answer_type == "choice":
        letters = re.findall(rf"\(([{task.letters}])\)", text)
        if letters:
            return letters[-1]
    return task.extract(text)
