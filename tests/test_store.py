import json
import os
import subprocess
import threading

import pytest

from cotlib.data import CotlibError
from cotlib.store import (Completion, Store, export_completion_dataset, export_jsonl,
                          import_completion_dataset, load, owned, read_jsonl)


def record(sample_index, completion_index=0, status="ok", **extra):
    return Completion("teacher", "zs_cot_T0", "multiarith", "default/train", sample_index,
                      completion_index, f"question {sample_index}?", str(sample_index),
                      reasoning_prompt=f"Q: question {sample_index}?\nA: Let's think step by step.",
                      rationale=f"so {sample_index}.", prompt="Q: ...", answer_text=f"{sample_index}.",
                      finish_reason="stop", status=status, **extra)


def test_append_and_load_keep_the_latest_record_per_key(tmp_path):
    store = Store(tmp_path / "s.jsonl")
    store.append(record(1, status="failed"))
    store.append(record(2))
    store.append(record(1))  # a retried failure succeeds
    loaded = store.load()
    assert len(loaded.records) == 2 and not loaded.problems
    assert loaded.done() == {record(1).key(), record(2).key()}


def test_torn_last_line_is_reported_skipped_and_sealed(tmp_path):
    path = tmp_path / "s.jsonl"
    store = Store(path)
    store.append(record(1))
    line = json.dumps(record(2).__dict__)
    with open(path, "a") as f:
        f.write(line[: len(line) // 2])  # a crash in the middle of a write
    loaded = load(path)
    assert list(loaded.records) == [record(1).key()]
    assert loaded.problems == [f"{path} line 2: skipped, torn last line (no newline): "
                               "an interrupted write"]
    Store(path).append(record(3))  # reopening seals the torn line; the next record is whole
    loaded = load(path)
    assert set(loaded.records) == {record(1).key(), record(3).key()}
    assert len(loaded.problems) == 1 and "line 2: skipped" in loaded.problems[0]
    with pytest.raises(CotlibError, match="line 2: skipped"):
        read_jsonl(path)


def test_corrupt_middle_line_is_reported_not_merged(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(record(1).__dict__) + "\n[1, 2]\n{oops\n")
    loaded = load(path)
    assert len(loaded.records) == 1
    assert [p.split(": ")[0] for p in loaded.problems] == [f"{path} line 2", f"{path} line 3"]


def test_consolidated_export_is_sorted_and_atomic(tmp_path):
    out = tmp_path / "out" / "c.jsonl"
    export_jsonl([record(3), record(1), record(2, 1), record(2, 0)], out)
    assert [(r.sample_index, r.completion_index) for r in read_jsonl(out)] == \
        [(1, 0), (2, 0), (2, 1), (3, 0)]
    assert [p.name for p in out.parent.iterdir()] == ["c.jsonl"]  # no temporary left


def test_gzipped_consolidated_file_round_trips_with_stable_bytes(tmp_path):
    import gzip
    records = [record(2), record(1, error="naïve: 3 × 4 ≠ 11")]  # non-ASCII survives
    out = tmp_path / "c.jsonl.gz"
    export_jsonl(records, out)
    first = out.read_bytes()
    export_jsonl(reversed(records), out)  # rewriting the same records changes no byte (git)
    assert out.read_bytes() == first
    export_jsonl(records, tmp_path / "c.jsonl")
    assert gzip.decompress(first) == (tmp_path / "c.jsonl").read_bytes()
    assert read_jsonl(out) == read_jsonl(tmp_path / "c.jsonl") == sorted(
        records, key=lambda r: r.sample_index)
    out.write_bytes(first[:-9])  # cut short
    with pytest.raises(CotlibError, match=r"c.jsonl.gz: not a whole gzip file"):
        read_jsonl(out)


def test_completion_dataset_round_trip(tmp_path):
    records = [record(1), record(2, 0), record(2, 1), record(3, status="failed")]
    path = tmp_path / "D_multiarith.json"
    export_completion_dataset(records, path, base_model="teacher")
    upstream = json.loads(path.read_text())
    assert upstream["metadata"]["dataset_key"] == "multiarith"
    assert sorted(upstream["data"]) == ["1", "2"]  # failures are not exported
    entry = upstream["data"]["2"][1]
    assert entry["completion_index"] == 1 and entry["reasoning_completion"] == "so 2."
    assert {"prompt", "completion", "finish_reason", "reasoning_prompt",
            "reasoning_finish_reason", "question", "answer"} <= entry.keys()
    back = import_completion_dataset(path, "teacher", "zs_cot_T0")
    assert [(r.key(), r.rationale, r.answer_text) for r in back] == \
        [(r.key(), r.rationale, r.answer_text) for r in records[:3]]


def test_import_rejects_other_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"data": []}')
    with pytest.raises(CotlibError, match="x.json: not a CompletionDataset JSON"):
        import_completion_dataset(path, "t", "p")


def test_a_store_creates_its_folder_only_when_it_writes(tmp_path):
    store = Store(tmp_path / "teacher" / "params" / "s.jsonl")
    assert not (tmp_path / "teacher").exists() and not store.load().records
    store.append(record(1))
    assert list(store.load().records) == [record(1).key()]


def test_a_live_owner_is_waited_for_and_a_dead_ones_lock_taken_over(tmp_path):
    cell, lock = tmp_path / "cell", tmp_path / "cell.lock"
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock.write_text(str(dead.pid))  # left by a process killed while it owned the cell
    said = []
    with owned(cell, said.append):
        assert lock.read_text() == str(os.getpid())
    assert not lock.exists() and not said
    alive = subprocess.Popen(["sleep", "60"])
    lock.write_text(str(alive.pid))
    threading.Timer(0.5, lambda: (alive.kill(), alive.wait())).start()  # dies owning it
    with owned(cell, said.append, poll=0.1):
        assert lock.read_text() == str(os.getpid())
    assert said == [f"{cell} is in use by process {alive.pid}: waiting for it"]
