import json
from dataclasses import asdict

import pytest

from cotlib import ablations, results
from cotlib.cli import main
from cotlib.data import CotlibError


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("COTLIB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.mark.parametrize("name", ["answer_format", "task_vocabulary"])
def test_an_ablation_names_the_cells_of_its_committed_table(name):
    """Notebook 06 and `cotlib ablation` remake the committed table, not a neighbour of it."""
    recipe = results.read_recipe(results.RESULTS, f"{name}_default.csv")
    profile = json.loads(json.dumps(asdict(ablations.profile_of(name, "default")), default=list))
    assert [dict(c) for c in ablations.ablation(name).cells] == recipe["args"]["cells"]
    same = lambda p: {k: v for k, v in p.items() if k in recipe["profile"] and k != "notes"}
    assert same(profile) == same(recipe["profile"])  # notes: prose, not a setting
    assert recipe["args"].get("choose") == ablations.ablation(name).choose


def test_an_ablation_trains_its_missing_cells_saves_as_it_goes_and_reuses_them(runs, tmp_path):
    out = tmp_path / "results"
    table = ablations.run_ablation("task_vocabulary", "smoke", ["coin_flip"], out, log=lambda _: None)
    assert len(table) == 6  # every cell of the ablation; those of other tasks not run, blank
    ran = table[table.task == "coin_flip"]
    assert ran.task_vocab.tolist() == [False, True] and ran.accuracy.notna().all()
    assert table[table.task != "coin_flip"].accuracy.isna().all()
    # saved with the predictions of the cells that ran, the others recorded as blank
    assert len(results.read_recipe(out, "task_vocabulary_smoke.csv")["blank"]) == 4
    assert results.lacking(out, "task_vocabulary_smoke.csv") == []
    assert results.rebuild("task_vocabulary_smoke.csv", out) == \
        (out / "task_vocabulary_smoke.csv").read_text()
    assert len(list(out.glob("predictions/coin_flip/*.jsonl.gz"))) == 2
    stamps = sorted(p.stat().st_mtime_ns for p in runs.glob("coin_flip/*/metrics.json"))
    assert len(stamps) == 2  # one cell per head
    again = ablations.run_ablation("task_vocabulary", "smoke", ["coin_flip"], out, log=lambda _: None)
    assert again.equals(table)
    assert sorted(p.stat().st_mtime_ns for p in runs.glob("coin_flip/*/metrics.json")) == stamps


def test_bad_ablation_input_is_one_line_and_trains_nothing(runs, tmp_path, capsys):
    assert main(["ablation", "task_vocabulary", "nothing", "--profile", "smoke"]) == 1
    assert capsys.readouterr().err.strip() == ("error: unknown ablation 'nothing'; choose from "
                                               "answer_format, task_vocabulary, date_ablation")
    lines = []
    empty = ablations.run_ablation("date_ablation", "smoke", ["coin_flip"], tmp_path / "results",
                                   log=lines.append)
    assert empty.empty and lines == ["date_ablation: no cell on coin_flip"]
    assert not runs.exists() and not (tmp_path / "results").exists()
    with pytest.raises(CotlibError, match="unknown profile 'huge'"):
        ablations.run_ablation("date_ablation", "huge")
