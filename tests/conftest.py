import os
from pathlib import Path

import pytest

from cotlib.data import data_root

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A data root of symlinks to the real files, used as COTLIB_DATA; tests may replace files."""
    real = data_root()
    copy = tmp_path / "data"
    for path in real.rglob("*"):
        if path.is_file():
            target = copy / path.relative_to(real)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, target)
    monkeypatch.setenv("COTLIB_DATA", str(copy))
    return copy


def replace(path: Path, text: str) -> None:
    """Replace a symlinked data file by a real file holding `text`."""
    path.unlink()
    path.write_text(text)


def written_text(path: Path) -> str:
    """What a file a run wrote says (gzipped files decompressed), for scans of secrets."""
    import gzip
    raw = path.read_bytes()
    return (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode(errors="replace")
