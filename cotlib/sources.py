"""Teacher sources: any teacher's completions, at degree D, for one split part. The only way
teacher text reaches curation and training.

A source is named by a spec: `recorded` (the logged text-davinci-002), `run:<teacher>/<params>`
(our own teacher runs, `python -m cotlib generate`), a published file's name (`esc:gpt-3.5-turbo`,
see `published.PUBLISHED`), or `completion-dataset:<path>` (reasoning-teacher JSON). Every
source joins by normalised question text and grades against our gold answer; records that
match no question are counted, and `completions` is the one guard that keeps a split part.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .data import PROJECT_ROOT, CotlibError, data_root, runs_root
from .published import PUBLISHED, PublishedFile, Raw, read_published
from .store import Completion, import_completion_dataset, read_jsonl
from .tasks import TASKS, Sample, Task, all_tasks, canonical_gold
from .teachers.base import accuracy  # noqa: F401  (sources.accuracy for callers)
from .teachers.recorded import RECORDED_TEACHER, log_path, question_key, read_log, recorded

TEACHER_RUNS = PROJECT_ROOT / "results" / "teacher_runs"  # committed consolidated runs


@dataclass(frozen=True)
class Source:
    """Where a teacher's completions come from, and what made them."""
    name: str  # the spec
    teacher: str
    style: str  # how the teacher was prompted
    temperature: float | None  # T; None: not stated
    files: tuple[PublishedFile, ...] = ()  # published sources
    location: str = ""  # run folders (os.pathsep between them) or CompletionDataset file

    @property
    def tasks(self) -> tuple[str, ...]:
        if self.name == "recorded":
            return tuple(t for t in TASKS)
        if self.files:
            return tuple(dict.fromkeys(f.task for f in self.files))
        if self.name.startswith("run:"):
            return tuple(sorted({p.name.split("__")[0] for p in _run_files(self.location)}))
        return (import_completion_dataset(Path(self.location), "", "")[0].task,)


@dataclass
class Joined:
    """A source's completions of one task, every split part, joined to our samples."""
    completions: list[Completion] = field(default_factory=list)
    records: int = 0  # samples the source holds for this task
    unmatched: int = 0  # of those, samples whose question is none of ours


RECORDED = Source("recorded", RECORDED_TEACHER, "Zero-shot-CoT (two stages)", 0.0)


def published_sources() -> list[Source]:
    grouped: dict[str, list[PublishedFile]] = {}
    for file in PUBLISHED:
        grouped.setdefault(file.source, []).append(file)
    return [Source(name, files[0].teacher, files[0].style, files[0].temperature, tuple(files))
            for name, files in grouped.items()]


def run_sources() -> list[Source]:
    """Our own teacher runs: committed ones, then consolidated runs under runs/teachers (a run
    in both places reads each task from the first that has it)."""
    found: dict[str, list[str]] = {}
    for root in (TEACHER_RUNS, runs_root() / "teachers"):
        for folder in sorted({p.parent for p in Path(root).glob("*/*/*.jsonl.gz")}):
            found.setdefault(f"run:{folder.parent.name}/{folder.name}", []).append(str(folder))
    sources = []
    for spec, folders in found.items():
        temperature = re.search(r"_T([\d.]+)_", spec)
        sources.append(Source(spec, Path(folders[0]).parent.name, "Zero-shot-CoT (two stages)",
                              float(temperature[1]) if temperature else None,
                              location=os.pathsep.join(folders)))
    return sources


def all_sources() -> list[Source]:
    return [RECORDED, *run_sources(), *published_sources()]


def get_source(spec: str) -> Source:
    """The source a spec names; an unknown spec is an error listing the known ones."""
    if spec.startswith("completion-dataset:"):
        path = Path(spec.split(":", 1)[1])
        if not path.is_file():
            raise CotlibError(f"teacher source {spec!r}: no file {path}")
        return Source(spec, path.stem, "as recorded in the file", None, location=str(path))
    known = {s.name: s for s in all_sources()}
    if spec not in known:
        raise CotlibError(f"unknown teacher source {spec!r}; choose from {', '.join(known)} "
                          "or completion-dataset:<path> (`python -m cotlib sources` lists them)")
    return known[spec]


def _run_files(location: str) -> list[Path]:
    """A run's consolidated files; a file name in an earlier folder hides the later ones."""
    files: dict[str, Path] = {}
    for folder in location.split(os.pathsep):
        for path in sorted(Path(folder).glob("*__*__*.jsonl.gz")):
            files.setdefault(path.name, path)
    return sorted(files.values())


# --- joining: question text -> our samples; answers -> our gold's terms -------------------

DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def _normal_choice(text: str) -> str:
    date = DATE.search(text)
    if date:
        return f"{int(date[1]):02d}/{int(date[2]):02d}/{date[3]}"
    return re.sub(r"[^a-z0-9]", "", text.lower())


def our_prediction(task: Task, sample: Sample, answer: str, letters_are_ours: bool) -> str:
    """The answer in our terms: a choice text or date becomes our letter; numbers, yes/no and
    letters are extracted by the task's rule."""
    if task.answer_type != "choice" or letters_are_ours:
        prediction = task.extract(answer)
        return canonical_gold(prediction) if task.answer_type == "number" else prediction
    wanted = _normal_choice(answer)
    choices = [_normal_choice(c) for c in sample.choices]
    return chr(ord("A") + choices.index(wanted)) if wanted and wanted in choices else ""


def join(task: Task, source: Source, raws: list[Raw], letters_are_ours: bool) -> Joined:
    """Raw samples -> graded completions. A question text that occurs twice in our data maps
    to each of its samples; the nth sample of a question is its completion n."""
    by_key: dict[str, list[Sample]] = {}
    for sample in task.samples().values():
        by_key.setdefault(question_key(sample.question), []).append(sample)
    joined, seen = Joined(records=len(raws)), Counter()
    for raw in raws:
        samples = by_key.get(question_key(raw.question))
        if not samples:
            joined.unmatched += 1
            continue
        samples = [s for s in samples if s.sample_index == raw.sample_index] or samples
        for sample in samples:
            prediction = our_prediction(task, sample, raw.answer, letters_are_ours)
            joined.completions.append(Completion(
                source.teacher, source.name, task.name, "", sample.sample_index,
                seen[sample.sample_index], sample.question, sample.answer,
                rationale=raw.rationale, answer_text=raw.answer, prediction=prediction,
                correct=task.is_correct(prediction, sample.answer)))
            seen[sample.sample_index] += 1
    return joined


def _recorded_joined(task: Task) -> Joined:
    joined = Joined(records=len(read_log(log_path(task), task.trigger)))
    for c in recorded(task):
        joined.completions.append(Completion(
            RECORDED_TEACHER, "recorded", task.name, "", c.sample_index, 0, c.question, c.answer,
            rationale=c.rationale, answer_text=c.answer_text, prediction=c.prediction,
            correct=task.is_correct(c.prediction, c.answer)))
    joined.unmatched = joined.records - len(joined.completions)
    return joined


@lru_cache(maxsize=None)
def _joined(source: Source, task: Task, root: Path) -> Joined:
    if task.name not in source.tasks:
        raise CotlibError(f"teacher source {source.name} has no completions for task {task.name}; "
                          f"it covers {', '.join(source.tasks)}")
    if source.name == "recorded":
        return _recorded_joined(task)
    if source.files:
        raws = [r for f in source.files if f.task == task.name for r in read_published(f)]
        return join(task, source, raws, letters_are_ours=False)
    if source.name.startswith("run:"):
        records = [r for p in _run_files(source.location) if p.name.startswith(f"{task.name}__")
                   for r in read_jsonl(p) if r.status == "ok"]
    else:
        records = import_completion_dataset(Path(source.location), source.teacher, source.name)
    raws = [Raw(r.question, r.rationale, r.answer_text, r.sample_index) for r in records]
    return join(task, source, raws, letters_are_ours=True)


def joined(source: Source, task: Task) -> Joined:
    """Every completion of `source` for `task`, all split parts (reports only; training reads
    `completions`)."""
    return _joined(source, task, data_root())


def max_degree(source: Source, task: Task, part: str = "train", split: str = "default") -> int:
    """The D a source offers on a part: its usual completions per question (the most common
    count; a question text that occurs twice in our data collects both its records)."""
    wanted = set(task.split_indices(split)[part])
    counts = Counter(c.sample_index for c in joined(source, task).completions
                     if c.sample_index in wanted)
    usual = Counter(counts.values()).most_common()
    return max((n for n, k in usual if k == usual[0][1]), default=0)


def completions(source: Source, task: Task, part: str = "train", degree: int | None = None,
                split: str = "default") -> list[Completion]:
    """The first D completions per question of one split part. The single guard: nothing of
    another part (e.g. a test question inside a published file) passes."""
    parts = task.split_indices(split)
    if part not in parts:
        raise CotlibError(f"split {task.name}__{split} has no part {part!r}")
    wanted = set(parts[part])
    if degree is not None:
        check_degree(source, task, degree, part, split)
    return [replace_split(c, f"{split}/{part}") for c in joined(source, task).completions
            if c.sample_index in wanted and (degree is None or c.completion_index < degree)]


def replace_split(c: Completion, split: str) -> Completion:
    return Completion(**{**vars(c), "split": split})


def check_degree(source: Source, task: Task, degree: int, part: str = "train",
                 split: str = "default") -> None:
    if not isinstance(degree, int) or degree < 1:
        raise CotlibError(f"degree D={degree!r} must be an integer >= 1")
    most = max_degree(source, task, part, split)
    if not most:
        raise CotlibError(f"teacher source {source.name} has no rationales on the {part} "
                          f"questions of {task.name}")
    if degree > most:
        raise CotlibError(f"teacher source {source.name} has at most D={most} completions per "
                          f"question on {task.name} {part}; D={degree} asked")


# --- the `sources` listing ----------------------------------------------------------------

def coverage(source: Source, task: Task) -> dict:
    """One row of `python -m cotlib sources`: covered train questions, max D, train accuracy."""
    row = {"source": source.name, "teacher": source.teacher, "task": task.name,
           "T": source.temperature}
    try:
        found = joined(source, task)
        train = completions(source, task, "train")
    except CotlibError as e:
        return {**row, "problem": str(e)}
    split = task.split_indices()
    test = set(split["test"])
    return {**row, "records": found.records, "unmatched": found.unmatched,
            "train_questions": len({c.sample_index for c in train}),
            "train_total": len(split["train"]),
            "test_dropped": len({c.sample_index for c in found.completions if c.sample_index in test}),
            "max_D": max_degree(source, task),
            "train_accuracy": accuracy(train),
            "problem": ""}


def coverage_table(tasks: list[str] | None = None):
    """`coverage` of every source and task it covers (a source that cannot be read: its
    problem)."""
    import pandas as pd  # noqa: PLC0415
    rows = []
    for source in all_sources():
        try:
            covered = source.tasks
        except CotlibError as e:
            rows.append({"source": source.name, "teacher": source.teacher, "problem": str(e)})
            continue
        known = all_tasks()  # the task files of $COTLIB_TASKS too
        rows += [coverage(source, known[name]) for name in covered
                 if name in known and (not tasks or name in tasks)]
    return pd.DataFrame(rows)
