"""Where the third-party data lives: resolve the data root, read its files, download it.

Root = $COTLIB_DATA, else ../shared/data beside the project, else the user cache that
`python -m cotlib download` fills from the public GitHub repositories at pinned commits.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_FILES = Path(__file__).with_name("data_files.json")
GITHUB_RAW = "https://raw.githubusercontent.com"
HOW_TO_GET = ("set COTLIB_DATA to a copy of the data, put shared/data beside the project, "
              "or run `python -m cotlib download`")


class CotlibError(Exception):
    """The one error type of cotlib: its message names the file, record or parameter."""


def first_line(error: BaseException) -> str:
    """A library's error message on one line (the CLI prints errors as one line)."""
    return (str(error).strip() or type(error).__name__).splitlines()[0]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cotlib"


def runs_root() -> Path:
    """Where runs live (cells of `run`, stores of `generate`): $COTLIB_RUNS, else runs/ in the
    project."""
    return check_dir(Path(os.environ.get("COTLIB_RUNS", PROJECT_ROOT / "runs")), "COTLIB_RUNS")


def check_dir(path: Path, name: str) -> Path:
    """`path`, if it is or can become a directory; else an error naming the parameter."""
    existing = next((p for p in [path, *path.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise CotlibError(f"{name}={path}: {existing} is a file, not a directory")
    return path


def data_root() -> Path:
    """The directory holding the data files (see module docstring for the order)."""
    env = os.environ.get("COTLIB_DATA")
    if env:
        if not Path(env).is_dir():
            raise CotlibError(f"COTLIB_DATA={env} is not a directory; {HOW_TO_GET}")
        return Path(env)
    shared = PROJECT_ROOT.parent / "shared" / "data"
    if shared.is_dir():
        return shared
    cached = cache_dir() / "data"
    if cached.is_dir():
        return cached
    raise CotlibError(f"no data root found; {HOW_TO_GET}")


def data_path(relative: str, root: Path | None = None) -> Path:
    """Path of one data file; a clear error if it is missing."""
    path = (root or data_root()) / relative
    if not path.is_file():
        raise CotlibError(f"missing data file {path}; {HOW_TO_GET}")
    return path


def read_text(path: Path) -> str:
    """A data file's text; bytes that are not UTF-8 are an error naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CotlibError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason})") from None


def read_json(relative: str, root: Path | None = None) -> Any:
    path = data_path(relative, root)
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise CotlibError(f"malformed JSON in {path}: {e}") from None


def read_jsonl(relative: str, root: Path | None = None) -> list[Any]:
    path = data_path(relative, root)
    records = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise CotlibError(f"malformed JSON in {path} line {number}: {e}") from None
    return records


# --- download -------------------------------------------------------------------------

@dataclass(frozen=True)
class DataFile:
    """One data file: its place under the data root and upstream, and its checksum."""
    path: str
    repo: str
    commit: str
    upstream: str
    sha256: str
    size: int

    def url(self, mirror: str | None = None) -> str:
        if mirror:
            return f"{mirror.rstrip('/')}/{self.path}"
        return f"{GITHUB_RAW}/{self.repo}/{self.commit}/{self.upstream}"


def data_files() -> list[DataFile]:
    return [DataFile(**entry) for entry in json.loads(DATA_FILES.read_text())]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(dest: Path | None = None, mirror: str | None = None,
             only: Iterable[str] | None = None, timeout: float = 60,
             progress: Callable[[str], None] = print) -> list[Path]:
    """Fetch every source file missing or stale under `dest` (default: the user cache).

    A partial transfer is kept as `<file>.part` and resumed on the next call; a file
    appears under its own name only once its sha256 matches.
    """
    dest = Path(dest or cache_dir() / "data")
    if mirror and urllib.parse.urlsplit(mirror).scheme not in ("http", "https", "file"):
        raise CotlibError(f"mirror {mirror!r} is not a URL (http://, https:// or file://)")
    wanted = [s for s in data_files() if only is None or any(s.path.startswith(p) for p in only)]
    if not wanted:
        raise CotlibError(f"--only {' '.join(only or [])}: no data file path starts with that")
    fetched = []
    for source in wanted:
        target = dest / source.path
        if target.is_file() and sha256_of(target) == source.sha256:
            continue
        progress(f"downloading {source.path} ({source.size:,} bytes)")
        _fetch(source, target, mirror, timeout)
        fetched.append(target)
    return fetched


def _fetch(source: DataFile, target: Path, mirror: str | None, timeout: float) -> None:
    part = target.with_name(target.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(source.url(mirror))
    if 0 < have < source.size:
        request.add_header("Range", f"bytes={have}-")
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            mode = "ab" if response.status == 206 else "wb"
            announced = int(response.headers.get("Content-Length") or -1)
            with open(part, mode) as f:
                while block := response.read(1 << 16):
                    f.write(block)
                    received += len(block)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise CotlibError(f"download of {source.path} from {source.url(mirror)} failed: {e}; "
                          "rerun `python -m cotlib download` to resume") from None
    size = part.stat().st_size
    if received < announced:  # the connection dropped: what came is a prefix, keep it
        raise CotlibError(f"download of {source.path} was interrupted at "
                          f"{size:,}/{source.size:,} bytes; rerun to resume")
    if size != source.size or sha256_of(part) != source.sha256:  # whole, but not our file
        part.unlink()
        raise CotlibError(f"checksum mismatch for {source.path}: {source.url(mirror)} served a "
                          f"wrong file ({size:,} bytes, expected {source.size:,} bytes with "
                          f"sha256 {source.sha256})")
    os.replace(part, target)
