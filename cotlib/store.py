"""Durable store of teacher completions: an append-only JSONL file, one record a line.

Each record is flushed and fsynced as soon as it arrives, so a crash loses at most the
line being written. Reading keeps the last record per key (a retried failure is
superseded by its success); a torn or corrupt line is reported and skipped, never merged.
"""
from __future__ import annotations

import fcntl
import gzip
import json
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .data import CotlibError


@dataclass
class Completion:
    """One teacher completion of step 1, keyed by teacher/params/task/split/sample/completion."""
    teacher: str
    params: str  # GenerationParams.key(): method, temperature, token caps, seed
    task: str
    split: str  # e.g. "default/train"
    sample_index: int
    completion_index: int
    question: str
    answer: str  # gold
    reasoning_prompt: str = ""
    rationale: str = ""
    reasoning_finish_reason: str = ""
    prompt: str = ""  # the answer-stage prompt (stage 2)
    answer_text: str = ""
    finish_reason: str = ""
    prediction: str = ""
    correct: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0  # the request's share of its group's wall time
    started: float = 0.0  # Unix times its request group was sent and came back
    finished: float = 0.0  # (0: older records, not kept)
    status: str = "ok"  # "ok" or "failed"
    error: str = ""

    def key(self) -> tuple:
        return (self.teacher, self.params, self.task, self.split, self.sample_index,
                self.completion_index)


FIELDS = {f.name for f in fields(Completion)}


@dataclass
class Loaded:
    """What a store file holds: the latest record per key and the lines it skipped."""
    records: dict[tuple, Completion] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # "file line N: why"

    def done(self) -> set[tuple]:
        return {k for k, r in self.records.items() if r.status == "ok"}


def parse_line(line: str) -> Completion:
    data = json.loads(line)
    if not isinstance(data, dict) or not {"teacher", "sample_index"} <= data.keys():
        raise ValueError("not a completion record")
    return Completion(**{k: v for k, v in data.items() if k in FIELDS})


def load(path: Path) -> Loaded:
    """Read a store or a consolidated file (gzipped if named *.gz); missing: empty."""
    loaded = Loaded()
    if not path.exists():
        return loaded
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise CotlibError(f"{path}: not a whole gzip file ({e})") from e
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        torn = number == len(lines)  # no newline after it: the write was cut short
        try:
            if torn:
                raise ValueError("torn last line (no newline): an interrupted write")
            record = parse_line(line.decode("utf-8"))
        except (ValueError, TypeError, UnicodeDecodeError) as e:
            loaded.problems.append(f"{path} line {number}: skipped, {e}")
            continue
        loaded.records[record.key()] = record
    return loaded


class Store:
    """Append completions to one JSONL file; safe to call from several threads."""

    def __init__(self, path: Path):
        self.path = Path(path)  # its folder is made by the first append: a failed run leaves none
        self._lock = threading.Lock()
        self._seal_torn_tail()

    def _seal_torn_tail(self) -> None:
        # A torn last line stays (it is reported on every load) but must not glue itself
        # to the next record: end it with a newline before appending.
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    with open(self.path, "ab") as out:
                        out.write(b"\n")
                        out.flush()
                        os.fsync(out.fileno())

    def load(self) -> Loaded:
        return load(self.path)

    def append(self, record: Completion) -> None:
        line = json.dumps(asdict(record), ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


@contextmanager
def owned(path: Path, log: Callable[[str], None] = print, poll: float = 1.0) -> Iterator[None]:
    """Own `path` (a run cell, a store) while the block runs: `<path>.lock` holds our pid.

    While another live process owns it we wait, saying so once; the lock of a process that
    died owning it (kill -9) is taken over.
    """
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    owner = _take(lock)
    if owner is not None:
        log(f"{path} is in use by process {owner}: waiting for it")
    while owner is not None:
        time.sleep(poll)
        owner = _take(lock)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _take(lock: Path) -> int | None:
    """Create `lock` holding our pid (None), or the pid of its live owner."""
    folder = os.open(lock.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)  # two takers of a dead owner's lock: one at a time
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            owner = _pid(lock)
            if owner is not None and _alive(owner):
                return owner
            lock.unlink(missing_ok=True)
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return None
    finally:
        os.close(folder)  # and with it the flock


def _pid(lock: Path) -> int | None:
    try:
        return int(lock.read_text())
    except (ValueError, FileNotFoundError):  # empty: its owner died before writing its pid
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write a whole file so that readers see the old or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(text.encode("utf-8") if isinstance(text, str) else text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def sort_key(record: Completion) -> tuple:
    return record.key()


def export_jsonl(records: Iterable[Completion], path: Path) -> None:
    """The consolidated file: one record per key, sorted, written atomically; gzipped (the
    same bytes for the same records) if `path` ends in .gz."""
    lines = [json.dumps(asdict(r), ensure_ascii=False) for r in sorted(records, key=sort_key)]
    text = "".join(line + "\n" for line in lines)
    write_atomic(path, gzip.compress(text.encode("utf-8"), mtime=0)
                 if Path(path).suffix == ".gz" else text)


def read_jsonl(path: Path) -> list[Completion]:
    """A consolidated file (or a store) as records; corrupt lines are an error here."""
    loaded = load(Path(path))
    if loaded.problems:
        raise CotlibError("; ".join(loaded.problems))
    return sorted(loaded.records.values(), key=sort_key)


# --- the reasoning-teacher CompletionDataset JSON (README.upstream.md) -------------------

def export_completion_dataset(records: Iterable[Completion], path: Path,
                              base_model: str, completion_key: str = "zs_cot") -> None:
    """Write records as reasoning-teacher's CompletionDataset (only successful ones)."""
    records = sorted((r for r in records if r.status == "ok"), key=sort_key)
    tasks = {r.task for r in records}
    if len(tasks) > 1:
        raise CotlibError(f"a CompletionDataset holds one task; got {', '.join(sorted(tasks))}")
    data: dict[str, list] = {}
    for r in records:
        data.setdefault(str(r.sample_index), []).append({
            "sample_index": r.sample_index, "completion_index": r.completion_index,
            "question": r.question, "answer": r.answer,
            "prompt": r.prompt, "completion": r.answer_text, "finish_reason": r.finish_reason,
            "reasoning_prompt": r.reasoning_prompt, "reasoning_completion": r.rationale,
            "reasoning_finish_reason": r.reasoning_finish_reason})
    metadata = {"dataset_key": tasks.pop() if tasks else "", "base_model": base_model,
                "completion_key": completion_key}
    write_atomic(path, json.dumps({"metadata": metadata, "data": data}, indent=1,
                                  ensure_ascii=False))


def import_completion_dataset(path: Path, teacher: str, params: str,
                              split: str = "default/train") -> list[Completion]:
    """Read a reasoning-teacher CompletionDataset JSON as our records (not yet scored)."""
    try:
        dataset = json.loads(Path(path).read_text(encoding="utf-8"))
        task, data = dataset["metadata"]["dataset_key"], dataset["data"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise CotlibError(f"{path}: not a CompletionDataset JSON ({e})") from None
    records = []
    for sample_index, entries in data.items():
        for e in entries:
            try:
                records.append(Completion(
                    teacher, params, task, split, int(e["sample_index"]),
                    int(e["completion_index"]), e["question"], str(e["answer"]),
                    reasoning_prompt=e.get("reasoning_prompt") or "",
                    rationale=e.get("reasoning_completion") or "",
                    reasoning_finish_reason=e.get("reasoning_finish_reason") or "",
                    prompt=e["prompt"], answer_text=e["completion"],
                    finish_reason=e.get("finish_reason") or ""))
            except (KeyError, TypeError, ValueError) as err:
                raise CotlibError(f"{path}: sample {sample_index} has a malformed "
                                  f"completion ({err})") from None
    return sorted(records, key=sort_key)
