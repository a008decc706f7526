"""Two processes on one runs folder: one owns a cell, the other waits and loads its result."""
import json
import os
import subprocess
import sys

from cotlib.experiments import get_profile, run_dir
from cotlib.store import owned
from conftest import PROJECT


def start_run(runs):
    return subprocess.Popen([sys.executable, "-m", "cotlib", "run", "--profile", "smoke",
                             "--tasks", "coin_flip", "--methods", "vanilla"], cwd=PROJECT,
                            env={**os.environ, "COTLIB_RUNS": str(runs), "PYTHONUNBUFFERED": "1"},
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def cell(runs):
    (out,) = (runs / "coin_flip").iterdir()  # one cell, no lock file left behind
    metrics = json.loads((out / "metrics.json").read_text())
    for timing in ("seconds", "eval_seconds"):
        metrics.pop(timing)
    return metrics, (out / "predictions.jsonl").read_text()


def read_until(process, text):
    """The process's output lines up to the first that holds `text` (all of them if none)."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if text in line:
            break
    return lines


def test_a_run_waits_for_the_owner_of_its_cell_and_a_finished_cell_is_not_trained_again(
        tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    monkeypatch.setenv("COTLIB_RUNS", str(shared))
    with owned(run_dir(get_profile("smoke"), "coin_flip", "vanilla"), log=lambda _: None):
        waiting = start_run(shared)  # this test process owns the cell: the run must wait
        said = read_until(waiting, "in use by process")
    rest = waiting.communicate(timeout=600)[0]
    assert waiting.returncode == 0, said + [rest]
    assert f"in use by process {os.getpid()}: waiting" in said[-1]
    assert "step 4/4" in rest and "in use" not in rest  # said once; trained once let go
    again = start_run(shared)
    out = again.communicate(timeout=600)[0]
    assert again.returncode == 0 and "step 4/4" not in out and "in use" not in out
    alone = start_run(tmp_path / "alone")
    alone.communicate(timeout=600)
    assert alone.returncode == 0
    assert cell(shared) == cell(tmp_path / "alone")
