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


def test_named_choice_reads_the_conclusion():
    from cotlib.curation import named_choice
    date = get_task("date_understanding")
    sample = date.samples()[0]  # (D) 05/09/2021, (F) 05/01/2021
    assert named_choice(date, sample, "Yesterday was 04/30/2021, so today is 5/1/2021.") == "F"
    assert named_choice(date, sample, "Today is 05/01/2021, a week later 05/09/2021.") == "D"
    assert named_choice(date, sample, "So today is 05/02/2021.") == ""  # a date, but no choice
    assert named_choice(date, sample, "Today is May 1, 2021.") is None
    shuffled = get_task("tracking_shuffled_objects")
    asked = next(s for s in shuffled.samples().values() if "end of the game, Alice has" in s.question)
    a, b, c = asked.choices
    told = f"Alice has the {a} and Bob has the {b}. Claire has the {c}."
    assert named_choice(shuffled, asked, told) == "A"  # Alice's, though C is named last
    assert named_choice(shuffled, asked, f"Bob has the {b}.") is None
    assert named_choice(get_task("coin_flip"), get_task("coin_flip").samples()[0], "yes") is None


def test_consistent_choices_drops_right_answers_for_a_wrong_reason():
    from cotlib.store import Completion
    date = get_task("date_understanding")
    sample = date.samples()[0]  # gold F: 05/01/2021; D: 05/09/2021
    rationales = ["So today is 05/01/2021.", "So today is 05/09/2021.", "So today is May 1.",
                  "So today is 05/02/2021."]
    records = [Completion("t", "p", date.name, "default/train", 0, i, sample.question,
                          sample.answer, rationale=r, prediction="F")
               for i, r in enumerate(rationales)]
    assert len(curate(date, records, [0])) == 4
    kept = curate(date, records, [0], consistent_choices=True)
    assert [s.completion_index for s in kept] == [0, 2]
    stats = report(date, records, curate(date, records, [0]))
    assert stats["names_other_choice"] == 2 and stats["dropped_other_choice"] == 0
    copyable = curate(date, records, [0], answer_format="copyable")  # ` 05/01/2021 (F)`
    assert report(date, records, copyable)["names_other_choice"] == 2


def test_consistent_choices_on_the_recorded_date_and_shuffled_objects_data():
    from cotlib.tables import curation_table
    from cotlib.experiments import get_profile
    tasks = ["date_understanding", "tracking_shuffled_objects", "coin_flip"]
    off = curation_table(get_profile("default", tasks=tasks))
    on = curation_table(get_profile("default", tasks=tasks, consistent_choices=True))
    assert off.names_other_choice.tolist() == [27, 8, 0] and off.dropped_other_choice.eq(0).all()
    assert on.dropped_other_choice.tolist() == [27, 8, 0] and on.names_other_choice.eq(0).all()
    assert (off.kept - on.kept).tolist() == [27, 8, 0]
