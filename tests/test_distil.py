"""`python -m cotlib distil`: a task file through the whole method in one command, each step
reused when done; the student and the curated set usable elsewhere."""
import json
import subprocess
import sys

import pytest

from cotlib.cli import main
from servers import FaultProxy, free_port, scripted_teacher
from test_task_files import write_task

LOAD_AND_ANSWER = """
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
student, question = sys.argv[1], sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(student)
model = AutoModelForCausalLM.from_pretrained(student)
ids = tokenizer(question + " ###", return_tensors="pt", add_special_tokens=False).input_ids
if tokenizer.bos_token_id is not None:
    ids = torch.cat([torch.tensor([[tokenizer.bos_token_id]]), ids], dim=1)
output = model.generate(ids, max_new_tokens=16, do_sample=False)
print(tokenizer.decode(output[0, ids.shape[1]:], skip_special_tokens=True))
"""


def arithmetic_task(folder):
    records = [{"question": f"Tom has {a} apples and gets {b} more. How many apples does he have?",
                "answer": a + b} for a in range(1, 6) for b in range(1, 7)]
    return write_task(folder, "apples", records, {"answer_type": "number"})


def distil(capsys, task_file, out, *teacher):
    code = main(["distil", "--task-file", str(task_file), *teacher, "--profile", "smoke",
                 "--baselines", "vanilla,zero_shot", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    return printed.out


def check_distil_twice(capsys, tmp_path, task_file, teacher_args, posts):
    """Run distil twice; the second asks the teacher nothing (`posts()` unchanged) and trains
    nothing; then check what it exported."""
    out = tmp_path / "out"
    first = distil(capsys, task_file, out, *teacher_args)
    assert "fine_tune_cot: running" in first and posts() > 0
    asked = posts()
    cell = next((tmp_path / "runs" / "apples").glob("fine_tune_cot-*"))
    weights = (cell / "model" / "model.safetensors").stat().st_mtime_ns
    second = distil(capsys, task_file, out, *teacher_args)
    assert posts() == asked and "the teacher is not asked" in second
    for method in ("fine_tune_cot", "vanilla", "zero_shot"):
        assert f"{method}: finished, reused" in second
    assert (cell / "model" / "model.safetensors").stat().st_mtime_ns == weights
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"fine_tune_cot", "vanilla", "zero_shot"}
    assert all(0 <= r["ci_low"] <= r["accuracy"] <= r["ci_high"] <= 100 and r["n"] == 6
               for r in results.values())
    check_exports(out, results)
    return results


def check_exports(out, results):
    # the curated set: TRL's prompt/completion form, loaded by datasets
    from datasets import load_dataset
    curated = load_dataset("json", data_files=str(out / "train.jsonl"), split="train")
    assert curated.column_names == ["prompt", "completion"]
    assert len(curated) == results["fine_tune_cot"]["train_samples"] > 0
    assert all(p.endswith(" ###") for p in curated["prompt"])
    assert all(" --> " in c and c.endswith(" END") for c in curated["completion"])
    # the model card: task, teacher, D, recipe, accuracy with its interval, departures
    card = (out / "student" / "README.md").read_text()
    main_result = results["fine_tune_cot"]
    for text in ("| task | apples (number answers; 24 train, 6 test questions)",
                 f"| teacher | {main_result['teacher'].removeprefix('run:').split('/')[0]}",
                 "| D (rationales per question) | 1 |", "1 epoch(s), lr 0.0001, batch 4",
                 f"| Fine-tune-CoT | {main_result['accuracy']:.2f} | "
                 f"{main_result['ci_low']:.1f}–{main_result['ci_high']:.1f} | 6 |",
                 "## Departures from the paper", "(paper: text-davinci-002, 175B)"):
        assert text in card
    # the student loads with plain transformers in a fresh process and answers as it did here
    cell_predictions = out.parent / "runs" / "apples"
    stored = [json.loads(line) for line in next(cell_predictions.glob("fine_tune_cot-*"))
              .joinpath("predictions.jsonl").read_text().splitlines()]
    answer = subprocess.run([sys.executable, "-c", LOAD_AND_ANSWER, str(out / "student"),
                             stored[0]["question"]], capture_output=True, text=True, check=True)
    assert answer.stdout.split("END")[0].strip() == stored[0]["output"].split("END")[0].strip()
    assert answer.stdout.strip()


def test_distil_with_a_scripted_teacher(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COTLIB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("COTLIB_TASKS", "")  # --task-file adds to it; restored after the test
    monkeypatch.setenv("SCRIPTED_KEY", "none")
    server = scripted_teacher()
    try:
        results = check_distil_twice(capsys, tmp_path, arithmetic_task(tmp_path / "tasks"),
                                     ["--teacher", "openai", "--model", "scripted", "--base-url",
                                      server.url, "--api-key-env", "SCRIPTED_KEY"],
                                     lambda: len(server.seen))
    finally:
        server.close()
    assert len(server.seen) == 2 * 16  # two stages for the smoke profile's 16 train questions
    assert results["fine_tune_cot"]["train_samples"] == 16  # the scripted teacher adds right


def test_distil_refuses_what_it_cannot_run_before_writing(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COTLIB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("COTLIB_TASKS", "")
    task_file = arithmetic_task(tmp_path / "tasks")
    for baselines, message in [("few_shot_cot", "baseline few_shot_cot: task apples has no "
                                                "few-shot exemplars"),
                               ("vanila", "unknown baseline 'vanila'; choose from vanilla")]:
        assert main(["distil", "--task-file", str(task_file), "--teacher", "local",
                     "--baselines", baselines]) == 1
        error = capsys.readouterr().err
        assert error.startswith(f"error: {message}") and error.count("\n") == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_distil_with_the_local_llama_cpp_teacher(capsys, tmp_path, monkeypatch):
    """The real local teacher (llama.cpp serving SmolLM2-135M) and the tiny student."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: make test-slow")
    from cotlib.serve import start_server
    monkeypatch.setenv("COTLIB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("COTLIB_TASKS", "")
    server = start_server("smollm2-135m", port=free_port(), threads=2, n_ctx=1024)
    proxy = FaultProxy(server.base_url)  # counts the requests that reach the teacher
    try:
        check_distil_twice(capsys, tmp_path, arithmetic_task(tmp_path / "tasks"),
                           ["--teacher", "local", "--model", "smollm2-135m", "--base-url",
                            proxy.url, "--max-tokens", "48", "--answer-max-tokens", "8",
                            "--timeout", "600"], lambda: proxy.posts)
    finally:
        proxy.close()
        server.stop()
    assert proxy.posts >= 2 * 16
