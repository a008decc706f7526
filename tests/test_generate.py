"""Step 1 against a scripted OpenAI-compatible server and a tiny in-process model (fast)."""
import subprocess
import sys
import threading

import pytest

from cotlib.cli import main
from cotlib.data import CotlibError
from cotlib.store import Store
from cotlib.tasks import get_task
from cotlib.teachers import (RECORDED_TEACHER, Budget, GenerationParams, OpenAITeacher, accuracy,
                             busy_seconds, diversity, generate, make_teacher, recorded_completions,
                             run_file, run_tasks)
from conftest import PROJECT, written_text
from servers import FaultProxy, echo_key_server, free_port, scripted_teacher

KEY = "sk-test-DO-NOT-LEAK-7f3a9c"
SHOWN = get_task("multiarith")  # stage 1 of the scripted server sums the question's numbers


@pytest.fixture
def server():
    s = scripted_teacher()
    yield s
    s.close()


def teacher(url, monkeypatch, **options):
    monkeypatch.setenv("TEST_TEACHER_KEY", KEY)
    return OpenAITeacher("scripted", base_url=url, key_env="TEST_TEACHER_KEY",
                         timeout=2, backoff=0.01, **options)


def test_d3_on_a_server_that_ignores_n_uses_distinct_seeds(server, tmp_path, monkeypatch):
    t = teacher(server.url, monkeypatch, workers=2)
    store = Store(tmp_path / "s.jsonl")
    summary = generate(t, SHOWN, store, GenerationParams(degree=3, temperature=0.7),
                       limit=4, progress=False)
    records = store.load().records.values()
    assert summary.done_now == 12 and summary.failed == 0 and len(records) == 12
    assert t.n_supported is False  # detected, then one request per completion
    for sample in {r.sample_index for r in records}:
        rationales = {r.rationale for r in records if r.sample_index == sample}
        assert len(rationales) == 3
    assert all(r.reasoning_finish_reason == "stop" and r.prompt_tokens for r in records)
    assert summary.usage.tokens == 30 * (12 + 12)  # per question: an n=3 probe, 2 more, 3 answers
    assert all(0 < r.started <= r.finished for r in records)
    assert busy_seconds(list(records)) <= summary.seconds + 0.01  # 2 in flight count once


def test_busy_seconds_is_the_union_of_request_intervals():
    from cotlib.store import Completion
    make = lambda started, finished, seconds: Completion(
        "t", "p", "x", "s", 0, 0, "q", "a", seconds=seconds, started=started, finished=finished)
    records = [make(100, 110, 5), make(100, 110, 5), make(105, 120, 15), make(130, 131, 1),
               make(0, 0, 7)]  # the last: an older record without times counts its seconds
    assert busy_seconds(records) == 20 + 1 + 7


def test_diversity_counts_right_distinct_rationales_per_question():
    from cotlib.store import Completion
    make = lambda q, i, rationale, correct, status="ok": Completion(
        "t", "p", "multiarith", "s", q, i, "q", "a", rationale=rationale, correct=correct,
        status=status)
    sampled = [make(0, 0, "a", True), make(0, 1, "a", True), make(0, 2, "b", False),
               make(1, 0, "c", False), make(1, 1, "d", False), make(1, 2, "", False, "failed"),
               make(2, 0, "e", True), make(2, 1, "f", True), make(2, 2, "g", True)]
    greedy = [make(0, 0, "a", False), make(1, 0, "c", False), make(7, 0, "x", True)]
    row, per_question = diversity(sampled, greedy)
    assert per_question.to_dict("list") == {"right": [2, 0, 3], "distinct": [2, 2, 3],
                                            "kept": [1, 0, 3]}
    assert row["sample_accuracy"] == pytest.approx(100 * 5 / 8)
    assert row["any_right_%"] == pytest.approx(200 / 3)
    assert row["kept_per_question"] == pytest.approx(4 / 3)
    assert (row["questions_with_greedy"], row["greedy_accuracy_there"],
            row["any_right_there_%"]) == (2, 0.0, 50.0)


def test_rerun_asks_only_for_what_is_missing(server, tmp_path, monkeypatch):
    store = Store(tmp_path / "s.jsonl")
    params = GenerationParams(degree=2, temperature=1.0)
    first = generate(teacher(server.url, monkeypatch), SHOWN, store, params, limit=3, progress=False)
    posts = len(server.seen)
    again = generate(teacher(server.url, monkeypatch), SHOWN, store, params, limit=5, progress=False)
    assert first.done_now == 6 and again.done_before == 6 and again.done_now == 4
    assert len(server.seen) - posts == 2 * (1 + 1 + 2)  # 2 new questions: probe + 1 + 2 answers


def test_a_fresh_clone_resumes_from_the_committed_consolidated_file(server, tmp_path, monkeypatch):
    params = GenerationParams(degree=2, temperature=1.0)
    committed = tmp_path / "results"  # --out: committed; the store dir is machine-local
    run_tasks(teacher(server.url, monkeypatch), [SHOWN], params, tmp_path / "store_a",
              committed, limit=3, progress=False, report=lambda line: None)
    posts = len(server.seen)
    done = run_tasks(teacher(server.url, monkeypatch), [SHOWN], params, tmp_path / "store_b",
                     committed, limit=5, progress=False, report=lambda line: None)
    assert len(done[SHOWN.name]) == 10
    assert len(server.seen) - posts == 2 * (1 + 1 + 2)  # only the 2 new questions


def test_a_torn_store_line_is_reported_by_every_run_and_never_merged(tmp_path):
    task, said = get_task("coin_flip"), []
    first = run_tasks(None, [task], GenerationParams(), tmp_path, tmp_path, limit=5,
                      report=said.append)[task.name]
    store = next(tmp_path.rglob("*.store.jsonl"))
    with open(store, "a") as f:
        f.write('{"teacher": "text-davinci-002", "params": "zs_c')  # a crash mid-write
    again = run_tasks(None, [task], GenerationParams(), tmp_path, tmp_path, limit=6,
                      report=said.append)[task.name]
    third = run_tasks(None, [task], GenerationParams(), tmp_path, tmp_path, limit=6,
                      report=said.append)[task.name]
    assert again[:5] == first and len(again) == 6 and third == again
    warnings = [line for line in said if line.startswith("warning")]
    assert warnings == 2 * [f"warning: {store} line 6: skipped, Unterminated string starting at: "
                            "line 1 column 43 (char 42)"]


def test_faults_are_retried_and_counted(server, tmp_path, monkeypatch):
    proxy = FaultProxy(server.url, {1: 429, 2: 500, 3: "truncate", 4: "drop", 6: "stall"}, stall=4)
    t = teacher(proxy.url, monkeypatch, workers=1)
    store = Store(tmp_path / "s.jsonl")
    summary = generate(t, SHOWN, store, GenerationParams(), limit=3, progress=False)
    proxy.close()
    assert summary.done_now == 3 and summary.failed == 0
    assert t.usage.faults == {"429": 1, "500": 1, "malformed": 1, "connection": 1, "timeout": 1}
    assert t.usage.retries == 5
    records = store.load().records.values()
    assert [r.prediction for r in records] == ["109", "28", "6"]  # the scripted sums


def test_a_request_that_keeps_failing_is_recorded_and_the_run_goes_on(server, tmp_path, monkeypatch):
    question = SHOWN.split("train")[1].question
    proxy = FaultProxy(server.url, always=500, always_on=question[:30])
    t = teacher(proxy.url, monkeypatch, retries=2)
    store = Store(tmp_path / "s.jsonl")
    summary = generate(t, SHOWN, store, GenerationParams(), limit=3, progress=False)
    proxy.close()
    assert summary.done_now == 2 and summary.failed == 1 and t.usage.failures == 1
    failed = [r for r in store.load().records.values() if r.status == "failed"]
    assert failed[0].sample_index == SHOWN.split("train")[1].sample_index
    assert failed[0].error == "500, 3 attempts"


def test_budget_stops_cleanly(server, tmp_path, monkeypatch):
    t = teacher(server.url, monkeypatch, workers=1, price=(1000.0, 1000.0))  # $0.03 a call
    store = Store(tmp_path / "s.jsonl")
    summary = generate(t, SHOWN, store, GenerationParams(), limit=20,
                       budget=Budget(max_cost=0.25), progress=False)
    assert summary.stopped == "budget" and 3 <= summary.done_now <= 5
    assert len(store.load().records) == summary.done_now  # nothing half-written


def test_bad_input_fails_before_work(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    t = OpenAITeacher("m", base_url="http://127.0.0.1:9/v1", key_env="NO_SUCH_KEY")
    with pytest.raises(CotlibError, match="environment variable NO_SUCH_KEY is not set"):
        generate(t, SHOWN, Store(tmp_path / "s.jsonl"), limit=2, progress=False)
    t = teacher(f"http://127.0.0.1:{free_port()}/v1", monkeypatch)
    with pytest.raises(CotlibError, match="cannot reach the teacher endpoint http://127.0.0.1"):
        generate(t, SHOWN, Store(tmp_path / "s.jsonl"), limit=2, progress=False)
    assert not (tmp_path / "s.jsonl").exists() or not (tmp_path / "s.jsonl").read_text()
    for bad, message in [(dict(degree=0), "D=0 must be"), (dict(temperature=-0.1), "T=-0.1"),
                         (dict(degree=4), "diverse reasoning needs T > 0")]:
        with pytest.raises(CotlibError, match=message):
            GenerationParams(**bad)
    with pytest.raises(CotlibError, match="unknown teacher 'gpt'"):
        make_teacher("gpt")


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cotlib", *args], cwd=PROJECT,
                          capture_output=True, text=True, env=env)


def test_cli_generate_writes_no_key(server, tmp_path):
    env = {"PATH": "/usr/bin", "MY_KEY": KEY, "HOME": str(tmp_path)}
    done = run_cli("generate", "--teacher", "openai", "--model", "scripted", "--base-url",
                   server.url, "--api-key-env", "MY_KEY", "--task", "multiarith", "svamp",
                   "--limit", "3", "--D", "2", "--T", "0.7", "--store-dir", str(tmp_path / "runs"),
                   "--upstream-json", env=env)
    assert done.returncode == 0, done.stderr
    assert "multiarith: 6 completions" in done.stdout and "svamp: 6 completions" in done.stdout
    assert server.seen[0]["authorization"] == f"Bearer {KEY}"  # it was sent, and only sent
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) == 6  # store, consolidated, CompletionDataset for each task
    assert not [p for p in written if KEY in written_text(p)]
    assert KEY not in done.stdout + done.stderr


def test_cli_bad_input_is_one_line(tmp_path):
    for args, message in [(["--D", "0"], "D=0"), (["--T", "-1"], "T=-1"),
                          (["--teacher", "gpt"], "unknown teacher"),
                          (["--teacher", "openai", "--model", "m", "--api-key-env", "NONE_SET"],
                           "NONE_SET is not set")]:
        done = run_cli("generate", "--task", "multiarith", "--store-dir", str(tmp_path), *args,
                       env={"PATH": "/usr/bin", "HOME": str(tmp_path)})
        assert done.returncode == 1 and done.stderr.count("\n") == 1 and message in done.stderr
    done = run_cli("generate", "--task", "nosuch", env={"PATH": "/usr/bin"})
    assert done.returncode == 1 and "unknown task 'nosuch'" in done.stderr
    done = run_cli("serve", "--parallel", "4", env={"PATH": "/usr/bin", "HOME": str(tmp_path)})
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "llama-server" in done.stderr and "make llama-server" in done.stderr


def test_recorded_teacher_reproduces_the_task_table():
    import csv
    table = {row["task"]: row for row in csv.DictReader(open(PROJECT / "results/tasks.csv"))}
    for name in ["single_eq", "addsub", "multiarith", "svamp", "date_understanding",
                 "tracking_shuffled_objects", "last_letter_concatenation", "coin_flip",
                 "strategy_qa"]:
        records = recorded_completions(get_task(name))
        assert accuracy(records) == pytest.approx(float(table[name]["teacher_train"]), abs=0.01)
    with pytest.raises(CotlibError, match="D=4, T=0.7"):
        recorded_completions(get_task("multiarith"), GenerationParams(degree=4, temperature=0.7))


def run_notebook_01(tmp_path, **parameters):
    import json

    import papermill
    output = tmp_path / "01.ipynb"
    papermill.execute_notebook(
        PROJECT / "notebooks/01_rationale_generation.ipynb", output, cwd=PROJECT / "notebooks",
        progress_bar=False, kernel_name="python3", parameters=dict(
            results_dir=str(tmp_path / "results"), figures_dir=str(tmp_path / "figures"),
            **parameters))
    cells = json.loads(output.read_text())["cells"]
    assert not [c for c in cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))]


def test_notebook_01_runs_headless_with_the_recorded_teacher(tmp_path):
    run_notebook_01(tmp_path, teacher="recorded", tasks=["multiarith", "coin_flip"], limit=50,
                    max_tokens=128, generate_missing=True, store_dir=str(tmp_path / "store"),
                    runs_dir=str(tmp_path / "runs"))
    table = (tmp_path / "results/teachers.csv").read_text().splitlines()
    assert len(table) == 3 and table[0].startswith("teacher,params,task,questions")
    assert (tmp_path / "figures/teacher_accuracy.png").stat().st_size > 5_000


def test_notebook_01_rebuilds_the_committed_teacher_table_from_the_committed_completions(tmp_path):
    import pandas as pd
    run_notebook_01(tmp_path)  # the local teacher's greedy and D=4 runs in results/teacher_runs
    rebuilt = pd.read_csv(tmp_path / "results/teachers.csv")
    committed = pd.read_csv(PROJECT / "results/teachers.csv")
    committed = committed[committed.teacher == rebuilt.teacher[0]].reset_index(drop=True)
    assert set(rebuilt.params) == {"zs_cot_T0_max256_ans32_seed0", "zs_cot_T0.7_max256_ans32_seed0"}
    pd.testing.assert_frame_equal(rebuilt, committed[rebuilt.columns], check_dtype=False)
    assert (tmp_path / "figures/teacher_diverse.png").stat().st_size > 5_000


def test_a_refused_request_is_recorded_and_a_refused_run_stops(server, tmp_path, monkeypatch):
    question = SHOWN.split("train")[0].question
    proxy = FaultProxy(server.url, always=400, always_on=question[:30])
    summary = generate(teacher(proxy.url, monkeypatch), SHOWN, Store(tmp_path / "a.jsonl"),
                       limit=2, progress=False)
    assert (summary.done_now, summary.failed) == (1, 1)
    proxy.always, proxy.always_on = 404, ""
    with pytest.raises(CotlibError, match=r"refused the request \(404\)"):
        generate(teacher(proxy.url, monkeypatch), SHOWN, Store(tmp_path / "b.jsonl"), limit=2,
                 progress=False)
    proxy.close()


def test_chat_api_and_a_server_that_honours_n(tmp_path, monkeypatch):
    server = scripted_teacher(ignore_n=False)
    t = teacher(server.url, monkeypatch, api="chat")
    summary = generate(t, SHOWN, Store(tmp_path / "s.jsonl"),
                       GenerationParams(degree=3, temperature=0.7), limit=2, progress=False)
    server.close()
    assert summary.done_now == 6 and t.n_supported is True
    assert [len(r["messages"]) for r in server.seen] == [1] * 8  # 2 n=3 requests + 6 answers
    assert server.seen[0]["n"] == 3 and server.seen[0]["messages"][0]["content"].endswith(
        "A: Let's think step by step.")


def test_a_limit_below_one_is_an_error_and_writes_nothing(tmp_path, monkeypatch, capsys):
    for limit in (0, -1):  # [:0] wrote an empty file, [:-1] dropped the last question
        with pytest.raises(CotlibError, match=f"limit={limit}: expected at least 1 question"):
            run_tasks(None, [SHOWN], GenerationParams(), tmp_path / "runs", tmp_path / "runs",
                      limit=limit)
        with pytest.raises(CotlibError, match=f"limit={limit}: expected at least 1 question"):
            generate(teacher("http://127.0.0.1:9/v1", monkeypatch), SHOWN,
                     Store(tmp_path / "runs" / "s.jsonl"), limit=limit, progress=False)
        assert main(["generate", "--task", "multiarith", "--limit", str(limit),
                     "--store-dir", str(tmp_path / "runs")]) == 1
        assert capsys.readouterr().err == f"error: limit={limit}: expected at least 1 question\n"
    assert not (tmp_path / "runs").exists()


def test_a_failed_generate_leaves_no_folder(tmp_path, monkeypatch):
    unreachable = teacher(f"http://127.0.0.1:{free_port()}/v1", monkeypatch)
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    keyless = OpenAITeacher("m", base_url="http://127.0.0.1:9/v1", key_env="NO_SUCH_KEY")
    diverse = GenerationParams(degree=2, temperature=0.7)
    for live, tasks, params, where, message in [
            (None, ["coin_flip"], GenerationParams(), dict(split="template"), "no split 'template'"),
            (None, ["coin_flip"], GenerationParams(), dict(part="dev"), "has no part 'dev'"),
            (None, ["coin_flip", "aqua"], GenerationParams(), {}, "aqua train: AQuA's train.json"),
            (None, ["coin_flip"], diverse, {}, "the recorded teacher has one greedy"),
            (unreachable, ["multiarith"], GenerationParams(), {}, "cannot reach the teacher"),
            (keyless, ["multiarith"], GenerationParams(), {}, "NO_SUCH_KEY is not set")]:
        with pytest.raises(CotlibError, match=message):
            run_tasks(live, [get_task(t) for t in tasks], params, tmp_path / "runs",
                      tmp_path / "runs", limit=2, progress=False, report=lambda line: None, **where)
        assert not (tmp_path / "runs").exists(), message
    (tmp_path / "file").write_text("")
    with pytest.raises(CotlibError, match=r"store_dir=.*file: .*file is a file, not a directory"):
        run_tasks(None, [SHOWN], GenerationParams(), tmp_path / "file", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_generate_stores_under_cotlib_runs_wherever_it_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COTLIB_RUNS", str(tmp_path / "runs"))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["generate", "--task", "coin_flip", "--limit", "3"]) == 0
    assert "coin_flip: 3 completions" in capsys.readouterr().out
    assert len(list((tmp_path / "runs" / "teachers").rglob("*.store.jsonl"))) == 1
    assert not list((tmp_path / "elsewhere").iterdir())


def test_a_store_in_use_is_waited_for_with_one_line(tmp_path):
    task, params = get_task("coin_flip"), GenerationParams()
    store = run_file(tmp_path, RECORDED_TEACHER, params, task.name, "default", "train",
                     ".store.jsonl")
    store.parent.mkdir(parents=True)
    owner = subprocess.Popen(["sleep", "60"])  # another generate on the same store
    store.with_name(store.name + ".lock").write_text(str(owner.pid))
    threading.Timer(0.5, lambda: (owner.kill(), owner.wait())).start()  # it is killed
    said = []
    done = run_tasks(None, [task], params, tmp_path, tmp_path, limit=3, report=said.append)
    assert len(done[task.name]) == 3
    assert said[0] == f"{store} is in use by process {owner.pid}: waiting for it"
    assert not [line for line in said[1:] if "in use" in line]


@pytest.mark.parametrize("status", [400, 401])
def test_a_key_the_server_echoes_is_in_no_file_and_no_output(tmp_path, status):
    server = echo_key_server(status)  # 400: stored as failed records; 401: the run stops
    done = run_cli("generate", "--teacher", "openai", "--model", "m", "--base-url", server.url,
                   "--api-key-env", "MY_KEY", "--task", "multiarith", "--limit", "2",
                   "--store-dir", str(tmp_path / "runs"), "--no-progress",
                   env={"PATH": "/usr/bin", "MY_KEY": KEY, "HOME": str(tmp_path)})
    server.close()
    assert done.returncode == (0 if status == 400 else 1), done.stderr
    output = done.stdout + done.stderr
    written = "".join(written_text(p) for p in tmp_path.rglob("*") if p.is_file())
    assert "Authorization: Bearer ***" in (written if status == 400 else output)
    assert KEY not in written and KEY not in output
