import subprocess
import sys

from conftest import PROJECT


def run(*args, **env):
    return subprocess.run([sys.executable, "-m", "cotlib", *args], cwd=PROJECT,
                          capture_output=True, text=True, env=env or None)


def test_tasks_prints_the_task_table():
    result = run("tasks")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["type", "train", "test", "teacher_train", "teacher_test"]
    multiarith = next(line for line in lines if line.startswith("multiarith")).split()
    assert multiarith[:4] == ["multiarith", "arithmetic", "420", "180"]
    assert 75 < float(multiarith[4]) < 82
    gsm8k = next(line for line in lines if line.startswith("gsm8k")).split()
    assert gsm8k[4] == "-"  # no recorded train rationales


def test_errors_are_one_line_with_nonzero_exit(tmp_path):
    result = run("tasks", COTLIB_DATA=str(tmp_path / "missing"), PATH="/usr/bin")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "COTLIB_DATA" in result.stderr
    result = run("download", "--dest", str(tmp_path), "--only", "no/such/file")
    assert result.returncode == 1 and "no data file path starts with" in result.stderr
    assert not list(tmp_path.iterdir())
