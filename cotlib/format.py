"""The fine-tune text format of Fine-tune-CoT, written by curation and read back by evaluation.

Prompt `<question> ###`; completion ` <rationale> --> <answer> END` (vanilla: ` <answer> END`).
"""
from __future__ import annotations

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
