import json

import pytest

from cotlib.data import CotlibError
from cotlib.tasks import (TASKS, extract_choice, extract_letters, extract_number,
                          extract_yes_no, get_task, parse_choices)
from conftest import replace

PAPER_SIZES = {  # train/test of the paper's default split
    "single_eq": (356, 152), "addsub": (276, 119), "multiarith": (420, 180),
    "gsm8k": (7473, 1319), "aqua": (10000, 254), "svamp": (700, 300),
    "date_understanding": (258, 111), "tracking_shuffled_objects": (525, 225),
    "last_letter_concatenation": (350, 150), "coin_flip": (350, 150),
    "commonsense_qa": (9741, 1221), "strategy_qa": (1603, 687),
}


def test_registry_has_the_papers_12_tasks():
    assert set(TASKS) == set(PAPER_SIZES)


@pytest.mark.parametrize("name", PAPER_SIZES)
def test_split_sizes_match_the_paper_and_samples_load(name):
    task = get_task(name)
    parts = task.split_indices()
    assert (len(parts["train"]), len(parts["test"])) == PAPER_SIZES[name]
    assert not set(parts["train"]) & set(parts["test"])
    test = task.split("test")
    assert len(test) == PAPER_SIZES[name][1]
    assert all(s.question and s.answer for s in test)
    if task.answer_type == "choice":
        assert all(s.answer in task.letters[:len(s.choices)] for s in test)
    if name != "aqua":
        assert len(task.split("train")) == PAPER_SIZES[name][0]


def test_gsm8k_keeps_paper_order_and_clean_answers():
    task = get_task("gsm8k")
    test = task.split("test")
    assert test[0].sample_index == 7473 and test[0].question.startswith("Janet")
    assert test[0].answer == "18"
    assert all("," not in s.answer and float(s.answer) == float(s.answer) for s in test)


def test_aqua_train_is_reported_unavailable_but_test_works():
    task = get_task("aqua")
    with pytest.raises(CotlibError, match="aqua train: AQuA's train.json"):
        task.split("train")
    sample = task.split("test")[0]
    assert sample.sample_index == 97467 and len(sample.choices) == 5


def test_template_splits():
    for name, sizes in [("multiarith", (413, 187)), ("date_understanding", (261, 108))]:
        task = get_task(name)
        assert (len(task.split("train", "template")), len(task.split("test", "template"))) == sizes


def test_choices_are_parsed_in_letter_order():
    question = get_task("date_understanding").samples()[0].question
    assert parse_choices(question) == ("06/12/2021", "03/11/2021", "02/23/2021",
                                       "05/09/2021", "04/29/2021", "05/01/2021")


def test_random_accuracy():
    assert get_task("coin_flip").random_accuracy() == 50
    assert get_task("tracking_shuffled_objects").random_accuracy() == pytest.approx(100 / 3)
    assert get_task("aqua").random_accuracy() == pytest.approx(20)
    assert 16.6 < get_task("date_understanding").random_accuracy() < 20  # 5-7 choices
    assert get_task("multiarith").random_accuracy() == 0


@pytest.mark.parametrize("text, expected", [
    (" 1,792 grams.", "1792"), (":\n\n0.7 light-years", "0.7"), (" -3 degrees", "-3"),
    (" 2.", "2"), (" none", ""), (" 12 apples, then 3", "12"),
])
def test_extract_number(text, expected):
    assert extract_number(text) == expected


def test_extract_other_types():
    assert extract_choice(" (C) blue ball.", "ABC") == "C"
    assert extract_choice(" none", "ABC") == ""
    assert extract_yes_no(" No, because...") == "no"
    assert extract_yes_no(' "Yes".') == "yes"
    assert extract_yes_no(" maybe") == ""
    assert extract_letters(' "fnel".\n') == "fnel"


def test_strict_and_fair_comparison():
    single_eq, letters = get_task("single_eq"), get_task("last_letter_concatenation")
    assert single_eq.is_correct("43", "43.0", strict=True)
    assert single_eq.is_correct("0.6666666666666666", "0.6666666666666667")
    assert not single_eq.is_correct("0.6666666666666666", "0.6666666666666667", strict=True)
    assert single_eq.is_correct("1000", "1,000") and not single_eq.is_correct("", "0")
    assert letters.is_correct("y-a-j-o", "yajo") and not letters.is_correct("y-a-j-o", "yajo", True)
    assert not letters.is_correct("", "")
    assert get_task("strategy_qa").is_correct("yes", "Yes")


def test_unknown_task_and_split_are_clear_errors():
    with pytest.raises(CotlibError, match="unknown task 'multi_arith'"):
        get_task("multi_arith")
    with pytest.raises(CotlibError, match="coin_flip has no split 'template'"):
        get_task("coin_flip").split("test", "template")
    with pytest.raises(CotlibError, match="has no part 'dev'"):
        get_task("coin_flip").split("dev")


def test_malformed_dataset_json_names_the_file(data_copy):
    replace(data_copy / "reasoning_teacher/dataset/coin_flip.json", '[{"question": "x", ')
    with pytest.raises(CotlibError, match=r"malformed JSON in .*coin_flip.json"):
        get_task("coin_flip").split("test")


def test_record_without_answer_names_the_record(data_copy):
    replace(data_copy / "reasoning_teacher/dataset/addsub.json", json.dumps([{"question": "q"}]))
    with pytest.raises(CotlibError, match="addsub.json: record 0 lacks"):
        get_task("addsub").samples()


def test_split_index_out_of_range_names_split_and_index(data_copy):
    path = data_copy / "reasoning_teacher/split/svamp__default.json"
    split = json.loads(path.read_text())
    split["test"].append(1000)
    replace(path, json.dumps(split))
    with pytest.raises(CotlibError, match=r"svamp__default.json: test index 1000 is out of range"):
        get_task("svamp").split("test")


def test_split_file_of_the_wrong_shape_names_the_file(data_copy):
    path = data_copy / "reasoning_teacher/split/svamp__default.json"
    for wrong in ([1, 2, 3], {"train": [0], "test": "1"}):
        replace(path, json.dumps(wrong))
        with pytest.raises(CotlibError, match=r"svamp__default.json: expected \{\"train\": \[sample "
                                              r"indices\], \"test\": \[...\]\}"):
            get_task("svamp").split("test")


def test_null_answer_names_the_file_and_record(data_copy):
    records = [{"question": "q0", "answer": "1"}, {"question": "q1", "answer": None}]
    replace(data_copy / "reasoning_teacher/dataset/addsub.json", json.dumps(records))
    with pytest.raises(CotlibError, match="addsub.json: record 1 has answer null"):
        get_task("addsub").samples()
