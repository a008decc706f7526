"""Two processes on one runs folder: one owns a cell, the other waits and loads its result."""
import json
import os
import subprocess
import sys

from conftest import PROJECT


def start_run(runs):
    return subprocess.Popen([sys.executable, "-m", "cotlib", "run", "--profile", "smoke",
                             "--tasks", "coin_flip", "--methods", "vanilla"], cwd=PROJECT,
                            env={**os.environ, "COTLIB_RUNS": str(runs)}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def cell(runs):
    (out,) = (runs / "coin_flip").iterdir()  # one cell, no lock file left behind
    metrics = json.loads((out / "metrics.json").read_text())
    for timing in ("seconds", "eval_seconds"):
        metrics.pop(timing)
    return metrics, (out / "predictions.jsonl").read_text()


def test_two_runs_on_one_folder_train_a_cell_once(tmp_path):
    pair = [start_run(tmp_path / "shared") for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in pair]
    assert [p.returncode for p in pair] == [0, 0], outputs
    trained = [out for out in outputs if "step 4/4" in out]
    waited = [out for out in outputs if "step 4/4" not in out]
    assert len(trained) == 1 and len(waited) == 1, outputs
    said = [line for line in waited[0].splitlines() if "in use by process" in line]
    assert len(said) == 1 and "waiting" in said[0] and "in use" not in trained[0]
    alone = start_run(tmp_path / "alone")
    alone.communicate(timeout=600)
    assert alone.returncode == 0
    assert cell(tmp_path / "shared") == cell(tmp_path / "alone")
