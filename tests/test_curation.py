import pytest

from cotlib.curation import curate, report, vanilla
from cotlib.data import CotlibError
from cotlib.tasks import get_task
from cotlib.teachers import recorded


def test_fine_tune_cot_format_and_answer_filter():
    task = get_task("multiarith")
    train = task.split_indices()["train"]
    completions = [c for c in recorded(task) if c.sample_index in set(train)]
    kept = curate(task, completions, train)
    correct = [c for c in completions if task.is_correct(c.prediction, c.answer)]
    assert len(kept) == len(correct) and 0 < len(kept) < len(completions)
    first = next(c for c in correct if c.sample_index == kept[0].sample_index)
    assert kept[0].prompt == first.question + " ###"
    assert kept[0].completion == f" {first.rationale} --> {first.prediction} END"
    assert len(curate(task, completions, train, filter="none")) == len(completions)


def test_only_requested_indices_are_used():
    task = get_task("coin_flip")
    test = set(task.split_indices()["test"])
    kept = curate(task, recorded(task), task.split_indices()["train"], filter="none")
    assert not {s.sample_index for s in kept} & test


def test_vanilla_uses_gold_answers_without_rationale():
    task = get_task("single_eq")
    samples = vanilla(task, task.split_indices()["train"][:3])
    gold = task.samples()[samples[0].sample_index].answer
    assert samples[0].completion == f" {gold.removesuffix('.0')} END"
    assert samples[0].prompt.endswith("? ###")


def test_report_and_bad_filter():
    task = get_task("coin_flip")
    completions = recorded(task)
    kept = curate(task, completions, task.split_indices()["train"])
    stats = report(task, completions, kept)
    assert stats["kept"] == len(kept) and 0 < stats["kept_%"] < 100
    with pytest.raises(CotlibError, match="unknown curation filter 'best'"):
        curate(task, completions, [], filter="best")


def test_diverse_live_completions_keep_their_completion_index():
    from cotlib.store import Completion
    task = get_task("multiarith")
    sample = task.split("train")[0]
    records = [Completion("t", "p", task.name, "default/train", sample.sample_index, i,
                          sample.question, sample.answer, rationale=f"Way {i}.",
                          prediction=prediction)
               for i, prediction in enumerate([sample.answer, "-1", sample.answer])]
    kept = curate(task, records, [sample.sample_index])
    assert [s.completion_index for s in kept] == [0, 2]
    assert kept[1].completion == f" Way 2. --> {sample.answer} END"
