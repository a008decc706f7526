"""Audits of a student's test predictions and of the completions it learned from: how
outputs end (no `-->`, cut at the generation cap), answers that are no valid candidate, the
predicted against the gold answers, rationales that conclude another choice; and where the
rationale gets the intermediate right and the final answer after `-->` is still wrong (the
copy step, not the reasoning, failed)."""
from __future__ import annotations

import re
from collections import Counter
from typing import Callable

from .curation import FinetuneSample, choice_mentions, named_choice, normal_dates
from .format import ANSWER_SEP, COMPLETION_END, read_answer, split_completion
from .tasks import Sample, Task, only_letters

LAST_LETTER = re.compile(r"last letter of [\"']?(.+?)[\"']? is [\"']?([^\W\d_])[\"']?", re.I)
# an arithmetic step written out with its result: "32 + 42 = 74", "3 x 4 - 2 = 10", "5 - 8 = -3"
STEP = re.compile(r"(\d[\d,.]*(?:\s*[-+*/x×÷]\s*\d[\d,.]*)+)\s*=\s*\$?(-?\s*\d[\d,]*(?:\.\d+)?)")
OPERATORS = str.maketrans({",": "", "x": "*", "×": "*", "÷": "/"})

# (new-token cap, stop string) of each generation `evaluation.evaluate` makes per method
# (None: the profile's max_new_tokens); Zero-shot-CoT generates its rationale, then its answer.
GENERATION = {"fine_tune_cot": [(None, COMPLETION_END.strip())],
              "vanilla": [(24, COMPLETION_END.strip())], "zero_shot": [(32, "\n")],
              "zero_shot_cot": [(128, "\nQ:"), (32, "\n")], "few_shot_cot": [(128, "\nQ:")]}


def intermediate_answer(task: Task, sample: Sample, rationale: str) -> str | None:
    """What the rationale itself concludes: Last Letter's per-word letters joined; for a
    choice, the letter of the choice text it names last. None where the task has no such step."""
    if task.answer_type == "letters":
        return "".join(letter for _, letter in LAST_LETTER.findall(rationale)) or None
    if task.answer_type != "choice":
        return None
    mentions = choice_mentions(sample, rationale)
    return chr(ord("A") + mentions[-1][1]) if mentions else None


def answer_text(task: Task, sample: Sample, output: str) -> str | None:
    """For a choice: the letter of the choice whose text is written after `-->` (the copyable
    format, ` 05/01/2021 (F)`; the longest if several), else None."""
    tail = split_completion(output)[1]
    if task.answer_type != "choice" or tail is None:
        return None
    length = {i: len(normal_dates(sample.choices[i])) for _, i in choice_mentions(sample, tail)}
    return chr(ord("A") + max(length, key=lambda i: (length[i], i))) if length else None


def intermediate_counts(task: Task, predictions: list[dict]) -> dict:
    """Per task: predictions whose rationale reaches the gold intermediate, and of those the
    ones whose final answer is wrong ("intermediate right, final wrong"). For choices written
    as text then letter (copyable): answers whose text is the gold choice, and of those the
    ones whose letter is still wrong (the lookup from text to letter failed)."""
    if task.answer_type not in ("letters", "choice"):  # no intermediate to read
        return {"task": task.name, "predictions": len(predictions)}
    counts = Counter()
    for p in predictions:
        sample = task.samples()[p["sample_index"]]
        found = intermediate_answer(task, sample, p["rationale"])
        if found is not None and task.is_correct(found, p["answer"]):
            counts["intermediate_right"] += 1
            counts["intermediate_right_final_wrong"] += not p["correct"]
        if (text := answer_text(task, sample, p["output"])) is not None:
            counts["answer_texts"] += 1
            counts["answer_text_right"] += text == p["answer"]
            counts["answer_text_right_letter_wrong"] += text == p["answer"] and not p["correct"]
    texts = {k: counts[k] for k in ("answer_text_right", "answer_text_right_letter_wrong")}
    return {"task": task.name, "predictions": len(predictions),
            "intermediate_right": counts["intermediate_right"],
            "intermediate_right_final_wrong": counts["intermediate_right_final_wrong"],
            **(texts if counts["answer_texts"] else {})}


# --- how outputs end, valid answers, answer distributions --------------------------------

def candidates(task: Task, sample: Sample | None = None) -> tuple[str, ...]:
    """The answers a closed task allows (a sample's own choice letters); () for open tasks."""
    if task.answer_type == "yes_no":
        return ("yes", "no")
    if task.answer_type == "choice":
        return tuple(task.letters[:len(sample.choices)] if sample else task.letters)
    return ()


def valid_answer(task: Task, sample: Sample, answer: str) -> bool:
    """Whether a parsed answer is a candidate: a choice the question offers, yes/no, a
    number, letters (hyphens between them allowed, as the fair comparison reads them)."""
    if task.answer_type in ("yes_no", "choice"):
        return answer.strip().lower() in [c.lower() for c in candidates(task, sample)]
    if task.answer_type == "number":
        return bool(re.fullmatch(r"-?\d+(\.\d*)?", answer.replace(",", "")))
    if task.answer_type == "letters":
        return bool(only_letters(answer))
    return bool(answer.strip())


def cut_at_cap(task: Task, method: str, output: str, max_new_tokens: int,
               count_tokens: Callable[[str], int]) -> bool:
    """Whether a generation of `output` ran into its token cap: no stop string, and as many
    tokens as the cap (one that stopped at end-of-sequence is shorter)."""
    stages = GENERATION[method]
    parts = output.rpartition("\n" + task.trigger)[::2] if len(stages) == 2 else (output,)
    return any(stop not in part and count_tokens(part) >= (cap or max_new_tokens)
               for part, (cap, stop) in zip(parts, stages))


def distribution(task: Task, answers: list[str], prefix: str) -> dict[str, int]:
    """Counts per candidate (letters, yes/no) of a closed task; {} for open tasks."""
    counted = Counter(a.strip().lower() for a in answers)
    return {f"{prefix} {c}": counted[c.lower()] for c in candidates(task)}


def prediction_audit(task: Task, method: str, predictions: list[dict], max_new_tokens: int,
                     count_tokens: Callable[[str], int]) -> dict:
    """Counts over a cell's stored test predictions (output, rationale, predicted, answer)."""
    samples = task.samples()
    return {"n": len(predictions),
            "no_arrow": sum(ANSWER_SEP.strip() not in p["output"] for p in predictions)
            if method == "fine_tune_cot" else None,
            "cut_at_cap": sum(cut_at_cap(task, method, p["output"], max_new_tokens, count_tokens)
                              for p in predictions),
            "invalid_answer": sum(not valid_answer(task, samples[p["sample_index"]], p["predicted"])
                                  for p in predictions),
            "names_other_choice": other_choices(task, [(p["sample_index"], p["rationale"],
                                                         p["predicted"]) for p in predictions]),
            "writes_steps": writes_steps(task, [p["rationale"] for p in predictions]),
            "miscalculated": miscalculated(task, [p["rationale"] for p in predictions]),
            **distribution(task, [p["predicted"] for p in predictions], "predicted"),
            **distribution(task, [p["answer"] for p in predictions], "gold")}


def training_audit(task: Task, method: str, curated: list[FinetuneSample], max_new_tokens: int,
                   count_tokens: Callable[[str], int]) -> dict:
    """The same counts over the completions a student learned from; "cut at the cap": longer
    than the generation cap, so the student could never write one out to `END`."""
    samples = task.samples()
    read = [split_completion(s.completion) for s in curated]
    answers = [read_answer(task, a or "", "copyable") if method == "fine_tune_cot"
               else task.extract(r) for r, a in read]  # vanilla: ` <answer> END`, no arrow
    return {"n": len(curated),
            "no_arrow": sum(a is None for _, a in read) if method == "fine_tune_cot" else None,
            "cut_at_cap": sum(count_tokens(s.completion) > max_new_tokens for s in curated),
            "invalid_answer": sum(not valid_answer(task, samples[s.sample_index], a)
                                  for s, a in zip(curated, answers)),
            "names_other_choice": other_choices(task, [(s.sample_index, r, a) for s, (r, _), a
                                                       in zip(curated, read, answers)])
            if method == "fine_tune_cot" else None,
            "writes_steps": writes_steps(task, [r for r, _ in read])
            if method == "fine_tune_cot" else None,
            "miscalculated": miscalculated(task, [r for r, _ in read])
            if method == "fine_tune_cot" else None,
            **distribution(task, answers, "predicted"),
            **distribution(task, [samples[s.sample_index].answer for s in curated], "gold")}


def writes_steps(task: Task, rationales: list[str]) -> int | None:
    """How many rationales write an arithmetic step with its result (None: not an arithmetic
    task). The recorded teacher often states a total without the sum that gives it."""
    return steps_written(rationales) if task.answer_type == "number" else None


def written_equations(rationales: list[str]) -> float:
    """% of rationales that write at least one arithmetic step with its result (NaN: none)."""
    return 100 * steps_written(rationales) / len(rationales) if rationales else float("nan")


def steps_written(rationales: list[str]) -> int:
    return sum(bool(STEP.search(r)) for r in rationales)


def evaluated_steps(rationale: str) -> list[tuple[float, str]]:
    """Each written arithmetic step that reads as one: its exact value and its written result."""
    read = []
    for left, result in STEP.findall(rationale):
        try:  # digits, points and + - * / only (the pattern admits nothing else)
            read.append((eval(left.translate(OPERATORS), {"__builtins__": {}}),
                         result.replace(" ", "").replace(",", "")))
        except (SyntaxError, ZeroDivisionError):
            continue  # "1.2.3 + 4", "05 + 1", "3 / 0"
    return read


def step_results(rationale: str) -> list[bool]:
    """Per written arithmetic step, whether its result is right to the precision it is
    written with ("10 / 3 = 3.33" is right, "5 + 4 = 10" is not)."""
    return [abs(value - float(written)) <= 0.5 * 10 ** -len(written.partition(".")[2])
            for value, written in evaluated_steps(rationale)]


def computed_right(rationale: str, gold: str) -> bool:
    """Whether the rationale's last written step, computed exactly, gives the gold answer:
    the operation set up right, whatever result the student wrote (a calculator's reading)."""
    steps = evaluated_steps(rationale)
    return bool(steps) and abs(steps[-1][0] - float(gold)) < 1e-6


def miscalculated(task: Task, rationales: list[str]) -> int | None:
    """How many rationales write an arithmetic step with a wrong result (None: not an
    arithmetic task)."""
    if task.answer_type != "number":
        return None
    return sum(not all(step_results(r)) for r in rationales)


def steps_right(rationales: list[str]) -> float:
    """% of the written arithmetic steps whose result is right (NaN: none written)."""
    checked = [right for r in rationales for right in step_results(r)]
    return 100 * sum(checked) / len(checked) if checked else float("nan")


def other_choices(task: Task, read: list[tuple[int, str, str]]) -> int | None:
    """How many (sample index, rationale, answer) conclude another choice than their answer:
    right for a wrong reason where the answer is right (None: not a multiple-choice task)."""
    if task.answer_type != "choice":
        return None
    samples = task.samples()
    return sum(named_choice(task, samples[i], rationale) not in (None, answer)
               for i, rationale, answer in read)
