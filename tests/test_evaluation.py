import pytest
import torch

from cotlib.evaluation import (accuracy, evaluate, inference_copy, parse_completion,
                               parse_few_shot, Prediction)
from cotlib.students import prompt_ids, tiny_student
from cotlib.tasks import get_task


@pytest.mark.parametrize("output, expected", [
    (" 3 + 4 = 7 apples. --> 7 END", ("3 + 4 = 7 apples.", "7")),
    (" 3 + 4 = 7 --> 7", ("3 + 4 = 7", "7")),  # missing END (token cap)
    (" 3 + 4 = 7 apples. END --> 9", ("3 + 4 = 7 apples.", "")),  # answer after END ignored
    (" so it is 7 apples", ("so it is 7 apples", "")),  # missing -->: no answer
    ("", ("", "")),
    (" --> 12 END END", ("", "12")),
])
def test_parse_completion(output, expected):
    assert parse_completion(get_task("multiarith"), output) == expected


def test_parse_few_shot_takes_the_first_reply():
    task = get_task("coin_flip")
    assert parse_few_shot(task, " It was flipped twice. So the answer is yes.\nQ: no")[1] == "yes"
    assert parse_few_shot(task, " I do not know.")[1] == ""


def test_wilson_interval():
    make = lambda ok: Prediction(0, "", "", "", "", "", ok)
    result = accuracy([make(True)] * 49 + [make(False)])
    assert result["accuracy"] == 98 and 89 < result["ci_low"] < 90 and result["ci_high"] > 99.6
    assert accuracy([make(False)] * 10)["ci_low"] == 0


def test_batched_generation_matches_one_at_a_time():
    model, tokenizer = tiny_student(seed=1)
    task = get_task("coin_flip")
    samples = task.split("test")[:6]
    batched = evaluate(model, tokenizer, task, samples, max_new_tokens=12, batch_size=6, bf16=False)
    single = evaluate(model, tokenizer, task, samples, max_new_tokens=12, batch_size=1, bf16=False)
    assert [p.output for p in batched] == [p.output for p in single]
    assert all(len(p.output) > 0 for p in single)


def test_bf16_inference_copy_is_close_to_fp32_and_leaves_the_model_alone():
    model, tokenizer = tiny_student(seed=1)
    model.lm_head.weight.requires_grad_(False)  # frozen head, as after training
    ids = torch.tensor([prompt_ids(tokenizer, "Is the coin still heads up? ###")])
    copy = inference_copy(model, bf16=True)
    # needed for CPU matmuls to fold the prefill's last position (see inference_copy)
    assert all(p.requires_grad for p in copy.parameters())
    assert copy is not model and copy.lm_head.weight.dtype == torch.bfloat16
    assert model.lm_head.weight.dtype == torch.float32  # the trained model stays fp32
    with torch.no_grad():
        exact, fast = model(ids).logits, copy(ids).logits.float()
    assert torch.allclose(exact, fast, atol=0.05, rtol=0.05)
    assert inference_copy(model, bf16=False) is model


def test_shared_prefix_cache_gives_the_same_greedy_outputs(monkeypatch):
    import cotlib.evaluation as evaluation
    from cotlib.prompts import few_shot_exemplars
    model, tokenizer = tiny_student(seed=1)
    with torch.no_grad():  # sharper random weights: outputs differ from prompt to prompt
        for p in model.parameters():
            p.mul_(8)
    task = get_task("coin_flip")
    exemplars = few_shot_exemplars(task)[:300]  # bytes for the tiny tokenizer
    prompts = [f"{exemplars}\nQ: {s.question}\nA:" for s in task.split("test")[:10]]
    run = lambda: evaluation.greedy_decode(model, tokenizer, prompts, 12, ["\nQ:"], batch_size=4,
                                      bf16=False)
    cached = run()
    monkeypatch.setattr(evaluation, "SHARED_PREFIX_MIN", 10**9)
    assert run() == cached
    assert len(set(cached)) > 5


def test_shared_prefix_leaves_every_prompt_a_token_of_its_own():
    from cotlib.evaluation import shared_prefix
    assert shared_prefix([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert shared_prefix([[1, 2, 3], [1, 2, 3]]) == 2
    assert shared_prefix([[7], [8, 9]]) == 0
    assert shared_prefix([[1, 2, 3]]) == 2
    assert shared_prefix([]) == 0


@pytest.mark.parametrize("drop", [True, False])
def test_finished_rows_leave_the_batch_without_changing_any_output(monkeypatch, drop):
    import cotlib.evaluation as evaluation
    model, tokenizer = tiny_student(seed=1)
    with torch.no_grad():  # sharper random weights: outputs differ from prompt to prompt
        for p in model.parameters():
            p.mul_(8)
    prompts = [f"Q: {s.question}\nA:" for s in get_task("coin_flip").split("test")[:12]]
    stop = ["8", "#"]  # strings these weights emit early in some rows, late or never in others
    reference = []  # the plain way: model.generate, one prompt at a time
    for prompt in prompts:
        ids = torch.tensor([prompt_ids(tokenizer, prompt)])
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=20, stop_strings=stop, tokenizer=tokenizer,
                             pad_token_id=tokenizer.pad_token_id)
        reference.append(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
    monkeypatch.setattr(evaluation, "DROP_FINISHED", drop)
    ours = evaluation.greedy_decode(model, tokenizer, prompts, 20, stop, batch_size=5, bf16=False)
    assert ours == reference
    lengths = [len(o) for o in ours]
    assert min(lengths) < 5 and max(lengths) > 15  # rows did finish at different steps


@pytest.mark.parametrize("task, output, ours, paper", [
    ("multiarith", " 3 + 4 = 7. --> 7 END", "7", "7"),
    ("multiarith", " 3 + 4 = 7, so 7 apples END", "", "7"),  # no -->: the paper takes the last number
    ("date_understanding", " Today is 05/01/2021. --> 05/01/2021 (F) END", "F", "F"),
    ("date_understanding", " ... the answer is (D) END", "", "D"),
    ("tracking_shuffled_objects", " --> Claire (A) END", "C", "C"),
    ("last_letter_concatenation", " ... --> y a j o END", "yajo", "yajo"),
    ("last_letter_concatenation", " the letters are y, a, j, o END", "", ""),
    ("coin_flip", " It was flipped twice, so yes it is. END", "", "yes"),
    ("strategy_qa", " --> no END", "no", "no"),
])
def test_paper_reading_beside_ours_on_hand_made_outputs(task, output, ours, paper):
    from cotlib.evaluation import paper_reading
    task = get_task(task)
    assert parse_completion(task, output)[1] == ours
    assert paper_reading(task, output) == paper
