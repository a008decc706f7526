import copy
import json
import re
import subprocess

import nbformat
import pandas as pd
import papermill
import papermill.parameterize
import pytest

from cotlib import paper, plots, results
from cotlib.cli import main
from cotlib.data import CotlibError, runs_root
from cotlib.environment import versions
from conftest import PROJECT


def execute(name, tmp_path, **parameters):
    """Run a copy of a notebook headless; artefacts go to tmp_path, never into the repo."""
    output = tmp_path / name
    papermill.execute_notebook(PROJECT / "notebooks" / name, output, cwd=PROJECT / "notebooks",
                               parameters={"figures_dir": str(tmp_path / "figures"),
                                           "results_dir": str(tmp_path / "results"), **parameters},
                               progress_bar=False, kernel_name="python3")
    return json.loads(output.read_text())


def test_committed_notebooks_hold_outputs_and_no_absolute_paths():
    for path in (PROJECT / "notebooks").glob("*.ipynb"):
        text = path.read_text()
        for marker in (f"/{top}/" for top in ("work", "root", "home", "tmp")):  # absolute paths
            assert marker not in text, (path.name, marker)
        code = [c for c in json.loads(text)["cells"] if c["cell_type"] == "code"]
        assert any(c["outputs"] for c in code), f"{path.name} carries no outputs of a real run"


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("COTLIB_RUNS", str(tmp_path / "runs"))  # inherited by the kernel
    return tmp_path / "runs"


def test_the_paper_as_one_batch_on_the_smoke_profile(runs):
    """`python -m cotlib paper --profile smoke`: every notebook in order, copies and artefacts
    under runs/notebooks/smoke/ (one task, to keep it CI-able)."""
    lines = []
    paper.run(paper.plan("smoke", overrides={"tasks": ["coin_flip"]}), log=lines.append)
    out = runs / "notebooks/smoke"
    names = [p.name for p in paper.notebooks()]
    assert names[:5] == ["00_data.ipynb", "01_rationale_generation.ipynb", "02_curation.ipynb",
                         "03_fine_tuning.ipynb", "04_main_results.ipynb"]
    assert lines == [f"{name} -> {out / name}" for name in names]
    for name in names:
        nb = json.loads((out / name).read_text())
        assert not [c for c in nb["cells"] if any(o.get("output_type") == "error"
                                                  for o in c.get("outputs", []))], name
    assert not list(out.glob(".*partial*")) and not list(out.glob("*.failed.ipynb"))
    table = (out / "results/tasks.csv").read_text().splitlines()
    assert len(table) == 13 and table[0].startswith("task,type,train,test")
    curation = (out / "results/curation_smoke.csv").read_text().splitlines()
    assert curation[0].startswith("task,completions,kept") and curation[1].startswith("coin_flip,")
    table = (out / "results/main_smoke.csv").read_text()
    assert "Fine-tune-CoT," in table and "paper: Fine-tune-CoT GPT-3 0.3B,99.33" in table
    assert "Fine-tune-CoT 95% low," in table and "Fine-tune 95% high," in table
    for figure in ("rationale_length", "teacher_accuracy", "teacher_diverse", "main_smoke",
                   "training_loss_smoke", "task_vocabulary_smoke"):  # 06: the Coin Flip cells
        for suffix in (".png", ".pdf"):
            assert (out / "figures" / (figure + suffix)).stat().st_size > 5_000, figure + suffix
    assert (out / "figures/rationale_length.png").stat().st_size > 10_000
    assert len(list(runs.glob("coin_flip/*/metrics.json"))) == 6  # 5 methods, 06's other head
    config = json.loads(next(runs.glob("coin_flip/fine_tune_cot-*/config.json")).read_text())
    assert config["versions"] == versions() and config["versions"]["torch"]  # what it ran on
    # the table was saved with its evidence: it rebuilds from its predictions alone
    assert results.check(out / "results")["main_smoke.csv"] == "rebuilt exactly"


def test_paper_names_the_failing_notebook_and_cell_and_skips_the_rest(runs):
    lines = []
    steps = paper.plan("smoke", ["02", "03", "04"], overrides={"tasks": ["coin_flip"]})
    steps[0].parameters["train_limit"] = 0  # passes papermill, fails the notebook's first call
    with pytest.raises(CotlibError, match=r"^02_curation.ipynb failed in cell \[\d+\]: CotlibError: "
                                          r"parameter train_limit=0: expected a positive int"):
        paper.run(steps, log=lines.append)
    assert lines[-1] == "skipped: 03_fine_tuning, 04_main_results (after the failure in 02_curation)"
    out = runs / "notebooks/smoke"
    assert [p.name for p in out.glob("*.ipynb")] == ["02_curation.failed.ipynb"]
    assert not list(out.glob(".*"))


def test_paper_in_place_writes_over_the_committed_notebooks_with_their_own_folders(runs):
    steps = paper.plan("full", ["00", "04_main_results"], in_place=True)
    assert [s.output for s in steps] == [s.notebook for s in steps]
    assert steps[0].parameters == {}  # 00 has no profile knobs, and keeps ../figures
    assert steps[1].parameters == {"profile": "full", **{k: None for k in paper.PROFILE_KNOBS}}
    assert steps[1].failed == runs / "notebooks/full/04_main_results.failed.ipynb"


@pytest.mark.parametrize("args, message", [
    (["--profile", "huge"], "unknown profile 'huge'; choose from smoke, default, full"),
    (["--profile", "smoke", "--notebooks", "99_nothing"], "unknown notebook '99_nothing'"),
    (["--profile", "smoke", "-p", "epochs", "'two'"], "parameter epochs='two': expected a positive int"),
    (["--profile", "smoke", "-p", "limit", "many"], "parameter limit='many': expected int, like its default 100"),
    (["--profile", "smoke", "-p", "cells", "4"], "parameter cells=4: expected list"),
    (["--profile", "smoke", "-p", "colour", "red"], "parameter colour: declared by none of"),
    (["--profile", "smoke", "-p", "profile", "full"], "parameter profile: give it as --profile"),
])
def test_paper_bad_input_is_one_line_and_writes_nothing(runs, capsys, args, message):
    assert main(["paper", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not runs.exists()


def test_05_on_the_smoke_profile(tmp_path, runs):
    qwen = "run:qwen2.5-coder-1.5b/zs_cot_T0.7_max256_ans32_seed0"
    nb = execute("05_diverse_reasoning.ipynb", tmp_path, profile="smoke", train_limit=8,
                 diverse_tasks=["multiarith"], degrees=[1, 2], budgets=["epochs", "steps"],
                 teacher_tasks=["multiarith"], teachers=["recorded", "faithful-cot:gpt-4", qwen])
    assert not [c for c in nb["cells"] if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    diverse = pd.read_csv(tmp_path / "results/diverse_reasoning_smoke.csv")
    assert list(zip(diverse.budget, diverse.D)) == [("epochs", 1), ("epochs", 2), ("steps", 1), ("steps", 2)]
    epochs, steps = diverse[diverse.budget == "epochs"], diverse[diverse.budget == "steps"]
    assert epochs.train_samples.iloc[1] > epochs.train_samples.iloc[0]  # D=2: more samples
    assert steps.optimizer_steps.nunique() == 1 and epochs.optimizer_steps.iloc[1] > steps.optimizer_steps.iloc[1]
    assert diverse.accuracy.notna().all() and (diverse.paper_diverse == 23.89).all()
    assert diverse.recorded_D1_accuracy.notna().all() and diverse.vanilla_accuracy.notna().all()
    teacher = pd.read_csv(tmp_path / "results/teacher_study_smoke.csv")
    assert list(teacher.teacher) == ["recorded", "faithful-cot:gpt-4", qwen]
    assert list(teacher.paper_teacher) == [True, False, False]
    assert teacher.teacher_train_accuracy.round(2).tolist() == [79.05, 94.0, 93.1]
    # D=1 of the diverse study and the recorded reference are the teacher study's cells, reused
    assert teacher.cell.iloc[2] == diverse.cell.iloc[0] and len(list(runs.glob("multiarith/*/metrics.json"))) == 6
    for name in ("diverse_reasoning_smoke", "teacher_study_smoke"):
        assert (tmp_path / f"figures/{name}.png").stat().st_size > 10_000
        assert (tmp_path / f"figures/{name}.pdf").exists()
    assert_redrawn_from_results(tmp_path, [plots.figure_diverse_reasoning, plots.figure_teacher_study],
                                ["diverse_reasoning_smoke", "teacher_study_smoke"])


def assert_redrawn_from_results(tmp_path, draws, names):
    """`make figures` draws a notebook's figure again, byte for byte, from the tables it wrote."""
    for draw, name in zip(draws, names):
        plots.save(draw(tmp_path / "results", "smoke"), tmp_path / "redrawn", name)
        for suffix in (".png", ".pdf"):
            again = (tmp_path / "redrawn" / f"{name}{suffix}").read_bytes()
            assert again == (tmp_path / "figures" / f"{name}{suffix}").read_bytes(), name + suffix


def test_invalid_parameter_fails_with_one_clear_line_and_no_run(tmp_path, runs):
    with pytest.raises(papermill.PapermillExecutionError, match="epochs=0: expected a positive int"):
        execute("03_fine_tuning.ipynb", tmp_path, profile="smoke", epochs=0)
    assert not runs.exists()


PROFILE_KNOBS = {"profile": "default", "tasks": None, "student": None, "epochs": None,
                 "learning_rate": None, "train_limit": None, "test_limit": None}


def demo_commands() -> list[tuple[str, dict]]:
    """(notebook, parameters) of each papermill call `make demo` makes, from its dry run."""
    dry = subprocess.run(["make", "-n", "-o", "install", "-o", "gemma", "demo"], cwd=PROJECT,
                         capture_output=True, text=True, check=True).stdout
    command = re.search(r"-m cotlib paper (.*)", dry)[1].split()
    profile = command[command.index("--profile") + 1]
    chosen = command[command.index("--notebooks") + 1:]
    assert profile == "default" and "--in-place" not in command
    return [(s.notebook.name, s.parameters) for s in paper.plan(profile, chosen)]


def effective_parameters(notebook: dict, injected: dict) -> dict:
    """The values a notebook runs with once papermill has injected `injected`."""
    if injected:
        notebook = papermill.parameterize.parameterize_notebook(
            copy.deepcopy(notebook), injected, kernel_name="python3", language="python")
    scope: dict = {}
    for cell in notebook["cells"]:
        if {"parameters", "injected-parameters"} & set(cell["metadata"].get("tags", [])):
            exec("".join(cell["source"]), scope)
    return {k: scope.get(k, "<unset>") for k in PROFILE_KNOBS if k in scope}


def test_make_demo_runs_the_default_profile_whatever_a_notebook_last_ran_with():
    calls = demo_commands()
    assert [name for name, _ in calls] == ["00_data.ipynb", "02_curation.ipynb",
                                           "03_fine_tuning.ipynb", "04_main_results.ipynb"]
    for name, params in calls:
        notebook = nbformat.read(PROJECT / "notebooks" / name, as_version=4)
        effective = effective_parameters(notebook, params)
        assert effective == {k: PROFILE_KNOBS[k] for k in effective}, (name, effective)
    for name, params in calls:  # executed copies and artefacts stay out of git
        assert params["figures_dir"] == str(runs_root() / "notebooks/default/figures"), name
    # the check bites: a notebook last run on `full`, executed without the knobs, runs `full`
    last_full = nbformat.read(PROJECT / "notebooks/04_main_results.ipynb", as_version=4)
    last_full = papermill.parameterize.parameterize_notebook(
        last_full, {"profile": "full"}, kernel_name="python3", language="python")
    assert effective_parameters(last_full, {})["profile"] == "full"


def test_committed_notebooks_say_which_profile_made_their_outputs():
    for name in ("02_curation.ipynb", "03_fine_tuning.ipynb", "04_main_results.ipynb"):
        notebook = json.loads((PROJECT / "notebooks" / name).read_text())
        assert not [c for c in notebook["cells"]
                    if "injected-parameters" in c["metadata"].get("tags", [])], name
        ran_with = notebook["metadata"].get("papermill", {}).get("parameters", {})
        profile = ran_with.get("profile", effective_parameters(notebook, {})["profile"])
        printed = next(c for c in notebook["cells"] if "print(config.name" in "".join(c["source"]))
        first = "".join(printed["outputs"][0]["text"]).splitlines()[0]
        assert first == profile, (name, first, profile)


def test_07_sample_studies_on_a_smoke_cell(tmp_path, runs):
    from test_sample_studies import finished_cell  # a finished cell of real rationales, no training
    finished_cell("date_understanding", tasks=["date_understanding"])
    nb = execute("07_sample_studies.ipynb", tmp_path, profile="smoke", tasks=["date_understanding"],
                 cells=[{"task": "date_understanding", "degree": 2}],
                 labels_file=str(PROJECT / "results/error_labels.csv"), errors_per_task=5)
    assert not [c for c in nb["cells"] if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert (tmp_path / "figures/sample_lengths_smoke.png").stat().st_size > 10_000
    assert (tmp_path / "figures/sample_lengths_smoke.pdf").exists()
    assert_redrawn_from_results(tmp_path, [plots.figure_sample_lengths], ["sample_lengths_smoke"])
    assert not (tmp_path / "figures/error_categories_smoke.png").exists()  # nothing labelled
    with pytest.raises(CotlibError, match="error_counts_smoke.csv: no labelled wrong answers yet"):
        plots.figure_error_categories(tmp_path / "results", "smoke")
    sheet = (tmp_path / "results/error_label_sheet_smoke.csv").read_text().splitlines()
    assert sheet[0].startswith("task,run,sample_index,correct,output_sha,label,note")
    assert len(sheet) > 5 and (tmp_path / "results/sample_diversity_smoke.csv").exists()
    outputs = ["".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/markdown", ""))
               for c in nb["cells"] for o in c.get("outputs", [])]
    assert any("not run yet, left out" in o for o in outputs)  # the D=2 cell
    assert "No labelled wrong answers" in outputs[-1]  # the committed labels are other runs'


def test_an_executed_notebook_is_committed_without_injected_cells_or_absolute_paths(tmp_path):
    notebook = nbformat.read(PROJECT / "notebooks/06_ablations.ipynb", as_version=4)
    notebook.cells.insert(2, nbformat.v4.new_code_cell('profile = "full"', metadata={
        "tags": ["injected-parameters"]}))
    notebook.metadata["papermill"] = {"input_path": str(tmp_path / "06_ablations.ipynb"),
                                      "output_path": str(tmp_path / ".06.partial.ipynb")}
    executed = tmp_path / ".06.partial.ipynb"
    nbformat.write(notebook, executed)
    paper.as_committed(executed, "06_ablations.ipynb")
    text = executed.read_text()
    assert str(tmp_path) not in text and "injected-parameters" not in text
    assert json.loads(text)["metadata"]["papermill"]["input_path"] == "06_ablations.ipynb"
