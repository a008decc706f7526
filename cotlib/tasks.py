"""The paper's 12 tasks: samples, official splits, answer trigger, answer extraction, metric.

Adding a task touches one place: the `TASKS` registry at the bottom, or a task file (a JSONL
of questions and answers, see `task_files`) in a folder named by `$COTLIB_TASKS`.
"""
from __future__ import annotations

import math
import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

from .data import CotlibError, data_root, read_json, read_jsonl


@dataclass(frozen=True)
class Sample:
    sample_index: int
    question: str
    answer: str
    choices: tuple[str, ...] = ()


# --- answer extraction: free text -> predicted answer (first answer in the text) ------

def extract_number(text: str) -> str:
    numbers = re.findall(r"-?\d+\.?\d*", text.replace(",", ""))
    return numbers[0].rstrip(".") if numbers else ""


def extract_choice(text: str, letters: str) -> str:
    found = re.search(f"[{letters}]", text)
    return found.group(0) if found else ""


def extract_yes_no(text: str) -> str:
    words = re.sub(r"[\"'\n.\s:,]", " ", text.lower()).split()
    return next((w for w in words if w in ("yes", "no")), "")


def extract_letters(text: str) -> str:
    return re.sub(r"[\"'\n.\s]", "", text)


# --- answer comparison: "strict" (exact strings, as the Zero-shot-CoT logs) or "fair" ---

def same_number(predicted: str, gold: str) -> bool:
    try:
        return math.isclose(float(predicted), float(gold.replace(",", "")),
                            rel_tol=1e-6, abs_tol=1e-6)
    except ValueError:
        return False


def only_letters(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFC", text).lower() if c.isalpha())


def extract_text(text: str) -> str:
    """Free text: the first line, without surrounding quotes and a closing full stop."""
    line = next((l for l in text.strip().splitlines() if l.strip()), "")
    return line.strip().strip("\"'").removesuffix(".").strip()


def normal_text(text: str) -> str:
    """Lowercase words without punctuation, single-spaced: the free-text comparison."""
    return " ".join(re.sub(r"[^\w\s]", " ", unicodedata.normalize("NFC", text).lower()).split())


def canonical_gold(answer: str) -> str:
    """Gold answer written the way the logs wrote it ("43.0" -> "43")."""
    return answer[:-2] if answer.endswith(".0") else answer


ANSWER_TYPES = {
    # answer type: (extractor taking (text, task), fair comparison)
    "number": (lambda text, task: extract_number(text), same_number),
    "choice": (lambda text, task: extract_choice(text, task.letters), str.__eq__),
    "yes_no": (lambda text, task: extract_yes_no(text), lambda p, g: p == g.strip().lower()),
    "letters": (lambda text, task: extract_letters(text),
                lambda p, g: bool(p) and only_letters(p) == only_letters(g)),
    "text": (lambda text, task: extract_text(text),
             lambda p, g: bool(normal_text(p)) and normal_text(p) == normal_text(g)),
}


# --- loaders: data root -> list of samples, in the paper's sample_index order -----------

CHOICE = re.compile(r"\(([A-F])\)\s*(.*?)(?=,?\s*\([A-F]\)|\.?$)", re.S)


def parse_choices(question: str) -> tuple[str, ...]:
    """Choice texts of "... Answer choices: (A) x, (B) y." in letter order."""
    _, sep, tail = question.rpartition("Answer choices:")
    return tuple(text.strip() for _, text in CHOICE.findall(tail)) if sep else ()


def load_reasoning_teacher(name: str, root: Path) -> list[Sample]:
    records = read_json(f"reasoning_teacher/dataset/{name}.json", root)
    return [_sample(i, r, f"reasoning_teacher/dataset/{name}.json") for i, r in enumerate(records)]


def _sample(index: int, record: dict, source: str) -> Sample:
    try:
        question, answer = record["question"], record["answer"]
    except (KeyError, TypeError):
        raise CotlibError(f"{source}: record {index} lacks 'question' or 'answer'") from None
    for key, value in [("question", question), ("answer", answer)]:
        if value is None:  # else graded against the string "None"
            raise CotlibError(f"{source}: record {index} has {key} null")
    return Sample(index, str(question), str(answer), parse_choices(str(question)))


def load_gsm8k(name: str, root: Path) -> list[Sample]:
    # The paper's order: the 7,473 train problems, then the 1,319 test problems.
    records = [r for part in ("train", "test")
               for r in read_jsonl(f"grade_school_math/{part}.jsonl", root)]
    answers = [None if r.get("answer") is None  # null stays null: an error naming the record
               else str(r["answer"]).split("####")[-1].strip().replace(",", "") for r in records]
    return [_sample(i, {"question": r.get("question"), "answer": answer}, "grade_school_math")
            for i, (r, answer) in enumerate(zip(records, answers))]


AQUA_TRAIN_SIZE = 97467  # AQuA train.json problems; the paper indexes test after them


def load_aqua(name: str, root: Path) -> list[Sample]:
    # Only AQuA's test set is mirrored; its sample_index continues after the train set.
    records = read_jsonl("zero_shot_cot/dataset/AQuA/test.json", root)
    samples = []
    for i, r in enumerate(records):
        options = ", ".join(f"({o[0]}) {o[2:]}" for o in r["options"])
        samples.append(_sample(AQUA_TRAIN_SIZE + i, {
            "question": f"{r['question']} Answer choices: {options}.", "answer": r["correct"]},
            "zero_shot_cot/dataset/AQuA/test.json"))
    return samples


# --- the task ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)  # hashed by identity, so its samples can be cached
class Task:
    name: str
    title: str
    category: str  # the paper's grouping: arithmetic / other / symbolic / common sense
    answer_type: str  # number / choice / yes_no / letters / text
    trigger: str  # the Zero-shot-CoT answer trigger
    log: str  # stem of the text-davinci-002 log in zero_shot_cot/log/ ("": none)
    load: Callable[[str, Path], list[Sample]] = load_reasoning_teacher
    letters: str = ""  # choice letters of choice tasks
    split_names: tuple[str, ...] = ("default",)
    unavailable: dict[str, str] = field(default_factory=dict)  # split -> why it is missing
    split_file: Path | None = None  # a task file's split (task_files); None: the paper's

    def samples(self) -> dict[int, Sample]:
        """All available samples by sample_index."""
        return _load_samples(self, self.split_file.parent if self.split_file else data_root())

    def split_indices(self, split: str = "default") -> dict[str, list[int]]:
        if split not in self.split_names:
            raise CotlibError(f"task {self.name} has no split {split!r}; "
                              f"choose from {', '.join(self.split_names)}")
        if self.split_file:  # a task file's split lies beside it (parts and their provenance)
            path, drawn = self.split_file, read_json(self.split_file.name, self.split_file.parent)
            parts = {k: drawn[k] for k in ("train", "test") if k in drawn}
        else:
            path = f"reasoning_teacher/split/{self.name}__{split}.json"
            parts = read_json(path)
        shaped = isinstance(parts, dict) and {"train", "test"} <= parts.keys() and all(
            isinstance(v, list) and all(isinstance(i, int) for i in v) for v in parts.values())
        if not shaped:
            raise CotlibError(f"{path}: expected {{\"train\": [sample indices], \"test\": [...]}}")
        return parts

    def split(self, part: str, split: str = "default") -> list[Sample]:
        """Samples of `part` ("train" or "test") of the official `split`."""
        parts = self.split_indices(split)
        if part not in parts:
            raise CotlibError(f"split {self.name}__{split} has no part {part!r}; "
                              f"choose from {', '.join(parts)}")
        if part in self.unavailable:
            raise CotlibError(f"{self.name} {part}: {self.unavailable[part]}")
        samples = self.samples()
        missing = [i for i in parts[part] if i not in samples]
        if missing:
            raise CotlibError(f"split {self.name}__{split}.json: {part} index {missing[0]} "
                              f"is out of range ({len(samples)} samples)")
        return [samples[i] for i in parts[part]]

    def extract(self, text: str) -> str:
        """Predicted answer in free text (the first answer it states)."""
        return ANSWER_TYPES[self.answer_type][0](text, self)

    def is_correct(self, predicted: str, gold: str, strict: bool = False) -> bool:
        """Strict: exact strings, as the logs compared them; fair: numeric/letter equality."""
        if strict:
            return predicted == canonical_gold(gold)
        return ANSWER_TYPES[self.answer_type][1](predicted, gold)

    def random_accuracy(self, part: str = "test") -> float:
        """Expected accuracy (%) of a uniform random guess among the choices."""
        if self.answer_type == "yes_no":
            return 50.0
        if self.answer_type != "choice":
            return 0.0
        samples = self.split(part)
        return 100 * sum(1 / len(s.choices) for s in samples) / len(samples)


@lru_cache(maxsize=None)
def _load_samples(task: Task, root: Path) -> dict[int, Sample]:
    samples = {s.sample_index: s for s in task.load(task.name, root)}
    if task.answer_type == "choice":
        bad = next((s for s in samples.values() if not s.choices), None)
        if bad:
            raise CotlibError(f"task {task.name}: sample {bad.sample_index} has no answer choices")
    return samples


NUMERALS = "Therefore, the answer (arabic numerals) is"
YES_NO = "Therefore, the answer (Yes or No) is"

TASKS: dict[str, Task] = {t.name: t for t in [
    Task("single_eq", "SingleEq", "arithmetic", "number", NUMERALS, "singleeq"),
    Task("addsub", "AddSub", "arithmetic", "number", NUMERALS, "addsub"),
    Task("multiarith", "MultiArith", "arithmetic", "number", NUMERALS, "multiarith",
         split_names=("default", "template")),
    Task("gsm8k", "GSM8K", "arithmetic", "number", NUMERALS, "gsm8k", load=load_gsm8k),
    Task("aqua", "AQuA", "arithmetic", "choice", "Therefore, among A through E, the answer is",
         "aqua", load=load_aqua, letters="ABCDE",
         unavailable={"train": "AQuA's train.json (97,467 problems) is not in the data "
                               "mirror; only the 254 test problems are available offline"}),
    Task("svamp", "SVAMP", "arithmetic", "number", NUMERALS, "svamp"),
    Task("date_understanding", "Date Understanding", "other", "choice",
         "Therefore, among A through F, the answer is", "date_understanding", letters="ABCDEF",
         split_names=("default", "template")),
    Task("tracking_shuffled_objects", "Tracking Shuffled Objects", "other", "choice",
         "Therefore, among A through C, the answer is", "shuffled_objects", letters="ABC"),
    Task("last_letter_concatenation", "Last Letter Concatenation", "symbolic", "letters",
         "Therefore, the answer is", "last_letters"),
    Task("coin_flip", "Coin Flip", "symbolic", "yes_no", YES_NO, "coin_flip"),
    Task("commonsense_qa", "CommonsenseQA", "common sense", "choice",
         "Therefore, among A through E, the answer is", "commonsensqa", letters="ABCDE"),
    Task("strategy_qa", "StrategyQA", "common sense", "yes_no", YES_NO, "strategyqa"),
]}


def task_file_paths() -> dict[str, Path]:
    """Users' task files by name: `<name>.jsonl` in the folders (or the files themselves)
    listed in $COTLIB_TASKS, separated by os.pathsep. A name of a built-in task is an error."""
    found: dict[str, Path] = {}
    for entry in filter(None, os.environ.get("COTLIB_TASKS", "").split(os.pathsep)):
        path = Path(entry)
        if not path.exists():
            raise CotlibError(f"COTLIB_TASKS: no task file or folder {path}")
        for file in sorted(path.glob("*.jsonl")) if path.is_dir() else [path]:
            name = file.name.removesuffix(".jsonl")
            if file.suffix != ".jsonl" or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
                raise CotlibError(f"{file}: a task file is named <name>.jsonl, the name made of "
                                  "letters, digits, '_', '-' and '.'")
            if name in TASKS:
                raise CotlibError(f"{file}: task name {name!r} clashes with a built-in task; "
                                  "rename the file")
            if found.get(name, file).resolve() != file.resolve():
                raise CotlibError(f"{file}: task name {name!r} is also {found[name]}")
            found[name] = file
    return found


def use_task_files(paths: list[Path]) -> None:
    """Make task files known by name to this process and its children (`--task-file`)."""
    listed = [str(Path(p).resolve()) for p in paths]
    os.environ["COTLIB_TASKS"] = os.pathsep.join(
        [*listed, *filter(None, os.environ.get("COTLIB_TASKS", "").split(os.pathsep))])


def all_tasks() -> dict[str, Task]:
    """The built-in tasks, then the task files of $COTLIB_TASKS."""
    from .task_files import file_task  # noqa: PLC0415  (task_files builds on this module)
    return {**TASKS, **{name: file_task(path) for name, path in task_file_paths().items()}}


def get_task(name: str) -> Task:
    files = task_file_paths()  # first: a task file clashing with a built-in name is an error
    if name in TASKS:
        return TASKS[name]
    if name not in files:
        raise CotlibError(f"unknown task {name!r}; choose from {', '.join([*TASKS, *files])} "
                          "or add a task file (--task-file or $COTLIB_TASKS)")
    from .task_files import file_task  # noqa: PLC0415
    return file_task(files[name])
