import pytest

from cotlib import sources
from cotlib.curation import curate
from cotlib.evaluation import parse_completion
from cotlib.experiments import get_profile, run_dir
from cotlib.format import answer_field, cot_completion, read_answer
from cotlib.tasks import get_task

LAST, DATE, SHUFFLED = (get_task(n) for n in ("last_letter_concatenation", "date_understanding",
                                              "tracking_shuffled_objects"))


def test_copyable_answers_are_written_and_read_back_on_real_samples():
    for task in (LAST, DATE, SHUFFLED):
        taught = sources.completions(sources.RECORDED, task, "train")
        indices = [c.sample_index for c in taught[:40]]
        paper = curate(task, taught, indices)
        copyable = curate(task, taught, indices, answer_format="copyable")
        assert [s.sample_index for s in paper] == [s.sample_index for s in copyable] and paper
        for a, b in zip(paper, copyable):  # rationales unchanged, only the answer differs
            assert a.completion.rpartition(" --> ")[0] == b.completion.rpartition(" --> ")[0]
            gold = task.samples()[b.sample_index].answer
            assert task.is_correct(parse_completion(task, b.completion, "copyable")[1], gold)
            assert task.is_correct(parse_completion(task, a.completion)[1], gold)


def test_copyable_format_on_hand_made_outputs():
    sample = DATE.samples()[0]  # (F) 05/01/2021
    assert answer_field(DATE, sample, "F", "copyable") == "05/01/2021 (F)"
    assert answer_field(LAST, LAST.samples()[0], "yajo", "copyable") == "y a j o"
    assert answer_field(LAST, LAST.samples()[0], "yajo") == "yajo"
    output = cot_completion("Today is May 1, 2021.", "05/01/2021 (F)")
    assert parse_completion(DATE, output, "copyable") == ("Today is May 1, 2021.", "F")
    assert parse_completion(LAST, " ... 'o'. --> y a j o END")[1] == "yajo"
    # a choice text with capitals: the copyable reading takes the parenthesised letter
    assert read_answer(SHUFFLED, "Claire (A)", "copyable") == "A"
    assert read_answer(SHUFFLED, "Claire (A)") == "C"  # the paper reading would not
    assert parse_completion(DATE, "no arrow here (F)", "copyable")[1] == ""


def test_answer_format_is_part_of_the_cell_and_validated():
    paper = get_profile("default")
    copyable = get_profile("default", answer_format="copyable")
    assert run_dir(paper, "coin_flip", "fine_tune_cot") != run_dir(copyable, "coin_flip", "fine_tune_cot")
    assert run_dir(paper, "coin_flip", "vanilla") == run_dir(copyable, "coin_flip", "vanilla")
    assert "copyable answer" in copyable.notes
    with pytest.raises(Exception, match="answer_format='letters': choose from paper, copyable"):
        get_profile("default", answer_format="letters")


def test_intermediate_right_final_wrong_on_hand_made_predictions():
    from cotlib.audit import intermediate_answer, intermediate_counts
    sample = LAST.samples()[0]  # "Whitney Erika Tj Benito" -> yajo
    rationale = ("The last letter of 'Whitney' is 'y'. The last letter of 'Erika' is 'a'. The "
                 "last letter of 'Tj' is 'j'. The last letter of 'Benito' is 'o'.")
    assert intermediate_answer(LAST, sample, rationale) == "yajo"
    date = DATE.samples()[0]  # (F) 05/01/2021
    assert intermediate_answer(DATE, date, "Today is 5/1/2021, so the answer is (D).") == "F"
    assert intermediate_answer(DATE, date, "No date at all.") is None
    predictions = [
        {"sample_index": 0, "rationale": rationale, "answer": "yajo", "correct": False},
        {"sample_index": 0, "rationale": rationale, "answer": "yajo", "correct": True},
        {"sample_index": 0, "rationale": "The last letter of 'Whitney' is 'e'.", "answer": "yajo",
         "correct": False}]
    predictions = [{**p, "output": f" {p['rationale']} --> yajo END"} for p in predictions]
    counts = intermediate_counts(LAST, predictions)
    assert (counts["intermediate_right"], counts["intermediate_right_final_wrong"]) == (2, 1)
    assert "answer_text_right" not in counts  # no choice text to read


def test_choice_text_right_letter_wrong_on_hand_made_copyable_outputs():
    """Copyable Date answers: the text names the gold choice, the letter after it may not."""
    from cotlib.audit import answer_text, intermediate_counts
    date = DATE.samples()[0]  # (F) 05/01/2021
    assert answer_text(DATE, date, "Today is 5/1/2021. --> 05/01/2021 (D) END") == "F"
    assert answer_text(DATE, date, "Today is 5/1/2021. --> D END") is None  # paper format
    outputs = [("05/01/2021 (F)", True), ("05/01/2021 (D)", False), ("05/02/2021 (F)", True)]
    predictions = [{"sample_index": 0, "rationale": "Today is 5/1/2021.", "answer": "F",
                    "correct": right, "output": f" Today is 5/1/2021. --> {tail} END"}
                   for tail, right in outputs]
    counts = intermediate_counts(DATE, predictions)
    assert (counts["answer_text_right"], counts["answer_text_right_letter_wrong"]) == (2, 1)
    paper = [{**p, "output": " Today is 5/1/2021. --> F END"} for p in predictions]
    assert "answer_text_right" not in intermediate_counts(DATE, paper)


@pytest.mark.parametrize("task, paper_right", [(DATE, 369), (LAST, 500), (SHUFFLED, 729)])
def test_both_scorers_on_every_gold_answer_written_in_each_format(task, paper_right):
    """Every sample's gold answer, written after `-->` in each format: our reading gets all of
    them back; the paper's reading gets all in the paper format, and in the copyable one all
    but Shuffled Objects' choices whose text holds a capital A-C (e.g. "Alice (B)": it takes
    the first candidate letter, the name's)."""
    from cotlib.evaluation import paper_reading
    samples = list(task.samples().values())
    for answer_format in ("paper", "copyable"):
        outputs = [(s, cot_completion("x", answer_field(task, s, s.answer, answer_format)))
                   for s in samples]
        assert all(task.is_correct(parse_completion(task, o, answer_format)[1], s.answer)
                   for s, o in outputs)
        right = sum(task.is_correct(paper_reading(task, o), s.answer) for s, o in outputs)
        assert right == (len(samples) if answer_format == "paper" else paper_right)
