import json
import subprocess
import sys

import pytest

from cotlib import sources
from cotlib.curation import curate
from cotlib.experiments import get_profile, run, run_dir, train_samples
from cotlib.published import _evaluate, split_final
from cotlib.store import Completion, export_completion_dataset
from cotlib.tasks import TASKS, get_task
from cotlib.teachers.recorded import question_key
from conftest import PROJECT

QWEN_D4 = "run:qwen2.5-coder-1.5b/zs_cot_T0.7_max256_ans32_seed0"


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("COTLIB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture(scope="module")
def coverage():
    return sources.coverage_table()


def test_every_source_is_read_and_joins_every_record(coverage):
    assert (coverage.problem == "").all(), coverage[coverage.problem != ""].problem.tolist()
    assert (coverage.unmatched == 0).all()
    names = set(coverage.source)
    assert {"recorded", QWEN_D4, "esc:gpt-3.5-turbo", "mcc-kd:gpt-3.5-turbo",
            "plan-and-solve:text-davinci-003", "dss:palm-540b",
            "faithful-cot:code-davinci-002-ltm"} <= names
    assert len([n for n in names if n.startswith("mot:")]) == 10
    assert len([n for n in names if n.startswith("faithful-cot:")]) == 7


def row(coverage, source, task):
    return coverage[(coverage.source == source) & (coverage.task == task)].iloc[0]


@pytest.mark.parametrize("source, task, questions, degree, accuracy", [
    # the counts and accuracies of teacher_samples/README.md, against our gold
    ("esc:gpt-3.5-turbo", "last_letter_concatenation", 350, 40, 80.6),
    ("mot:gpt-3.5-turbo-cot1", "date_understanding", 258, 20, 71.5),  # answers are dates
    ("mot:gpt-4-cot1", "date_understanding", 258, 3, 89.1),
    ("mcc-kd:gpt-3.5-turbo", "svamp", 493, 10, 67.5),
    ("plan-and-solve:text-davinci-003", "coin_flip", 348, 1, 100.0),
    ("faithful-cot:code-davinci-002-ltm", "date_understanding", 252, 40, 74.2),
    ("dss:palm-540b", "commonsense_qa", 9741, 1, 75.3),  # answers are choice texts
    (QWEN_D4, "multiarith", 420, 4, 93.75),  # results/teachers.csv
    ("recorded", "svamp", 700, 1, 61.71),  # results/tasks.csv
])
def test_sources_reproduce_the_published_coverage(coverage, source, task, questions, degree,
                                                 accuracy):
    found = row(coverage, source, task)
    assert (found.train_questions, found.max_D) == (questions, degree)
    assert found.train_accuracy == pytest.approx(accuracy, abs=0.1)


def test_no_test_question_enters_any_training_set(coverage):
    profile = get_profile("full")
    for found in coverage.itertuples():
        if found.train_questions == 0 or found.task not in TASKS:
            continue
        task = get_task(found.task)
        split = task.split_indices()
        test_only = ({question_key(task.samples()[i].question) for i in split["test"]}
                     - {question_key(task.samples()[i].question) for i in split["train"]})
        source = sources.get_source(found.source)
        taught = sources.completions(source, task, "train", int(found.max_D))
        assert {c.sample_index for c in taught} <= set(split["train"]), found.source
        assert not {question_key(c.question) for c in taught} & test_only, found.source
        if found.source == "recorded" or found.task == "commonsense_qa":
            continue  # the next check trains from sources through a profile
        samples = train_samples(get_profile("full", tasks=[found.task], teacher=found.source,
                                            degree=int(found.max_D)), task, "fine_tune_cot")
        assert {s.sample_index for s in samples} <= set(split["train"]) and samples
        assert not {question_key(s.prompt.removesuffix(" ###")) for s in samples} & test_only
    assert profile.teacher == "recorded"


def test_degree_takes_the_first_d_completions_of_each_question():
    task, source = get_task("last_letter_concatenation"), sources.get_source("esc:gpt-3.5-turbo")
    two = sources.completions(source, task, "train", 2)
    assert len(two) == 2 * 350 and {c.completion_index for c in two} == {0, 1}
    forty = sources.completions(source, task, "train", 40)
    assert [c.rationale for c in forty if c.completion_index < 2] == [c.rationale for c in two]


def test_choice_answers_given_as_dates_map_to_our_letters():
    task = get_task("date_understanding")
    first = sources.completions(sources.get_source("mot:gpt-4-greedy"), task, "train", 1)[0]
    sample = task.samples()[first.sample_index]
    assert first.prediction in task.letters
    assert sample.choices[ord(first.prediction) - ord("A")] == sources._normal_choice(first.answer_text)


def test_distinct_drops_exact_duplicate_rationales_of_a_question():
    task = get_task("coin_flip")
    base = sources.completions(sources.RECORDED, task, "train")[:5]
    doubled = base + [Completion(**{**vars(c), "completion_index": 1}) for c in base]
    indices = [c.sample_index for c in base]
    assert len(curate(task, doubled, indices)) == 2 * len(curate(task, base, indices))
    assert len(curate(task, doubled, indices, distinct=True)) == len(curate(task, base, indices))


def test_recorded_d1_cells_keep_their_hash_and_other_teachers_get_their_own():
    default = get_profile("default", task_vocab=False)
    # the hashes of the cells made before teacher sources existed (results/, runs of make demo)
    assert run_dir(default, "coin_flip", "fine_tune_cot").name == "fine_tune_cot-56b8ca82"
    esc = get_profile("default", tasks=["last_letter_concatenation"], teacher="esc:gpt-3.5-turbo",
                      degree=4)
    names = {run_dir(p, "last_letter_concatenation", "fine_tune_cot").name
             for p in (default, esc, get_profile("default", teacher="recorded", distinct=True))}
    assert len(names) == 3
    for method in ("vanilla", "zero_shot"):  # the teacher changes only Fine-tune-CoT
        assert (run_dir(default, "last_letter_concatenation", method) ==
                run_dir(esc, "last_letter_concatenation", method))


@pytest.mark.parametrize("spec, task, degree", [
    ("esc:gpt-3.5-turbo", "last_letter_concatenation", 2),
    ("mot:gpt-3.5-turbo-cot1", "date_understanding", 2),
    ("mcc-kd:gpt-3.5-turbo", "svamp", 2),
    (QWEN_D4, "multiarith", 4),
])
def test_a_student_trains_from_each_teacher_source(runs, spec, task, degree):
    profile = get_profile("smoke", tasks=[task], teacher=spec, degree=degree)
    metrics = run(profile, task, "fine_tune_cot", log=lambda message: None)
    assert metrics["teacher"] == spec and metrics["degree"] == degree and metrics["n"] == 6
    assert metrics["train_samples"] > 0
    config = json.loads((run_dir(profile, task, "fine_tune_cot") / "config.json").read_text())
    assert config["teacher"] == spec and config["degree"] == degree


def test_records_matching_no_question_are_counted_and_reported(tmp_path, runs):
    task = get_task("coin_flip")
    records = sources.completions(sources.RECORDED, task, "train")[:20]
    stray = Completion(**{**vars(records[0]), "sample_index": 99999,
                          "question": "A question nobody asked. Is the coin still heads up?"})
    path = tmp_path / "coin.completion_dataset.json"
    export_completion_dataset(records + [stray], path, "teacher-x")
    spec = f"completion-dataset:{path}"
    logged = []
    metrics = run(get_profile("smoke", tasks=["coin_flip"], teacher=spec), "coin_flip",
                  "fine_tune_cot", log=logged.append)
    assert (metrics["source_records"], metrics["source_unmatched"]) == (21, 1)
    assert any("1 of 21 records match no question" in line for line in logged)
    assert sources.coverage(sources.get_source(spec), task)["unmatched"] == 1


@pytest.mark.parametrize("args, message", [
    (["--teacher", "nope"], "unknown teacher source 'nope'"),
    (["--teacher", "esc:gpt-3.5-turbo", "--D", "0"], "parameter degree=0: expected a positive int"),
    (["--teacher", "esc:gpt-3.5-turbo", "--D", "41"], "at most D=40 completions"),
    (["--teacher", "mot:gpt-4-greedy", "--D", "1"], "has no completions for task "
                                                      "last_letter_concatenation"),
])
def test_bad_teacher_input_is_one_line_and_leaves_no_run(tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, "-m", "cotlib", "run", "--profile", "smoke", "--tasks",
         "last_letter_concatenation", "--methods", "fine_tune_cot", *args],
        capture_output=True, text=True, cwd=PROJECT,
        env={"COTLIB_RUNS": str(tmp_path / "runs"), "PATH": "/usr/bin"})
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_sources_command_lists_every_source():
    result = subprocess.run([sys.executable, "-m", "cotlib", "sources", "--task", "svamp"],
                            capture_output=True, text=True, cwd=PROJECT, check=True)
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["source", "task", "teacher", "T", "train_questions"]
    mcc = next(line.split() for line in lines if line.split()[0] == "mcc-kd:gpt-3.5-turbo")
    assert mcc[4:7] == ["493", "700", "10"] and mcc[7] == "67.5"


def test_answer_parsing_of_published_formats():
    assert split_final("7 + 2 = 9. The answer is 9.") == ("7 + 2 = 9.", "9")
    assert split_final("... is 05/01/2021. So the answer is 05/01/2021.\n\n") == (
        "... is 05/01/2021.", "05/01/2021")
    assert split_final("Yes, frost is common.") == ("Yes, frost is common.", "")
    assert _evaluate("(84 / 2)") == "42" and _evaluate("( 3.0 - 1.5 ) * 2") == "3"
    assert _evaluate("__import__('os')") == ""


def test_a_run_in_results_and_in_runs_reads_each_task_where_it_is(runs, monkeypatch, tmp_path):
    # the committed greedy Qwen run has five tasks; a task file's run of the same teacher and
    # parameters lands under runs/teachers and must not be hidden by the committed folder
    from cotlib.store import export_jsonl
    from test_task_files import write_task
    monkeypatch.setenv("COTLIB_TASKS", str(tmp_path / "tasks"))
    write_task(tmp_path / "tasks")
    task = get_task("sums")
    spec = "run:qwen2.5-coder-1.5b/zs_cot_T0_max256_ans32_seed0"
    sample = task.split("train")[0]
    export_jsonl([Completion("qwen2.5-coder-1.5b", "zs_cot_T0_max256_ans32_seed0", "sums",
                             "default/train", sample.sample_index, 0, sample.question,
                             sample.answer, rationale="Adding.", answer_text=sample.answer,
                             prediction=sample.answer, correct=True)],
                 runs / "teachers" / spec.removeprefix("run:") / "sums__default__train.jsonl.gz")
    source = sources.get_source(spec)
    assert {"multiarith", "svamp", "sums"} <= set(source.tasks)
    assert [c.sample_index for c in sources.completions(source, task)] == [sample.sample_index]
    assert len(sources.completions(source, get_task("multiarith"))) == 100  # still the committed
