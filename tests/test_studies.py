import json
import math
import os

import pandas as pd
import pytest

from cotlib import cli, results
from cotlib.data import CotlibError
from cotlib.experiments import get_profile, run, run_dir
from cotlib.studies import (QWEN_T07, budgeted, diverse_summary, diverse_table, planned_steps,
                            rank_correlation, rationale_reading, seconds_to_run, teacher_table)
from cotlib.tasks import get_task

QUIET = {"log": lambda message: None}


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("COTLIB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_budget_rule_fixed_epochs_or_the_steps_of_d1(runs):
    smoke = get_profile("smoke")
    epochs = {d: budgeted(smoke, "multiarith", QWEN_T07, d, "epochs") for d in (1, 2, 4)}
    steps = {d: budgeted(smoke, "multiarith", QWEN_T07, d, "steps") for d in (1, 2, 4)}
    assert all(p.train.max_steps is None and p.degree == d for d, p in epochs.items())
    assert steps[1] == epochs[1]  # nothing to cut: the very same cell
    assert run_dir(steps[1], "multiarith", "fine_tune_cot") == run_dir(epochs[1], "multiarith", "fine_tune_cot")
    assert steps[2].train.max_steps == steps[4].train.max_steps == 4  # 15 samples, batch 4
    assert run_dir(steps[4], "multiarith", "fine_tune_cot") != run_dir(epochs[4], "multiarith", "fine_tune_cot")
    with pytest.raises(CotlibError, match="budget 'tokens': choose from epochs, steps"):
        budgeted(smoke, "multiarith", QWEN_T07, 2, "tokens")
    with pytest.raises(CotlibError, match="at most D=4 completions per question on multiarith"):
        budgeted(smoke, "multiarith", QWEN_T07, 8, "steps")
    assert not runs.exists()


def test_planned_steps_are_the_steps_training_takes(runs):
    cell = budgeted(get_profile("smoke"), "multiarith", QWEN_T07, 4, "steps")
    metrics = run(cell, "multiarith", "fine_tune_cot", **QUIET)
    assert metrics["total_steps"] == cell.train.max_steps == 4 and metrics["train_samples"] == 60
    uncapped = run(budgeted(get_profile("smoke"), "multiarith", QWEN_T07, 2, "epochs"),
                   "multiarith", "fine_tune_cot", **QUIET)
    assert uncapped["total_steps"] == planned_steps(get_profile("smoke"), 30) == 8


def test_read_only_tables_count_the_real_training_sets_and_train_nothing(runs):
    default = get_profile("default")
    table = diverse_table(default, ["last_letter_concatenation"], ("epochs", "steps"),
                          run_missing=False, **QUIET)
    assert not runs.exists()
    assert table.accuracy.isna().all() and table.recorded_D1_accuracy.isna().all()
    epochs = table[table.budget == "epochs"].set_index("D")
    # esc gpt-3.5-turbo on the 310 training questions (the last 40 of 350 held out)
    assert epochs.train_samples.tolist() == [252, 501, 1003, 1996, 3993]
    assert epochs.optimizer_steps.tolist() == [64, 126, 252, 500, 1000]  # 2 epochs, batch 8
    assert epochs.distinct_per_question[1] == 1 and 1.9 < epochs.distinct_per_question[8] < 2
    assert (table[table.budget == "steps"].optimizer_steps == 64).all()
    assert (table.paper_D1 == 50.67).all() and (table.paper_diverse == 59.33).all()
    teachers = teacher_table(default, ["multiarith"], ["recorded", "faithful-cot:gpt-4"],
                             run_missing=False, **QUIET)
    assert teachers.teacher_train_accuracy.round(2).tolist() == [79.05, 94.0]
    assert teachers.teacher_train_questions.tolist() == [420, 417]  # Faithful-CoT misses 3
    assert teachers.paper_teacher.tolist() == [True, False]
    assert not runs.exists()


def test_the_rationale_reading_checks_what_each_test_rationale_concludes_and_computes(runs):
    date, svamp = "date_understanding/fine_tune_cot-c5a4b6f4", "svamp/fine_tune_cot-cb0cf7dc"
    for cell in (date, svamp):  # gpt-3.5-turbo D=8 on Date, D=1 on SVAMP; full profile
        results.restore_cell(results.cell_path(results.RESULTS, cell), runs)
    read = rationale_reading(get_task("date_understanding"), runs / date)
    # 70 of 111 rationales end on the gold choice's date; 14 letters after --> are right
    assert round(read["rationale_right"], 2) == 63.06 and math.isnan(read["steps_right"])
    read = rationale_reading(get_task("svamp"), runs / svamp)
    # the student gets 50 of its 223 written steps right ("5 + 4 = 10"); no concluding step
    assert round(read["steps_right"], 2) == 22.42 and math.isnan(read["rationale_right"])
    # 20 answers are right; 25 rationales set up a last step that computes to the gold answer
    assert round(read["computed_right"] * 3) == 25


def test_plans_refuse_tasks_they_do_not_cover():
    with pytest.raises(CotlibError, match="coin_flip not in the study's plan"):
        diverse_table(get_profile("smoke"), ["coin_flip"], run_missing=False, **QUIET)
    with pytest.raises(CotlibError, match="expected a list of task names"):
        teacher_table(get_profile("smoke"), "multiarith", run_missing=False, **QUIET)


def test_rank_correlation_is_spearman_per_task():
    table = pd.DataFrame({
        "task": ["a"] * 5 + ["b"] * 3 + ["c"] * 2,
        "teacher_train_accuracy": [50, 60, 70, 80, 90, 10, 20, 30, 1, 2],
        "accuracy": [1, 3, 2, 4, float("nan"), 5, 5, 1, 1, 2]})
    ranks = rank_correlation(table).set_index("task")
    assert ranks.teachers.tolist() == [4, 3, 2]  # the missing cell is left out
    assert ranks.spearman["a"] == pytest.approx(1 - 6 * 2 / (4 * 15))  # d = 0, 1, -1, 0
    assert ranks.spearman["b"] == pytest.approx(-0.866, abs=1e-3)  # tie: average ranks
    assert math.isnan(ranks.spearman["c"])
    # exact: 8 of the 24 pairings of 4 ranks have |rho| >= 0.8 (sum of d^2 <= 2 or >= 18)
    assert ranks.p_value["a"] == pytest.approx(8 / 24, abs=0.01)
    assert math.isnan(ranks.p_value["c"])


def test_diverse_summary_compares_the_largest_d_with_d1_and_the_paper():
    nan = float("nan")  # D=16 not run yet: the largest finished D counts
    table = pd.DataFrame({"task": ["svamp"] * 4, "teacher": ["mcc-kd:gpt-3.5-turbo"] * 4,
                          "budget": ["epochs"] * 4, "D": [1, 2, 8, 16],
                          "accuracy": [11.0, 12.0, 13.5, nan], "rationale_right": [nan] * 4,
                          "computed_right": [20.0, 30.0, 40.0, nan], "paper_diverse": [14.33] * 4})
    row = diverse_summary(table).iloc[0]
    assert (row.largest_D, row.gain_over_D1) == (8, 2.5)
    assert (row.computed_right_D1, row.computed_right_at_largest_D) == (20.0, 40.0)
    assert row.over_paper_diverse == pytest.approx(-0.83)


def test_seconds_to_run_scale_the_finished_cells_of_the_task(runs):
    done = runs / "svamp/fine_tune_cot-00000000"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text(json.dumps({"teacher": "mcc-kd:gpt-3.5-turbo", "seconds": 700.0,
                                                   "total_steps": 100, "eval_seconds": 120.0}))
    table = pd.DataFrame({"task": ["svamp", "svamp", "date_understanding"],
                          "teacher": ["mcc-kd:gpt-3.5-turbo"] * 3, "optimizer_steps": [200, 50, 10],
                          "accuracy": [float("nan"), 12.0, float("nan")]})
    assert seconds_to_run(table).tolist()[:2] == [200 * 7.0 + 120.0, 0.0]
    assert math.isnan(seconds_to_run(table).iloc[2])
    for n in range(1, 4):  # newer cells, twice as fast: the older one no longer counts
        newer = runs / f"svamp/fine_tune_cot-0000000{n}/metrics.json"
        newer.parent.mkdir()
        newer.write_text(json.dumps({"teacher": "mcc-kd:gpt-3.5-turbo", "seconds": 350.0,
                                     "total_steps": 100, "eval_seconds": 60.0}))
        os.utime(newer, (2e9 + n, 2e9 + n))
    assert seconds_to_run(table).iloc[0] == 200 * 3.5 + 60.0


def test_study_plan_on_the_command_line_trains_nothing(runs, capsys):
    assert cli.main(["study", "diverse", "--plan", "--tasks", "multiarith", "--budget", "epochs",
                     "steps", "--D", "1", "4"]) == 0
    out = capsys.readouterr().out
    assert "still to run" in out and "1 cell(s) of tasks with no finished cell" not in out
    assert "3 cell(s) of tasks with no finished cell" in out  # D=1 shared by both budgets
    assert not runs.exists()


def test_a_study_table_is_saved_with_its_evidence_and_rebuilds_from_it(runs, tmp_path):
    """The diverse-reasoning table over committed cells (Last Letter, gpt-3.5-turbo D=4 and its
    reference cells, default profile with the full head): saved with its predictions, it is
    rebuilt byte for byte, and D=4 is the committed teacher-sources number."""
    from cotlib import results
    for cell in ("fine_tune_cot-51d9904b", "vanilla-56b8ca82", "fine_tune_cot-56b8ca82"):
        results.restore_cell(results.cell_path(results.RESULTS,
                                               f"last_letter_concatenation/{cell}"), runs)
    profile = get_profile("default", task_vocab=False)
    chosen = {"tasks": ["last_letter_concatenation"], "budgets": ["epochs"], "degrees": [4]}
    table = diverse_table(profile, **chosen, run_missing=False, **QUIET)
    out = tmp_path / "results" / "diverse.csv"
    assert results.save_table(table, out, "diverse_table", profile, index=False, **chosen) == []
    assert results.rebuild("diverse.csv", out.parent) == out.read_text()
    sources = pd.read_csv(results.RESULTS / "teacher_sources_default.csv")
    committed = sources[(sources.task == "last_letter_concatenation") & (sources.D == 4)]
    assert table.accuracy.round(2).tolist() == committed.accuracy.tolist()
    assert len(list((out.parent / "predictions").glob("*/*.jsonl.gz"))) == 3
