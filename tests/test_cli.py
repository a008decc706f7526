import subprocess
import sys

from conftest import PROJECT
from cotlib.cli import main


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


def one_line_error(capsys, *argv):
    """`python -m cotlib argv` in this process: exit 1 and one line on stderr; that line."""
    assert main(list(argv)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_bad_settings_and_missing_parts_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COTLIB_RUNS", str(tmp_path / "runs"))
    smoke = ["run", "--profile", "smoke", "--tasks", "coin_flip", "--methods", "vanilla"]
    assert "learning_rate=nan" in one_line_error(capsys, *smoke, "--learning-rate", "nan")
    assert "learning_rate=inf" in one_line_error(capsys, *smoke, "--learning-rate", "inf")
    err = one_line_error(capsys, "run", "--profile", "smoke", "--tasks", "aqua", "--methods", "vanilla")
    assert "aqua train: AQuA's train.json" in err
    assert not (tmp_path / "runs").exists()
    (tmp_path / "runs").write_text("")
    assert "COTLIB_RUNS" in one_line_error(capsys, *smoke)
    err = one_line_error(capsys, "download", "--mirror", "notaurl", "--dest", str(tmp_path / "d"))
    assert "mirror 'notaurl' is not a URL" in err and not (tmp_path / "d").exists()


def test_run_takes_consistent_choices():
    from cotlib.cli import parser
    assert parser().parse_args(["run", "--consistent-choices"]).consistent_choices
    assert not parser().parse_args(["run"]).consistent_choices
