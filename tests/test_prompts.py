import pytest

from cotlib.data import CotlibError
from cotlib.prompts import (Prompt, answer_prompt, few_shot_cot, reasoning_prompt, zero_shot,
                            zero_shot_cot)
from cotlib.tasks import get_task

Q = "Tom has 3 apples and buys 2 more. How many apples does he have?"


def test_zero_shot_cot_is_the_papers_prompt():
    prompt = zero_shot_cot(Q)
    assert prompt.text() == f"Q: {Q}\nA: Let's think step by step."


def test_answer_stage_appends_rationale_and_trigger():
    trigger = get_task("multiarith").trigger
    second = answer_prompt(zero_shot_cot(Q), "  3 + 2 = 5.\n", trigger)
    assert second.text() == (f"Q: {Q}\nA: Let's think step by step. 3 + 2 = 5.\n"
                             "Therefore, the answer (arabic numerals) is")


def test_renderings_of_one_prompt():
    prompt = zero_shot_cot(Q)
    assert prompt.messages() == [{"role": "user", "content": prompt.text()}]
    assert prompt.messages(prefill=True)[1] == {"role": "assistant",
                                                "content": "A: Let's think step by step."}
    chatml = prompt.chatml()
    assert chatml.startswith(f"<|im_start|>user\nQ: {Q}<|im_end|>\n<|im_start|>assistant\n")
    assert chatml.endswith("A: Let's think step by step.")  # the assistant turn stays open
    assert prompt.render("plain") == prompt.text() and prompt.render("chatml") == chatml
    with pytest.raises(CotlibError, match="unknown prompt template 'llama'"):
        prompt.render("llama")


def test_zero_shot_and_few_shot():
    assert zero_shot(Q, get_task("coin_flip").trigger).assistant == "A: The answer (Yes or No) is"
    task = get_task("last_letter_concatenation")
    few = few_shot_cot(task, "Take the last letters of each words in \"Ab Cd\" and concatenate them.")
    assert few.user.count("\nQ: ") >= 3 and few.user.endswith("concatenate them.")
    assert few.assistant == "A:" and "The answer is" in few.user


def test_unknown_method_and_missing_exemplars():
    with pytest.raises(CotlibError, match="unknown prompting method 'cot'"):
        reasoning_prompt("cot", get_task("svamp"), Q)
    with pytest.raises(CotlibError, match="no exemplars for task tracking_shuffled_objects"):
        few_shot_cot(get_task("tracking_shuffled_objects"), Q)
    assert isinstance(reasoning_prompt("zs", get_task("svamp"), Q), Prompt)
