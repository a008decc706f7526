import json
from dataclasses import asdict

import pandas as pd
import pytest

from conftest import PROJECT
from cotlib import experiments, sources
from cotlib import sample_studies as studies
from cotlib.data import CotlibError
from cotlib.evaluation import Prediction
from cotlib.format import cot_completion
from cotlib.tasks import get_task

LABELS = PROJECT / "results" / "error_labels.csv"


def finished_cell(task_name: str, profile: str = "smoke", **settings) -> studies.Cell:
    """A finished Fine-tune-CoT cell under COTLIB_RUNS whose "student" wrote the recorded
    teacher's test rationales (real text, real right and wrong answers)."""
    task, chosen = get_task(task_name), experiments.get_profile(profile, **settings)
    out = experiments.run_dir(chosen, task_name, "fine_tune_cot")
    predictions = [Prediction(c.sample_index, c.question, cot_completion(c.rationale, c.prediction),
                              c.rationale, c.prediction, c.answer, c.correct)
                   for c in sources.completions(sources.RECORDED, task, "test")]
    experiments.write_records(out / "predictions.jsonl", [asdict(p) for p in predictions])
    metrics = {"task": task_name, "method": "fine_tune_cot", **experiments.accuracy(predictions)}
    (out / "metrics.json").write_text(json.dumps(metrics))
    return studies.Cell(task_name, chosen, out)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("COTLIB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_conclusion_reads_what_the_rationale_reaches():
    date, letters = get_task("date_understanding"), get_task("last_letter_concatenation")
    sample = date.samples()[date.split("test")[0].sample_index]
    named = sample.choices[2]
    assert studies.conclusion(date, sample, f"So today is 01/01/1900. A week later is {named}.") == "C"
    assert studies.conclusion(date, sample, "A month ago would be 11 months.") is None
    ll = letters.split("test")[0]
    text = 'The last letter of "Lino" is "o".\nThe last letter of "Mariel" is "l".'
    assert studies.conclusion(letters, ll, text) == "ol"
    multi = get_task("multiarith")
    q = multi.split("test")[0]
    assert studies.conclusion(multi, q, "So 27 ÷ 3 = 9. It takes 9 days for all 27 puppies.") == "9"
    assert studies.conclusion(multi, q, "He has 1,200 apples.") == "1200"
    coin = get_task("coin_flip")
    flips = "Ann flips the coin, so it is now tails up. Bo flips it, so it is now heads up again."
    assert studies.conclusion(coin, coin.split("test")[0], flips) == "yes"


def test_templates_mask_what_varies_between_questions():
    rationales = [c.rationale for c in sources.completions(
        sources.RECORDED, get_task("last_letter_concatenation"), "train")[:40]]
    found = studies.variety(rationales)
    assert found["rationales"] == 40 and found["distinct_templates"] < 20  # names masked
    assert len({r for r in rationales}) == 40  # while every text differs
    assert studies.template('The last letter of "Lino" is "o". 3 + 4 = 7, on May 6, 2001.') \
        == "the last letter of q is q. n + n = n on w n n"
    assert studies.opening("Yesterday was April 30, 2021. Today is May 1.") == "yesterday was w n n"


def test_lengths_cases_and_diversity_of_a_finished_cell(runs):
    cell = finished_cell("coin_flip", tasks=["coin_flip"])
    assert [c.run for c in studies.finished_cells(cell.profile)] == [cell.run]
    lengths = studies.lengths([cell])
    assert set(lengths.who) == {"teacher (train)", "student (test)"}
    student = lengths[lengths.who == "student (test)"]
    assert len(student) == len(get_task("coin_flip").split("test"))
    assert len(lengths) - len(student) == 16  # the smoke profile's 16 train questions, D=1
    boxes = studies.length_boxes(lengths).set_index(["who", "correct"])
    right = student[student.correct].words
    box = boxes.loc[("student (test)", True)]
    assert box.rationales == len(right) == student.correct.sum() and box["median"] == right.median()
    assert (box.q1, box.q3) == tuple(right.quantile([0.25, 0.75]))
    beyond = right[(right < box.whislo) | (right > box.whishi)]
    assert box.fliers.split() == [str(w) for w in sorted(set(beyond))]
    assert len(boxes) == len(lengths.groupby(["who", "correct"]))
    table = studies.cases(cell)
    # the "student" is the recorded teacher, shown beside itself: never one right, one wrong
    assert set(table.case) <= {"both right", "both wrong", "right for a wrong reason"}
    assert (table.teacher_rationale == table.student_rationale).all()
    picked = studies.side_by_side(table, seed=0)
    assert set(picked.case) == set(table.case) & set(studies.SIDE_BY_SIDE)
    assert "**coin_flip" in studies.as_markdown(next(picked.itertuples()))
    variety = studies.diversity([cell])
    assert variety.loc[("coin_flip", cell.name), "templates per question"] == 1.0


def test_a_cell_not_run_is_left_out_with_a_line(runs):
    said = []
    profile = experiments.get_profile("smoke", tasks=["coin_flip"])
    assert studies.finished_cells(profile, [{"task": "multiarith", "degree": 1}], log=said.append) == []
    assert len(said) == 2 and "not run yet" in said[1] and "multiarith" in said[1]
    with pytest.raises(CotlibError, match="unknown task 'nope'"):
        studies.finished_cells(profile, [{"task": "nope"}])
    with pytest.raises(CotlibError, match=r"not \['D'\]"):
        studies.finished_cells(profile, [{"task": "coin_flip", "D": 4}])
    said.clear()  # a TrainConfig override (notebook 05's steps budget) is another cell
    assert studies.finished_cells(profile, [{"task": "coin_flip", "max_steps": 3}], log=said.append) == []
    assert "not run yet" in said[-1]
    assert experiments.run_dir(profile, "coin_flip", "fine_tune_cot").name not in said[-1]


def test_label_sheet_samples_wrong_answers_and_every_correct_choice(runs):
    cell = finished_cell("date_understanding", tasks=["date_understanding"])
    predictions = cell.predictions()
    chosen = studies.to_label(cell, per_task=10, seed=0)
    wrong = [p for p in chosen if not p["correct"]]
    assert len(wrong) == 10 and len(chosen) - 10 == sum(p["correct"] for p in predictions)
    assert chosen == studies.to_label(cell, per_task=10, seed=0)  # seeded
    assert [p["sample_index"] for p in wrong] != [
        p["sample_index"] for p in studies.to_label(cell, 10, seed=1) if not p["correct"]]
    sheet = studies.label_sheet([cell], studies.read_labels(LABELS), per_task=10)
    assert len(sheet) == len(chosen)
    assert set(sheet.label) <= set(studies.ERRORS + studies.REASONS)
    # labelled rows leave the sheet
    done = sheet.head(3)[studies.LABEL_COLUMNS]
    assert len(studies.label_sheet([cell], done, per_task=10)) == len(chosen) - 3


def test_labels_are_checked_against_the_output_they_were_made_on(runs, tmp_path):
    cell = finished_cell("coin_flip", tasks=["coin_flip"])
    sheet = studies.label_sheet([cell], studies.read_labels(tmp_path / "none.csv"), per_task=5)
    path = tmp_path / "labels.csv"
    studies.write_labels(path, sheet)
    assert path.read_text().startswith(studies.LABEL_RULE)
    labels = studies.read_labels(path)
    assert len(studies.check_labels(labels, [cell])) == len(sheet)
    first = path.read_bytes()
    studies.write_labels(path, labels.iloc[::-1])  # same labels in another order: same bytes
    assert path.read_bytes() == first
    changed = labels.assign(output_sha=["0000000000"] + list(labels.output_sha[1:]))
    with pytest.raises(CotlibError, match="made on another output"):
        studies.check_labels(changed, [cell])
    swapped = labels.assign(label=["sound"] + list(labels.label[1:]))
    with pytest.raises(CotlibError, match="'sound' on a wrong answer"):
        studies.check_labels(swapped, [cell])


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace(",label,", ",verdict,", 1), "missing column"),
    (lambda t: t.replace(",semantic,", ",confused,", 1), "label 'confused'"),
    (lambda t: t + t.splitlines()[-1] + "\n", "again"),
])
def test_a_bad_labels_file_is_one_clear_error(tmp_path, edit, message):
    path = tmp_path / "labels.csv"
    path.write_text(edit(LABELS.read_text()))
    with pytest.raises(CotlibError, match=message) as error:
        studies.read_labels(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_the_committed_labels():
    text = LABELS.read_text()
    assert text.startswith(studies.LABEL_RULE)
    labels = studies.read_labels(LABELS)
    counts = studies.error_counts(labels)
    assert (counts.labelled >= 30).sum() >= 3  # at least 30 per task on at least 3 tasks
    assert (counts[list(studies.ERRORS)].sum(axis=1) == counts.labelled).all()
    assert (labels.label.isin(studies.ERRORS) != labels.correct).all()
    reasons = studies.reason_counts(labels)
    choice = labels[labels.correct].task.map(lambda t: get_task(t).answer_type)
    assert (choice == "choice").all() and reasons.values.sum() == labels.correct.sum()
    assert set(reasons.index) == set(zip(labels[labels.correct].task, labels[labels.correct].run))
    note = studies.closing_note(counts, reasons, pd.DataFrame())
    assert f"{int(reasons.wrong_reason.sum())} of the {int(labels.correct.sum())} correct" in note
