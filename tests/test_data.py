import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cotlib import data
from cotlib.data import CotlibError, data_root, download, sha256_of, data_files
from cotlib.tasks import get_task
from cotlib.teachers import read_log

CORRUPT = "reasoning_teacher/split/addsub__default.json"
INTERRUPT = "reasoning_teacher/dataset/coin_flip.json"
SHORT = "reasoning_teacher/split/coin_flip__default.json"  # served whole, but a wrong file
MIRROR_STATE: dict = {}  # the running mirror's switches
WANTED = [CORRUPT, INTERRUPT, "reasoning_teacher/split/coin_flip__default.json",
          "zero_shot_cot/log/coin_flip_zero_shot_cot.log"]


@pytest.fixture
def mirror():
    """A local HTTP server serving the real data root, with Range support and three faults."""
    root, state = data_root(), MIRROR_STATE
    state.update(cut=False, short=False)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            rel = self.path.lstrip("/")
            body = (root / rel).read_bytes()
            if rel == CORRUPT:
                body = body.replace(b"1", b"2", 1)
            if rel == SHORT and state["short"]:
                body = body[:100]
            start = int(self.headers["Range"][6:-1]) if self.headers["Range"] else 0
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if rel == INTERRUPT and not state["cut"]:
                state["cut"] = True
                self.wfile.write(body[: len(body) // 2])  # then the connection drops
                self.close_connection = True
                return
            self.wfile.write(body[start:])

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_sources_manifest_matches_the_shared_files():
    root = data_root()
    entries = data_files()
    assert len(entries) > 100
    for entry in entries:
        assert entry.commit and len(entry.commit) == 40 and entry.repo.count("/") == 1
        assert sha256_of(root / entry.path) == entry.sha256, entry.path
    assert data_files()[0].url().startswith("https://raw.githubusercontent.com/")


def test_download_verifies_checksums_and_resumes(mirror, tmp_path, monkeypatch):
    dest = tmp_path / "cache"
    quiet = dict(progress=lambda message: None)
    with pytest.raises(CotlibError, match="checksum mismatch for " + CORRUPT):
        download(dest, mirror, only=[CORRUPT], **quiet)
    assert not (dest / CORRUPT).exists() and not list(dest.rglob("addsub__default.json*"))
    wanted = WANTED[1:]
    with pytest.raises(CotlibError, match=f"download of {INTERRUPT} .*rerun"):
        download(dest, mirror, only=wanted, **quiet)
    assert not (dest / INTERRUPT).exists() and (dest / (INTERRUPT + ".part")).exists()
    fetched = download(dest, mirror, only=wanted, **quiet)
    assert (dest / INTERRUPT) in fetched and not list(dest.rglob("*.part"))
    assert download(dest, mirror, only=wanted, **quiet) == []  # idempotent
    monkeypatch.setenv("COTLIB_DATA", str(dest))
    assert len(get_task("coin_flip").split("train")) == 350


def test_unreachable_mirror_is_a_clear_error(tmp_path):
    with pytest.raises(CotlibError, match="download of .* failed"):
        download(tmp_path, "http://127.0.0.1:9", only=WANTED[1:], progress=lambda m: None)


def test_missing_data_root_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("COTLIB_DATA", raising=False)
    monkeypatch.setattr(data, "PROJECT_ROOT", tmp_path / "project")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(CotlibError, match="no data root found.*python -m cotlib download"):
        data_root()
    monkeypatch.setenv("COTLIB_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(CotlibError, match="COTLIB_DATA=.*nowhere is not a directory"):
        data_root()


def test_user_cache_is_the_last_resort(tmp_path, monkeypatch):
    monkeypatch.delenv("COTLIB_DATA", raising=False)
    monkeypatch.setattr(data, "PROJECT_ROOT", tmp_path / "project")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "cache/cotlib/data").mkdir(parents=True)
    assert data_root() == tmp_path / "cache/cotlib/data"


def test_a_mirror_serving_a_short_file_is_named_and_its_part_removed(mirror, tmp_path):
    MIRROR_STATE["short"] = True
    for attempt in range(2):  # never "interrupted, rerun to resume"
        with pytest.raises(CotlibError, match=f"checksum mismatch for {SHORT}: {mirror}/{SHORT} "
                           r"served a wrong file \(100 bytes, expected [0-9,]+ bytes with sha256"):
            download(tmp_path, mirror, only=[SHORT], progress=lambda m: None)
        assert not list(tmp_path.rglob("*.part"))


def test_a_mirror_that_is_not_a_url_is_a_clear_error(tmp_path):
    with pytest.raises(CotlibError, match="mirror 'notaurl' is not a URL"):
        download(tmp_path / "d", "notaurl", only=WANTED[1:], progress=lambda m: None)
    assert not (tmp_path / "d").exists()


def test_a_data_file_that_is_not_utf8_is_named(data_copy):
    for relative in ("reasoning_teacher/dataset/coin_flip.json", "grade_school_math/train.jsonl"):
        (data_copy / relative).unlink()
        (data_copy / relative).write_bytes(b'[{"question": "caf\xe9"}]')
    with pytest.raises(CotlibError, match=r"coin_flip.json is not UTF-8 text \(byte 18"):
        get_task("coin_flip").samples()
    with pytest.raises(CotlibError, match=r"train.jsonl is not UTF-8 text"):
        get_task("gsm8k").samples()
    log = data_copy / "zero_shot_cot/log/coin_flip_zero_shot_cot.log"
    log.unlink()
    log.write_bytes(b"1st data\n\xff")
    with pytest.raises(CotlibError, match=r"coin_flip_zero_shot_cot.log is not UTF-8 text"):
        read_log(log, "Therefore")
