import re

from cotlib import evaluation, results, sources
from cotlib.audit import (GENERATION, candidates, computed_right, miscalculated, prediction_audit,
                          step_results, steps_right, training_audit, valid_answer,
                          written_equations)
from cotlib.experiments import EVAL_METHOD, get_profile, run_dir, train_samples
from cotlib.tables import audit_table, main_table
from cotlib.tasks import get_task
from conftest import PROJECT

COIN, DATE, LAST = get_task("coin_flip"), get_task("date_understanding"), get_task(
    "last_letter_concatenation")
WORDS = lambda text: len(text.split())  # a stand-in tokenizer: one token per word


def record(task, index, output, predicted, rationale=""):
    gold = task.samples()[index].answer
    return {"sample_index": index, "output": output, "rationale": rationale,
            "predicted": predicted, "answer": gold, "correct": task.is_correct(predicted, gold)}


def test_prediction_counts_on_hand_made_coin_flip_outputs():
    index = COIN.split("test")[0].sample_index  # gold: yes
    predictions = [record(COIN, index, " heads up. --> yes END", "yes"),
                   record(COIN, index, " a b c d e f", ""),  # no arrow, no END, 6 tokens: cut
                   record(COIN, index, " a b c", ""),  # no arrow, ended early (end of sequence)
                   record(COIN, index, " tails. --> no END", "no"),
                   record(COIN, index, " tails. --> maybe END", "")]
    counts = prediction_audit(COIN, "fine_tune_cot", predictions, 6, WORDS)
    assert counts["n"] == 5 and counts["no_arrow"] == 2 and counts["cut_at_cap"] == 1
    assert counts["invalid_answer"] == 3 and counts["names_other_choice"] is None
    assert (counts["predicted yes"], counts["predicted no"], counts["gold yes"]) == (1, 1, 5)
    assert prediction_audit(COIN, "vanilla", predictions, 6, WORDS)["no_arrow"] is None


def test_a_letter_the_question_does_not_offer_is_no_valid_candidate():
    five = next(s for s in DATE.samples().values() if len(s.choices) == 5)
    assert candidates(DATE, five) == tuple("ABCDE") and candidates(DATE) == tuple("ABCDEF")
    assert valid_answer(DATE, five, "E") and not valid_answer(DATE, five, "F")
    assert not valid_answer(DATE, five, "")
    assert valid_answer(LAST, None, "n-i-e-a") and not valid_answer(LAST, None, "")
    predictions = [record(DATE, five.sample_index, " x --> F END", "F"),
                   record(DATE, five.sample_index, " x --> A END", "A")]
    counts = prediction_audit(DATE, "fine_tune_cot", predictions, 160, WORDS)
    assert counts["invalid_answer"] == 1 and counts["predicted F"] == 1 and counts["predicted A"] == 1


def test_a_rationale_concluding_another_choice_is_counted():
    sample = DATE.samples()[0]  # (F) 05/01/2021, (D) 05/09/2021
    rationale = "Yesterday was 04/30/2021, so today is 5/9/2021."
    predictions = [record(DATE, 0, f" {rationale} --> F END", "F", rationale),
                   record(DATE, 0, " So today is 05/01/2021. --> F END", "F",
                          "So today is 05/01/2021."),
                   record(DATE, 0, " No date. --> F END", "F", "No date.")]
    assert sample.choices[3] == "05/09/2021"
    assert prediction_audit(DATE, "fine_tune_cot", predictions, 160, WORDS)["names_other_choice"] == 1


def test_zero_shot_cot_is_cut_in_either_of_its_two_generations():
    index = COIN.split("test")[0].sample_index
    rationale = " ".join(["step"] * 128)
    cut = record(COIN, index, f"{rationale}\n{COIN.trigger} yes\n", "yes")
    ended = record(COIN, index, f"short\nQ:\n{COIN.trigger} yes\n", "yes")
    answer_cut = record(COIN, index, f"short\nQ:\n{COIN.trigger}" + " yes" * 32, "yes")
    counts = prediction_audit(COIN, "zero_shot_cot", [cut, ended, answer_cut], 160, WORDS)
    assert counts["cut_at_cap"] == 2


def test_generation_caps_mirror_what_evaluate_generates(monkeypatch):
    made = []

    def fake(model, tokenizer, prompts, max_new_tokens, stop, *rest):
        made.append((max_new_tokens, stop[0]))
        return [stop[0]] * len(prompts)
    monkeypatch.setattr(evaluation, "greedy_decode", fake)
    for method, stages in GENERATION.items():
        made.clear()
        evaluation.evaluate(None, None, COIN, COIN.split("test")[:1],
                            EVAL_METHOD.get(method, method), max_new_tokens=77)
        assert made == [(cap or 77, stop) for cap, stop in stages], method


def test_training_completions_of_the_date_student():
    profile = get_profile("default")
    curated = train_samples(profile, DATE, "fine_tune_cot")
    counts = training_audit(DATE, "fine_tune_cot", curated, 160, WORDS)
    assert counts["n"] == len(curated) == 149 and counts["no_arrow"] == 0
    assert counts["invalid_answer"] == 0
    letters = [counts[f"predicted {c}"] for c in "ABCDEF"]
    assert letters == [counts[f"gold {c}"] for c in "ABCDEF"] and sum(letters) == 149
    # the issue counted 20 of the 80 samples writing MM/DD/YYYY ending on another date than
    # their answer's; one of them ends on "1/7/1900", its answer (C) 01/07/1900, which the
    # audit reads as a date: 19 of those 80, and 27 of all 149 (with 1-digit months, 5/9/2021)
    strict = [s for s in curated if re.search(r"\b\d\d/\d\d/\d{4}\b", s.completion)]
    other = [s for s in strict if training_audit(DATE, "fine_tune_cot", [s], 160, WORDS)
             ["names_other_choice"]]
    assert (len(strict), len(other)) == (80, 19)
    assert counts["names_other_choice"] == 27
    vanilla = training_audit(DATE, "vanilla", train_samples(profile, DATE, "vanilla"), 24, WORDS)
    assert vanilla["no_arrow"] is None and vanilla["invalid_answer"] == 0


def test_committed_date_predictions_show_the_letter_bias():
    _, predictions = results.read_cell(PROJECT / "results/predictions/date_understanding/"
                                                 "fine_tune_cot-56b8ca82.jsonl.gz")
    no_end = sum("END" not in p["output"] for p in predictions)
    counts = prediction_audit(DATE, "fine_tune_cot", predictions, 160, lambda text: 160)
    assert counts["n"] == 111 and counts["cut_at_cap"] == no_end == 5
    assert counts["no_arrow"] == 5 and counts["invalid_answer"] == 5
    predicted = {c: counts[f"predicted {c}"] for c in "ABCDEF"}
    gold = {c: counts[f"gold {c}"] for c in "ABCDEF"}
    assert sum(predicted.values()) == 111 - 5 and sum(gold.values()) == 111
    assert max(predicted, key=predicted.get) == "D" and max(gold, key=gold.get) == "C"
    assert predicted["B"] == predicted["E"] == 0 < gold["B"] + gold["E"]


def test_audit_table_reads_finished_cells_and_lists_missing_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("COTLIB_RUNS", str(tmp_path / "runs"))
    profile = get_profile("smoke", tasks=["coin_flip"])
    main_table(profile, ("fine_tune_cot",), log=lambda message: None)
    before = sorted(p.name for p in (tmp_path / "runs" / "coin_flip").iterdir())
    table = audit_table(profile)
    assert sorted(p.name for p in (tmp_path / "runs" / "coin_flip").iterdir()) == before
    tested = table.xs("test predictions", level="data")
    assert tested.loc[("coin_flip", "fine_tune_cot"), "status"] == "finished"
    assert tested.loc[("coin_flip", "fine_tune_cot"), "n"] == 6
    assert (tested.drop(index=("coin_flip", "fine_tune_cot")).status == "missing").all()
    trained = table.xs("training completions", level="data")
    assert set(trained.index.get_level_values("method")) == {"fine_tune_cot", "vanilla"}
    cell = run_dir(profile, "coin_flip", "vanilla")
    assert tested.loc[("coin_flip", "vanilla"), "cell"] == f"coin_flip/{cell.name}"


def test_written_equations_counts_rationales_that_write_a_step_with_its_result():
    assert written_equations(["they had 32 + 42 = 74 pieces", "a total of 9 apples",
                              "3 x 4 - 2 = 10 left", "on 11/12/2019 = x", "so 5 = 5"]) == 40.0
    assert written_equations([]) != written_equations([])  # NaN: nothing to count


def test_step_results_check_each_written_step_to_its_written_precision():
    assert step_results("5 + 4 = 10, 10 / 3 = 3.33, 12-19= -7, 1,200 x 3 = 3,600, 3 / 0 = 1 "
                        "and 7 - 9 = -1") == [False, True, True, True, False]  # 3 / 0: unread
    svamp = get_task("svamp")
    assert miscalculated(svamp, ["2 + 2 = 4", "2 + 2 = 5 and 3 - 1 = 2", "no step"]) == 1
    assert miscalculated(COIN, ["2 + 2 = 5"]) is None
    assert computed_right("4 + 5 = 10 apples, so 10 - 1 = 8", "9")  # slips, set up right
    assert not computed_right("4 + 5 = 9 apples", "8") and not computed_right("nine", "9")


def test_teachers_compute_their_written_steps_right():
    for task, spec in (("multiarith", "recorded"), ("svamp", "faithful-cot:text-davinci-002"),
                       ("svamp", "mcc-kd:gpt-3.5-turbo")):
        right = [c.rationale for c in sources.completions(
            sources.get_source(spec), get_task(task), "train", 1) if c.correct]
        assert steps_right(right) > 96  # a few slips still reach the gold answer


def test_the_recorded_teacher_writes_out_far_fewer_multiarith_steps_than_few_shot_cot():
    task = get_task("multiarith")
    right = {spec: [c.rationale for c in sources.completions(sources.get_source(spec), task,
                                                             "train", 1) if c.correct]
             for spec in ("recorded", "faithful-cot:text-davinci-002")}
    # same model; Zero-shot-CoT often states a sum without the operation ("a total of 36")
    assert written_equations(right["recorded"]) < 40 < 90 < written_equations(
        right["faithful-cot:text-davinci-002"])


def test_the_audit_counts_written_steps_on_arithmetic_tasks_only():
    profile = get_profile("default")
    arith = training_audit(get_task("multiarith"), "fine_tune_cot",
                           train_samples(profile, get_task("multiarith"), "fine_tune_cot"), 160, len)
    # the recorded teacher's curated MultiArith rationales: about a third write out a step
    assert 0.2 * arith["n"] < arith["writes_steps"] < 0.45 * arith["n"]
    assert training_audit(COIN, "fine_tune_cot", train_samples(profile, COIN, "fine_tune_cot"),
                          160, len)["writes_steps"] is None
