"""Users' own tasks: a JSONL file of questions and answers, declared by a small sidecar.

`<name>.jsonl`: one record a line, `{"question": ..., "answer": ...}`, optionally `"choices"`
(a list of choice texts; the answer is then a letter, A for the first) and `"id"` (unique;
for your reference: samples are indexed by record order).
`<name>.task.json` beside it declares how answers are read:
`{"answer_type": "number" | "choice" | "yes_no" | "text" | "letters"}`, optionally `"trigger"`
(default from the answer type), `"test_fraction"` (0.2), `"seed"` (0) and `"title"`.
On first use a seeded train/test split is written beside them as `<name>.split.json`, with
the sha256 of the file it was drawn from, and reused after. Every problem is one error naming
the file and line, raised before anything is written.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import string
from functools import lru_cache
from pathlib import Path

from .data import CotlibError
from .store import write_atomic
from .tasks import (ANSWER_TYPES, NUMERALS, TASKS, YES_NO, Sample, Task, normal_text,
                    only_letters, parse_choices)

DECLARATION_KEYS = {"answer_type", "trigger", "test_fraction", "seed", "title"}
LETTERS = string.ascii_uppercase


def default_trigger(answer_type: str, letters: str) -> str:
    """The Zero-shot-CoT answer trigger the paper uses for this answer type."""
    if answer_type == "number":
        return NUMERALS
    if answer_type == "yes_no":
        return YES_NO
    if answer_type == "choice":
        return f"Therefore, among A through {letters[-1]}, the answer is"
    return "Therefore, the answer is"


def sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name.removesuffix(".jsonl") + suffix)


def file_task(path: Path) -> Task:
    """The task a task file declares, its split written beside it on first use."""
    path = Path(path).resolve()
    stamps = tuple((p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else None
                   for p in (path, sidecar(path, ".task.json")))
    return _file_task(path, stamps)


@lru_cache(maxsize=None)
def _file_task(path: Path, stamps: tuple) -> Task:  # one Task per version of the files
    name = path.name.removesuffix(".jsonl")
    if name in TASKS:
        raise CotlibError(f"{path}: task name {name!r} clashes with a built-in task; "
                          "rename the file")
    declared = declaration(path)
    samples = read_samples(path, declared["answer_type"])
    most = max(len(s.choices) for s in samples)
    letters = LETTERS[:most] if declared["answer_type"] == "choice" else ""
    split_file = write_split(path, samples, declared["test_fraction"], declared["seed"])
    trigger = declared.get("trigger") or default_trigger(declared["answer_type"], letters)
    return Task(name, declared.get("title") or name, "task file", declared["answer_type"],
                trigger, "", load=lambda _name, _root: samples, letters=letters,
                split_file=split_file)


def declaration(path: Path) -> dict:
    """`<name>.task.json`, checked: the answer type, and the optional trigger and split."""
    file = sidecar(path, ".task.json")
    if not path.is_file():
        raise CotlibError(f"{path}: no such task file")
    if not file.is_file():
        raise CotlibError(f"{path}: no {file.name} beside it declaring the answer type, e.g. "
                          f'{{"answer_type": "number"}} (one of {", ".join(ANSWER_TYPES)})')
    try:
        declared = json.loads(file.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise CotlibError(f"{file}: not UTF-8 (byte {e.start}: {e.reason})") from None
    except json.JSONDecodeError as e:
        raise CotlibError(f"{file}:{e.lineno}: malformed JSON: {e.msg}") from None
    if not isinstance(declared, dict):
        raise CotlibError(f"{file}: expected a JSON object with an answer_type")
    unknown = set(declared) - DECLARATION_KEYS
    if unknown:
        raise CotlibError(f"{file}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"expected {', '.join(sorted(DECLARATION_KEYS))}")
    if declared.get("answer_type") not in ANSWER_TYPES:
        raise CotlibError(f"{file}: answer_type {declared.get('answer_type')!r}: choose from "
                          f"{', '.join(ANSWER_TYPES)}")
    fraction = declared.setdefault("test_fraction", 0.2)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise CotlibError(f"{file}: test_fraction {fraction!r}: expected a number between 0 and 1")
    seed = declared.setdefault("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise CotlibError(f"{file}: seed {seed!r}: expected an integer")
    for key in ("trigger", "title"):
        if key in declared and (not isinstance(declared[key], str) or not declared[key].strip()):
            raise CotlibError(f"{file}: {key} {declared[key]!r}: expected a non-empty string")
    return declared


def read_samples(path: Path, answer_type: str) -> list[Sample]:
    """The records of a task file as samples (index: record order), every line checked."""
    samples, seen, ids = [], {}, {}
    for number, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        where = f"{path}:{number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CotlibError(f"{where}: not UTF-8 (byte {e.start} of the line: "
                              f"{e.reason})") from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise CotlibError(f"{where}: malformed JSON: {e.msg} (column {e.colno})") from None
        sample = record_sample(record, len(samples), answer_type, where)
        key = " ".join(sample.question.lower().split())
        if key in seen:
            raise CotlibError(f"{where}: duplicate question (the same as line {seen[key]})")
        seen[key] = number
        if "id" in record:
            if str(record["id"]) in ids:
                raise CotlibError(f"{where}: duplicate id {record['id']!r} "
                                  f"(line {ids[str(record['id'])]})")
            ids[str(record["id"])] = number
        samples.append(sample)
    if not samples:
        raise CotlibError(f"{path}: empty file: no records")
    return samples


def record_sample(record, index: int, answer_type: str, where: str) -> Sample:
    """One record as a sample; its choices, if any, written into the question as the paper's
    multiple-choice tasks write them ("... Answer choices: (A) x, (B) y.")."""
    if not isinstance(record, dict):
        raise CotlibError(f"{where}: expected a JSON object with question and answer")
    for key in ("question", "answer"):
        if key not in record:
            raise CotlibError(f"{where}: missing {key!r}")
    question, answer = record["question"], record["answer"]
    if not isinstance(question, str) or not question.strip():
        raise CotlibError(f"{where}: question must be a non-empty string")
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
        raise CotlibError(f"{where}: answer must be a string or a number, not {answer!r}")
    answer = str(answer).strip()
    if not answer:
        raise CotlibError(f"{where}: empty answer")
    choices = record_choices(record, question, answer_type, where)
    if choices and "Answer choices:" not in question:
        listed = ", ".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))
        question = f"{question.strip()} Answer choices: {listed}."
    problem = misfit(answer, answer_type, choices)
    if problem:
        raise CotlibError(f"{where}: answer {answer!r} does not fit answer_type "
                          f"{answer_type}: {problem}")
    return Sample(index, question.strip(), answer, choices)


def record_choices(record: dict, question: str, answer_type: str, where: str) -> tuple[str, ...]:
    if "choices" not in record:
        return parse_choices(question) if answer_type == "choice" else ()
    choices = record["choices"]
    if answer_type != "choice":
        raise CotlibError(f"{where}: choices given, but the answer_type is {answer_type}")
    if (not isinstance(choices, list) or not 2 <= len(choices) <= len(LETTERS)
            or not all(isinstance(c, str) and c.strip() for c in choices)):
        raise CotlibError(f"{where}: choices must be a list of 2 to 26 non-empty strings")
    if "Answer choices:" in question:
        raise CotlibError(f"{where}: choices given twice: in 'choices' and in the question")
    return tuple(c.strip() for c in choices)


def misfit(answer: str, answer_type: str, choices: tuple[str, ...]) -> str:
    """Why an answer cannot be graded under its answer type ("" if it can)."""
    if answer_type == "number":
        try:
            return "" if math.isfinite(float(answer.replace(",", ""))) else "not a finite number"
        except ValueError:
            return "not a number"
    if answer_type == "yes_no":
        return "" if answer.lower() in ("yes", "no") else "expected yes or no"
    if answer_type == "choice":
        if not choices:
            return "no choices (a 'choices' list, or 'Answer choices: (A) ...' in the question)"
        letters = LETTERS[:len(choices)]
        return "" if answer in letters else f"expected a choice letter {letters[0]}-{letters[-1]}"
    if answer_type == "letters":
        return "" if only_letters(answer) else "no letters"
    return "" if normal_text(answer) else "no words once punctuation is dropped"


def write_split(path: Path, samples: list[Sample], fraction: float, seed: int) -> Path:
    """`<name>.split.json`: a seeded shuffle cut into test and train, written once, reused
    while the task file and the declared split stay the same."""
    split_file = sidecar(path, ".split.json")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    drawn = {"sha256": digest, "seed": seed, "test_fraction": fraction}
    if split_file.is_file():
        try:
            old = json.loads(split_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CotlibError(f"{split_file}: unreadable; delete it to draw the split "
                              "again") from None
        if not isinstance(old, dict) or {k: old.get(k) for k in drawn} != drawn:
            raise CotlibError(f"{split_file}: drawn from another version of {path.name} or of "
                              "its declared split; delete it to draw a new split (runs made "
                              "with the old one no longer match it)")
        return split_file
    n_test = round(len(samples) * fraction)
    for part, size in [("test", n_test), ("train", len(samples) - n_test)]:
        if size < 1:
            raise CotlibError(f"{sidecar(path, '.task.json')}: test_fraction {fraction} of "
                              f"{len(samples)} questions leaves an empty {part} split")
    order = [s.sample_index for s in samples]
    random.Random(seed).shuffle(order)
    try:
        write_atomic(split_file, json.dumps({"train": order[n_test:], "test": order[:n_test],
                                             **drawn}) + "\n")
    except OSError as e:
        raise CotlibError(f"{split_file}: cannot write the split: {e.strerror}") from None
    return split_file
