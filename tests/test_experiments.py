import json
import math

import pytest

from cotlib.data import CotlibError
from cotlib.experiments import get_profile, run, run_dir, train_indices, train_samples
from cotlib.tables import main_table, paper_results
from cotlib.students import TrainConfig
from cotlib.tasks import get_task


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("COTLIB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_smoke_profile_runs_every_method_and_skips_finished_runs(runs):
    profile = get_profile("smoke", tasks=["coin_flip"])
    table = main_table(profile, log=lambda message: None)
    assert list(table.columns) == ["coin_flip"]
    assert {"Random", "Teacher (175B, recorded)", "Zero-shot", "Zero-shot-CoT", "Few-shot-CoT",
            "Fine-tune", "Fine-tune-CoT", "paper: Fine-tune-CoT GPT-3 0.3B"} <= set(table.index)
    assert table.loc["paper: Fine-tune-CoT GPT-3 0.3B", "coin_flip"] == 99.33
    assert table.loc["Teacher (175B, recorded)", "coin_flip"] == pytest.approx(91.33, abs=0.01)
    out = run_dir(profile, "coin_flip", "fine_tune_cot")
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 6 and {"question", "rationale", "predicted", "answer", "correct"} <= set(predictions[0])
    assert not (out / "checkpoint").exists()
    stamp = (out / "metrics.json").stat().st_mtime_ns
    assert run(profile, "coin_flip", "fine_tune_cot")["n"] == 6
    assert (out / "metrics.json").stat().st_mtime_ns == stamp  # loaded, not recomputed


def test_few_shot_cot_without_exemplars_is_left_blank_like_the_paper(runs):
    # the exemplar file has none for tracking_shuffled_objects; the paper reports "-" there
    profile = get_profile("smoke", tasks=["tracking_shuffled_objects"])
    table = main_table(profile, ("few_shot_cot",), log=lambda message: None)
    assert table.loc["Few-shot-CoT"].isna().all()
    assert not runs.exists()  # no student loaded, nothing written
    with pytest.raises(CotlibError, match="no exemplars for task tracking_shuffled_objects"):
        run(profile, "tracking_shuffled_objects", "few_shot_cot")
    assert not runs.exists()


def test_run_dir_is_named_from_the_config():
    a, b = get_profile("smoke"), get_profile("smoke", epochs=2)
    assert run_dir(a, "coin_flip", "vanilla") != run_dir(b, "coin_flip", "vanilla")
    assert run_dir(a, "coin_flip", "vanilla").parent.name == "coin_flip"
    # a baseline does not depend on training settings: both profiles share it
    assert run_dir(a, "coin_flip", "zero_shot") == run_dir(b, "coin_flip", "zero_shot")


def test_a_run_killed_during_evaluation_reuses_its_trained_student(runs):
    profile = get_profile("smoke", tasks=["coin_flip"])
    first = run(profile, "coin_flip", "vanilla")
    out = run_dir(profile, "coin_flip", "vanilla")
    assert (out / "model" / "train.json").is_file() and not (out / "checkpoint").exists()
    (out / "metrics.json").unlink()  # as if killed after training, before the metrics
    logged = []
    again = run(profile, "coin_flip", "vanilla", log=logged.append)
    assert not logged  # no training step ran
    assert again["accuracy"] == first["accuracy"] and again["losses"] == first["losses"]


def test_tasks_without_train_rationales_are_refused(runs):
    profile = get_profile("smoke", tasks=["gsm8k"])
    with pytest.raises(CotlibError, match="recorded has no rationales on the train questions of gsm8k"):
        run(profile, "gsm8k", "fine_tune_cot")
    for method in ("fine_tune_cot", "vanilla"):  # AQuA's train set is not in the data mirror
        with pytest.raises(CotlibError, match="aqua train: AQuA's train.json .* is not in the data mirror"):
            run(profile, "aqua", method)
    assert not runs.exists()


def test_bad_student_and_parameters_leave_no_run_directory(runs):
    with pytest.raises(CotlibError, match="student 'nope' cannot be loaded"):
        run(get_profile("smoke", student="nope"), "coin_flip", "zero_shot")
    assert not runs.exists()
    with pytest.raises(CotlibError, match="unknown profile 'fast'"):
        get_profile("fast")
    with pytest.raises(CotlibError, match="epochs=-1"):
        get_profile("smoke", epochs=-1)
    with pytest.raises(CotlibError, match="tasks='coin_flip'"):
        get_profile("smoke", tasks="coin_flip")
    with pytest.raises(CotlibError, match="unknown task 'coinflip'"):
        get_profile("smoke", tasks=["coinflip"])


def test_zero_curated_samples_is_an_error(runs):
    profile = get_profile("smoke", train_limit=1)
    task = get_task("coin_flip")  # the teacher got its first train question wrong
    assert train_samples(profile, task, "fine_tune_cot") == []
    with pytest.raises(CotlibError, match="zero curated samples"):
        run(profile, task.name, "fine_tune_cot")
    assert not runs.exists()


def test_paper_results_are_typed_in_with_their_source():
    paper = paper_results()
    assert paper.loc[("GPT-3", "Fine-tune-CoT", "0.3B"), "last_letter_concatenation"] == 50.67
    assert paper.loc[("T5", "Fine-tune-CoT", "60M"), "date_understanding"] == 77.48
    assert len(paper) == 68 and paper.isna().any().any()  # '-' (not reported) is missing


def test_validation_slice_is_held_out_from_training(runs):
    profile = get_profile("smoke", tasks=["coin_flip"], train_limit=24, validation_size=6)
    task = get_task("coin_flip")
    training, validation = train_indices(profile, task)
    assert len(validation) == 6 and not set(training) & set(validation)
    assert not {s.sample_index for s in train_samples(profile, task, "vanilla")} & set(validation)
    assert set(validation) <= set(task.split_indices()["train"])
    metrics = run(profile, "coin_flip", "vanilla", log=lambda message: None)
    assert metrics["validation"]["n"] == 6 and metrics["n"] == 6
    assert run_dir(profile, "coin_flip", "vanilla") != run_dir(
        get_profile("smoke", tasks=["coin_flip"], train_limit=24), "coin_flip", "vanilla")


def test_non_finite_settings_are_refused_before_anything_runs(runs):
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(CotlibError, match=f"learning_rate={value}: expected a positive finite"):
            get_profile("smoke", learning_rate=value)
    with pytest.raises(CotlibError, match="TrainConfig learning_rate=nan"):
        TrainConfig(learning_rate=math.nan)
    with pytest.raises(CotlibError, match="TrainConfig warmup_ratio=inf"):
        TrainConfig(warmup_ratio=math.inf)
    assert not runs.exists()


def test_a_diverged_training_is_an_error_and_no_finished_cell(runs):
    profile = get_profile("smoke", tasks=["coin_flip"], learning_rate=1e30)
    with pytest.raises(CotlibError, match=r"training diverged: loss (nan|inf) at step \d"):
        run(profile, "coin_flip", "vanilla", log=lambda message: None)
    out = run_dir(profile, "coin_flip", "vanilla")
    assert not (out / "metrics.json").exists() and not (out / "model").exists()
    assert not list(runs.rglob("*.lock"))


def test_a_validation_slice_leaving_no_train_questions_says_so(runs):
    profile = get_profile("smoke", tasks=["coin_flip"], validation_size=16)
    for method in ("fine_tune_cot", "vanilla"):
        with pytest.raises(CotlibError, match="validation_size=16 holds out all 16 train questions "
                                              "of coin_flip .*leaves no train questions"):
            run(profile, "coin_flip", method)
    assert not runs.exists()


def test_cotlib_runs_naming_a_file_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "runs").write_text("not a folder")
    monkeypatch.setenv("COTLIB_RUNS", str(tmp_path / "runs"))
    with pytest.raises(CotlibError, match=r"COTLIB_RUNS=.*runs is a file, not a directory"):
        run(get_profile("smoke"), "coin_flip", "zero_shot")


def test_recipe_table_chooses_on_validation_and_never_on_test(runs):
    from cotlib.experiments import recipe_profile
    from cotlib.tables import recipe_summary, recipe_table
    profile = get_profile("smoke")
    recipes = {"a": dict(learning_rate=1e-4, schedule="linear", epochs=2),
               "b": dict(learning_rate=3e-4, schedule="constant", epochs=3)}
    curves = {("coin_flip", "a"): [(50, 99), (60, 10)], ("coin_flip", "b"): [(40, 100), (55, 100), (58, 100)],
              ("multiarith", "a"): [(10, 0), (20, 0)], ("multiarith", "b"): [(30, 90), (30, 95), (25, 99)]}
    for (task, name), curve in curves.items():
        out = run_dir(recipe_profile(profile, recipes[name]), task, "fine_tune_cot")
        out.mkdir(parents=True)
        epochs = [{"epoch": i + 1, "validation": v, "test": t} for i, (v, t) in enumerate(curve)]
        (out / "metrics.json").write_text(json.dumps({"epochs": epochs}))
    table = recipe_table(profile, recipes)
    chosen = table[table.chosen].set_index("task")
    assert chosen.loc["coin_flip", ["recipe", "epoch"]].tolist() == ["a", 2]  # test favours b
    assert chosen.loc["multiarith", ["recipe", "epoch"]].tolist() == ["b", 1]  # earliest of ties
    # mean best validation: a (60 + 20) / 2 = 40, b (58 + 30) / 2 = 44
    assert set(table[table.profile_choice].recipe) == {"b"}
    # a task only one recipe has finished (a at 100 on addsub) does not weigh in the comparison
    wider = get_profile("smoke", tasks=["coin_flip", "multiarith", "addsub"])
    out = run_dir(recipe_profile(wider, recipes["a"]), "addsub", "fine_tune_cot")
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps({"epochs": [{"epoch": 1, "validation": 100}]}))
    partial = recipe_table(wider, recipes)
    assert set(partial[partial.profile_choice].recipe) == {"b"} and len(partial) == 11
    assert len(table) == 10 and table.test_paper_protocol.max() == 100
    summary = recipe_summary(table).set_index(["task", "recipe"])
    assert summary.loc[("coin_flip", "a"), ["epoch_by_validation", "test",
                                            "epoch_by_test (paper's protocol)",
                                            "test (paper's protocol)", "chosen"]].tolist() == [
        2, 10, 1, 99, True]  # validation picks epoch 2 (test 10); the paper's protocol reads 99
    assert summary.loc[("multiarith", "b"), ["epoch_by_validation", "test"]].tolist() == [1, 90]


def test_consistent_choices_is_hashed_only_when_on():
    from cotlib.tables import row_name
    default = get_profile("default")
    # the committed default cells keep their folders while the switch is off
    assert run_dir(default, "coin_flip", "fine_tune_cot").name == "fine_tune_cot-0ce353a9"
    full_head = get_profile("default", task_vocab=False)  # before the task vocabulary
    assert run_dir(full_head, "coin_flip", "fine_tune_cot").name == "fine_tune_cot-56b8ca82"
    assert run_dir(default, "coin_flip", "vanilla").name == "vanilla-56b8ca82"
    assert run_dir(default, "coin_flip", "zero_shot").name == "zero_shot-4e0e82b9"
    off = get_profile("default", consistent_choices=False)
    assert run_dir(off, "date_understanding", "fine_tune_cot").name == "fine_tune_cot-0ce353a9"
    on = get_profile("default", consistent_choices=True)
    assert run_dir(on, "date_understanding", "fine_tune_cot") != run_dir(
        default, "date_understanding", "fine_tune_cot")
    assert run_dir(on, "date_understanding", "vanilla") == run_dir(
        default, "date_understanding", "vanilla")
    assert "concludes another choice" in on.notes and "concludes" not in default.notes
    assert row_name(on, "fine_tune_cot") == "Fine-tune-CoT, consistent choices"
    curated = train_samples(on, get_task("date_understanding"), "fine_tune_cot")
    assert len(curated) == len(train_samples(default, get_task("date_understanding"),
                                             "fine_tune_cot")) - 27


def test_seed_table_reports_each_seed_and_the_spread(runs):
    from cotlib.experiments import with_settings
    from cotlib.tables import seed_table
    profile = get_profile("smoke")
    for seed, accuracy in [(0, 50.0), (1, 70.0)]:
        out = run_dir(with_settings(profile, {"seed": seed}), "coin_flip", "fine_tune_cot")
        out.mkdir(parents=True)
        (out / "metrics.json").write_text(json.dumps(
            {"accuracy": accuracy, "ci_low": accuracy - 5, "ci_high": accuracy + 5}))
    table = seed_table(profile, seeds=(0, 1, 2)).set_index("task")
    assert table.loc["coin_flip", "seeds"] == 2 and table.loc["multiarith", "seeds"] == 0
    assert table.loc["coin_flip", "mean"] == 60.0
    assert table.loc["coin_flip", "spread"] == pytest.approx(14.142, abs=1e-3)
    assert table.loc["coin_flip", "seed 1 ci_low"] == 65.0
    assert math.isnan(table.loc["coin_flip", "seed 2 accuracy"])


def test_answer_format_is_chosen_on_validation_from_the_committed_cells(runs):
    """The committed answer-format cells (default profile, full head): per task, the format
    with the better validation accuracy is marked, whatever test says."""
    from cotlib import results
    from cotlib.tables import cells_table
    recipe = results.read_recipe(results.RESULTS, "answer_format_default.csv")
    for cell in recipe["cells"]:
        results.restore_cell(results.cell_path(results.RESULTS, cell), runs)
    cells = [c for c in recipe["args"]["cells"] if "teacher" not in c]  # the recorded teacher
    table = cells_table(results.profile_from(recipe["profile"]), cells, choose="answer_format")
    chosen = table[table.chosen_on_validation].set_index("task")
    assert chosen.answer_format.to_dict() == {"last_letter_concatenation": "copyable",
                                              "date_understanding": "copyable",
                                              "tracking_shuffled_objects": "paper"}
    # Date: copyable wins on validation (25.0 against 20.0) though both score 13.51 on test
    date = table[table.task == "date_understanding"].set_index("answer_format")
    assert date.validation.tolist() == [20.0, 25.0] and date.accuracy.nunique() == 1


def test_the_full_profile_trains_the_recipe_validation_chose():
    """Code and results cannot drift: the full profile's recipe is the committed search's
    `profile_choice`, trained with the best epoch on validation kept."""
    import pandas as pd
    from cotlib.experiments import FULL_RECIPE, RECIPES
    from conftest import PROJECT
    search = pd.read_csv(PROJECT / "results" / "recipe_search.csv")
    assert set(search[search.profile_choice].recipe) == {FULL_RECIPE}
    train = get_profile("full").train
    assert {k: getattr(train, k) for k in RECIPES[FULL_RECIPE]} == RECIPES[FULL_RECIPE]
    assert train.keep == "best" and get_profile("default").train.keep == "last"
    assert FULL_RECIPE in get_profile("full").notes


def test_a_test_curve_changes_no_training_so_recipe_search_and_main_table_share_the_cell(runs):
    import shutil
    with pytest.raises(CotlibError, match="keep='best' chooses the epoch on validation"):
        run(get_profile("smoke", tasks=["coin_flip"], keep="best"), "coin_flip", "fine_tune_cot")
    base = get_profile("smoke", tasks=["coin_flip"], epochs=2, keep="best", validation_size=4)
    curve = get_profile("smoke", tasks=["coin_flip"], epochs=2, keep="best", validation_size=4,
                        test_every_epoch=True)
    out = run_dir(base, "coin_flip", "fine_tune_cot")
    assert run_dir(curve, "coin_flip", "fine_tune_cot") == out
    with_curve = run(curve, "coin_flip", "fine_tune_cot")
    assert [set(e) for e in with_curve["epochs"]] == [{"epoch", "step", "validation", "test"}] * 2
    assert run(base, "coin_flip", "fine_tune_cot") == with_curve  # reused, not trained again
    predictions = (out / "predictions.jsonl").read_text()
    shutil.rmtree(out)
    without = run(base, "coin_flip", "fine_tune_cot")  # trained again, no test curve
    assert without["losses"] == with_curve["losses"]
    assert (out / "predictions.jsonl").read_text() == predictions
    with pytest.raises(CotlibError, match=r"fine_tune_cot-\w+: finished without the per-epoch "
                                          r"test curve"):
        run(curve, "coin_flip", "fine_tune_cot")
