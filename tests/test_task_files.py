"""Task files: a JSONL of questions and answers is a task everywhere; bad files are one line."""
import json
import subprocess
import sys

import pytest

from conftest import PROJECT
from cotlib.data import CotlibError
from cotlib.experiments import get_profile
from cotlib.sources import completions, get_source
from cotlib.tasks import TASKS, all_tasks, get_task

EXAMPLE = PROJECT / "examples" / "tasks"


def write_task(folder, name="sums", records=None, declared=None, raw=None):
    """A task file and its declaration in `folder`; returns the .jsonl path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    if raw is not None:
        path.write_bytes(raw)
    else:
        records = records if records is not None else [
            {"question": f"What is {a} plus {a + 1}?", "answer": 2 * a + 1} for a in range(10)]
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / f"{name}.task.json").write_text(json.dumps(declared or {"answer_type": "number"}))
    return path


@pytest.fixture
def tasks_dir(tmp_path, monkeypatch):
    folder = tmp_path / "tasks"
    monkeypatch.setenv("COTLIB_TASKS", str(folder))
    return folder


def test_a_task_file_is_a_registry_task(tasks_dir):
    write_task(tasks_dir)
    task = get_task("sums")
    assert (task.answer_type, task.trigger) == ("number", "Therefore, the answer (arabic numerals) is")
    parts = task.split_indices()
    assert (len(parts["train"]), len(parts["test"])) == (8, 2)
    assert sorted(parts["train"] + parts["test"]) == list(range(10))
    assert task.split("test")[0].question.startswith("What is")
    assert task.extract("so 7. The end") == "7" and task.is_correct("7.0", "7")
    assert "sums" in all_tasks() and set(TASKS) < set(all_tasks())
    profile = get_profile("smoke", tasks=["sums"])  # the notebooks' `tasks` parameter
    assert profile.tasks == ("sums",)


def test_split_is_written_once_and_reused(tasks_dir):
    path = write_task(tasks_dir, declared={"answer_type": "number", "seed": 3})
    first = get_task("sums").split_indices()
    split_file = tasks_dir / "sums.split.json"
    written = split_file.read_bytes()
    assert first == {k: json.loads(written)[k] for k in ("train", "test")}
    # another process reads the same split; an edited task file no longer matches it
    code = "from cotlib.tasks import get_task; print(get_task('sums').split_indices()['test'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(first["test"])
    assert split_file.read_bytes() == written
    path.write_text(path.read_text() + json.dumps({"question": "What is 1 and 1?", "answer": 2}))
    with pytest.raises(CotlibError, match="sums.split.json: drawn from another version of sums.jsonl"):
        get_task("sums")


def test_answer_types_and_default_triggers(tasks_dir):
    write_task(tasks_dir, "pick", [{"question": f"Which is {w}?", "choices": ["x", w, "z"],
                                     "answer": "B"} for w in "abcde"], {"answer_type": "choice"})
    write_task(tasks_dir, "yn", [{"question": f"Is {i} even?", "answer": "Yes" if i % 2 == 0 else "no"}
                                 for i in range(5)], {"answer_type": "yes_no", "trigger": "So:"})
    write_task(tasks_dir, "words", [{"question": f"Say {w} twice.", "answer": f"{w} {w}"}
                                    for w in ("red", "blue", "green", "tan", "gold")],
               {"answer_type": "text"})
    pick = get_task("pick")
    assert pick.letters == "ABC" and pick.trigger == "Therefore, among A through C, the answer is"
    sample = pick.samples()[0]
    assert sample.question == "Which is a? Answer choices: (A) x, (B) a, (C) z."
    assert sample.choices == ("x", "a", "z") and pick.extract(" (B) a") == "B"
    yn = get_task("yn")
    assert yn.trigger == "So:" and yn.is_correct(yn.extract("Yes, it is."), "Yes")
    words = get_task("words")
    assert words.trigger == "Therefore, the answer is"
    assert words.is_correct(words.extract(' "Red, red."\nMore text'), "red red")
    assert not words.is_correct(words.extract("red"), "red red")


def test_the_example_task(monkeypatch, tmp_path):
    monkeypatch.setenv("COTLIB_TASKS", str(EXAMPLE))
    task = get_task("reverse_words")
    parts = task.split_indices()
    assert (len(parts["train"]), len(parts["test"])) == (240, 60)
    sample = task.samples()[0]
    words = sample.question.split(": ", 1)[1].rstrip(".").split(", ")
    assert sample.answer.split(", ") == words[::-1]
    assert task.is_correct(task.extract(f" {sample.answer}."), sample.answer)
    # the generator writes the committed bytes again
    subprocess.run([sys.executable, str(PROJECT / "scripts/make_reverse_words.py"), "--out",
                    str(tmp_path)], capture_output=True, text=True, check=True)
    for name in ("reverse_words.jsonl", "reverse_words.task.json"):
        assert (tmp_path / name).read_bytes() == (EXAMPLE / name).read_bytes()


def test_the_tasks_command_lists_task_files(tasks_dir, tmp_path):
    write_task(tasks_dir)
    extra = write_task(tmp_path / "elsewhere", "more")
    result = subprocess.run([sys.executable, "-m", "cotlib", "tasks", "--task-file", str(extra)],
                            cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:] if line}
    assert rows["sums"][1:] == ["task", "file", "8", "2", "-", "-"]
    assert rows["more"][1:4] == ["task", "file", "8"] and "coin_flip" in rows


def test_run_builds_the_main_table_of_a_task_file(tasks_dir, tmp_path, monkeypatch):
    from cotlib.tables import main_table
    monkeypatch.setenv("COTLIB_RUNS", str(tmp_path / "runs"))
    write_task(tasks_dir, records=[{"question": f"What is {a} plus {a + 1}?", "answer": 2 * a + 1}
                                   for a in range(30)])
    table = main_table(get_profile("smoke", tasks=["sums"]), ("vanilla",), log=lambda _: None)
    assert list(table.columns) == ["sums"]
    assert table.loc["Random", "sums"] == 0 and 0 <= table.loc["Fine-tune", "sums"] <= 100
    assert table.loc[["Teacher (175B, recorded)", "paper: Fine-tune-CoT GPT-3 0.3B"], "sums"].isna().all()
    assert (tmp_path / "runs" / "sums").is_dir()


def test_the_recorded_teacher_has_no_task_file(tasks_dir):
    write_task(tasks_dir)
    with pytest.raises(CotlibError, match="teacher source recorded has no completions for task sums"):
        completions(get_source("recorded"), get_task("sums"))


BAD = [  # (what, file bytes or records, declaration, expected message)
    ("malformed JSON", b'{"question": "a?", "answer": 1}\n{"question": "b?", "answer": \n',
     None, r"sums.jsonl:2: malformed JSON"),
    ("missing question", [{"question": "a?", "answer": 1}, {"answer": 2}], None,
     r"sums.jsonl:2: missing 'question'"),
    ("missing answer", [{"question": "a?", "answer": 1}, {"question": "b?"}], None,
     r"sums.jsonl:2: missing 'answer'"),
    ("empty answer", [{"question": "a?", "answer": 1}, {"question": "b?", "answer": "  "}], None,
     r"sums.jsonl:2: empty answer"),
    ("answer not a number", [{"question": "a?", "answer": 1}, {"question": "b?", "answer": "two"}],
     None, r"sums.jsonl:2: answer 'two' does not fit answer_type number: not a number"),
    ("answer not yes/no", [{"question": "a?", "answer": "maybe"}], {"answer_type": "yes_no"},
     r"sums.jsonl:1: answer 'maybe' does not fit answer_type yes_no"),
    ("letter beyond the choices", [{"question": "a?", "choices": ["x", "y"], "answer": "C"}],
     {"answer_type": "choice"}, r"sums.jsonl:1: answer 'C' does not fit answer_type choice: "
                                r"expected a choice letter A-B"),
    ("duplicate questions", [{"question": "What is 1?", "answer": 1}, {"question": "b?", "answer": 2},
                             {"question": "what is  1?", "answer": 1}], None,
     r"sums.jsonl:3: duplicate question \(the same as line 1\)"),
    ("non-UTF-8 bytes", b'{"question": "a?", "answer": 1}\n{"question": "caf\xe9?", "answer": 2}\n',
     None, r"sums.jsonl:2: not UTF-8"),
    ("empty file", b"\n\n", None, r"sums.jsonl: empty file: no records"),
    ("empty test split", [{"question": f"q{i}?", "answer": i} for i in range(4)],
     {"answer_type": "number", "test_fraction": 0.1},
     r"sums.task.json: test_fraction 0.1 of 4 questions leaves an empty test split"),
    ("empty train split", [{"question": f"q{i}?", "answer": i} for i in range(4)],
     {"answer_type": "number", "test_fraction": 0.9},
     r"sums.task.json: test_fraction 0.9 of 4 questions leaves an empty train split"),
    ("unknown answer type", [{"question": "a?", "answer": 1}], {"answer_type": "float"},
     r"sums.task.json: answer_type 'float': choose from number, choice, yes_no, letters, text"),
]


@pytest.mark.parametrize("what,content,declared,message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_task_file_is_one_line_and_writes_nothing(tasks_dir, what, content, declared,
                                                         message):
    raw = content if isinstance(content, bytes) else None
    write_task(tasks_dir, records=None if raw else content, declared=declared, raw=raw)
    before = sorted(p.name for p in tasks_dir.iterdir())
    with pytest.raises(CotlibError, match=message) as error:
        get_task("sums")
    assert "\n" not in str(error.value) and str(tasks_dir) in str(error.value)
    assert sorted(p.name for p in tasks_dir.iterdir()) == before  # no split written


def test_a_name_of_a_built_in_task_is_refused(tasks_dir, tmp_path):
    write_task(tasks_dir, "coin_flip")
    with pytest.raises(CotlibError, match=r"coin_flip.jsonl: task name 'coin_flip' clashes with a "
                                          r"built-in task; rename the file"):
        get_task("coin_flip")
    assert not (tasks_dir / "coin_flip.split.json").exists()


def test_cli_errors_name_the_file_and_line(tmp_path):
    path = write_task(tmp_path, records=[{"question": "a?", "answer": 1}, {"question": "b?"}])
    for argv in (["tasks"], ["distil", "--teacher", "local", "--profile", "smoke"],
                 ["generate", "--teacher", "local"]):
        result = subprocess.run([sys.executable, "-m", "cotlib", *argv, "--task-file", str(path)],
                                cwd=PROJECT, capture_output=True, text=True,
                                env={"COTLIB_RUNS": str(tmp_path / "runs"), "PATH": "/usr/bin"})
        assert result.returncode == 1
        assert result.stderr == f"error: {path}:2: missing 'answer'\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sums.jsonl", "sums.task.json"]
