"""The recorded teacher: greedy text-davinci-002 Zero-shot-CoT outputs logged by Kojima et
al. (2022), matched to our samples by question text."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..data import CotlibError, data_path, data_root, read_text
from ..prompts import answer_prompt, reasoning_prompt
from ..store import Completion
from ..tasks import Task
from .base import GenerationParams

RECORDED_TEACHER = "text-davinci-002"
RECORD_SEPARATOR = "*" * 25
RECORD = re.compile(
    r"(?P<number>\d+)st data\n1_th_sampling\nQ: (?P<question>.*?)\n"
    r"A: Let's think step by step\.(?P<body>.*)\npred_before : .*?\n"
    r"pred_after : (?P<pred>.*)\npred_list : .*\npred_mode : .*\nGT : (?P<gold>.*)", re.S)


@dataclass(frozen=True)
class LogRecord:
    """One question of a Zero-shot-CoT log, as the log wrote it."""
    number: int
    question: str
    rationale: str
    answer_text: str
    log_prediction: str
    log_gold: str


@dataclass(frozen=True)
class RecordedCompletion:
    """A recorded teacher completion joined to one of our samples."""
    sample_index: int
    question: str
    rationale: str
    answer_text: str
    prediction: str  # our extraction from answer_text, in our choice letters
    answer: str  # our gold answer
    raw_prediction: str  # our extraction, in the log's choice letters
    log_prediction: str
    log_gold: str


def log_path(task: Task) -> Path:
    return data_path(f"zero_shot_cot/log/{task.log}_zero_shot_cot.log")


def read_log(path: Path, trigger: str) -> list[LogRecord]:
    """Parse a Zero-shot-CoT log; a truncated or malformed record is an error naming it."""
    blocks = read_text(path).split(f"\n{RECORD_SEPARATOR}\n")
    records = []
    for block in blocks:
        start = re.search(r"^\d+st data$", block, re.M)
        if not start:
            continue
        match = RECORD.fullmatch(block[start.start():].rstrip("\n"))
        if not match or f"\n{trigger}" not in match["body"]:
            raise CotlibError(f"{path}: record {start.group(0)!r} is truncated or malformed")
        rationale, _, answer_text = match["body"].rpartition(f"\n{trigger}")
        records.append(LogRecord(int(match["number"]), match["question"], rationale.strip(),
                                 answer_text, match["pred"], match["gold"]))
    if not records:
        raise CotlibError(f"{path}: no records found")
    return records


def question_key(question: str) -> str:
    """Join key: the question stem without its choices, lowercase, letters and digits only."""
    stem = re.split(r"answer choices", question, flags=re.I)[0]
    key = re.sub(r"[^a-z0-9]", "", stem.lower())
    return key.removesuffix("whichchoiceistrue")


def _choice_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def log_choices(question: str) -> tuple[str, ...]:
    """Choices as the logs wrote them: "Answer Choices: (A) x (B) y"."""
    _, _, tail = question.partition("Answer Choices:")
    return tuple(t.strip() for t in re.split(r"\([A-F]\)", tail)[1:])


def recorded(task: Task) -> list[RecordedCompletion]:
    """The text-davinci-002 Zero-shot-CoT completions for our samples of `task`."""
    return list(_recorded(task, data_root()))


@lru_cache(maxsize=None)
def _recorded(task: Task, root: Path) -> tuple[RecordedCompletion, ...]:
    by_key: dict[str, list] = {}
    for sample in task.samples().values():
        by_key.setdefault(question_key(sample.question), []).append(sample)
    joined = []
    for record in read_log(log_path(task), task.trigger):
        candidates = by_key.get(question_key(record.question))
        if not candidates:
            continue
        sample = candidates.pop(0)  # duplicated texts: one record per sample, in order
        raw = prediction = task.extract(record.answer_text)
        rationale = record.rationale
        if task.answer_type == "choice":
            theirs = log_choices(record.question)
            prediction = _our_letter(raw, theirs, sample.choices)
            rationale = _our_letters_in(rationale, theirs, sample.choices)
        joined.append(RecordedCompletion(
            sample.sample_index, sample.question, rationale, record.answer_text.strip(),
            prediction, sample.answer, raw, record.log_prediction, record.log_gold))
    return tuple(sorted(joined, key=lambda c: c.sample_index))


def _our_letter(letter: str, theirs: tuple[str, ...], ours: tuple[str, ...]) -> str:
    """Map a letter of the log's choice order to the same choice text in ours."""
    index = ord(letter) - ord("A") if letter else -1
    if not 0 <= index < len(theirs):
        return ""
    text = _choice_key(theirs[index])
    keys = [_choice_key(c) for c in ours]
    if index < len(keys) and keys[index] == text:  # same place (some choice lists repeat a text)
        return letter
    return chr(ord("A") + keys.index(text)) if text in keys else ""


# A choice named in a rationale: "(B)" anywhere, or a bare letter in "the answer is B." / "B:"
CHOICE_MENTION = re.compile(r"\(([A-F])\)|(?<=\bis )([A-F])(?=[.:,]|$)")


def _our_letters_in(rationale: str, theirs: tuple[str, ...], ours: tuple[str, ...]) -> str:
    """Rewrite the choice letters a rationale names from the log's choice order into ours.

    Otherwise a student would learn "the answer is (A)" followed by "--> B".
    """
    def ours_for(match):
        letter = match[1] or match[2]
        mapped = _our_letter(letter, theirs, ours) or letter
        return f"({mapped})" if match[1] else mapped
    return CHOICE_MENTION.sub(ours_for, rationale)


def accuracy_of_recorded(completions: list[RecordedCompletion], task: Task) -> float:
    if not completions:
        return float("nan")
    return 100 * sum(task.is_correct(c.prediction, c.answer) for c in completions) / len(completions)



def recorded_completions(task: Task, params: GenerationParams = GenerationParams(),
                         part: str = "train", split: str = "default") -> list[Completion]:
    """The recorded text-davinci-002 outputs as completion records (D=1, greedy)."""
    if params.degree != 1 or params.temperature != 0 or params.method != "zs_cot":
        raise CotlibError("the recorded teacher has one greedy Zero-shot-CoT rationale per "
                          f"question; D={params.degree}, T={params.temperature:g}, "
                          f"method {params.method} cannot be asked of it")
    logged = {c.sample_index: c for c in recorded(task)}
    records = []
    for sample in task.split(part, split):  # in split order, as `generate` asks
        c = logged.get(sample.sample_index)
        if c is None:
            continue
        prompt = reasoning_prompt("zs_cot", task, c.question)
        records.append(Completion(
            RECORDED_TEACHER, params.key(), task.name, f"{split}/{part}", c.sample_index, 0,
            c.question, c.answer, reasoning_prompt=prompt.text(), rationale=c.rationale,
            prompt=answer_prompt(prompt, c.rationale, task.trigger).text(),
            answer_text=c.answer_text, prediction=c.prediction,
            correct=task.is_correct(c.prediction, c.answer)))
    return records


