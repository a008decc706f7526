"""The task-vocabulary student: same loss on kept ids, generation maps back, saves and loads."""
import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from cotlib.curation import curate
from cotlib.data import CotlibError
from cotlib.evaluation import greedy_decode
from cotlib.format import COMPLETION_END, prompt_text
from cotlib.students import (LOSSES, TrainConfig, collate, completion_loss, encode, load_student,
                             prepare_trainable, tiny_student, train)
from cotlib.tasks import get_task
from cotlib.teachers import recorded
from cotlib.vocabulary import VOCAB_FILE, TaskHead, cut_head, kept_ids, save, task_token_ids


@pytest.fixture(scope="module")
def data():
    task = get_task("last_letter_concatenation")
    samples = curate(task, recorded(task), task.split_indices()["train"])[:24]
    questions = [s.question for s in task.split("test")[:8]]
    return samples, questions


def texts(samples, questions):
    return [s.prompt + s.completion for s in samples] + [prompt_text(q) for q in questions]


def test_kept_ids_are_the_tokens_of_the_task_texts_and_the_special_tokens(data):
    samples, questions = data
    _, tokenizer = tiny_student()
    ids = task_token_ids(tokenizer, texts(samples, questions))
    assert ids == sorted(set(ids))
    assert set(tokenizer.all_special_ids) <= set(ids)
    assert 10 < len(ids) < len(tokenizer) - 100  # a real cut of the byte vocabulary
    for text in texts(samples, questions):
        assert set(tokenizer(text, add_special_tokens=False)["input_ids"]) <= set(ids)


def test_cut_head_gives_the_full_loss_with_removed_logits_masked(data):
    samples, questions = data
    model, tokenizer = tiny_student()
    prepare_trainable(model, TrainConfig())
    batch = collate([encode(tokenizer, s, 512) for s in samples[:6]], tokenizer.pad_token_id)
    ids = task_token_ids(tokenizer, texts(samples, questions))
    predicts = batch["targets"][:, 1:]
    labels = batch["input_ids"][:, 1:][predicts]
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    masked = torch.full((logits.shape[-1],), float("-inf"))
    masked[ids] = 0
    expected = F.cross_entropy(logits[:, :-1][predicts] + masked, labels)
    expected.backward()
    expected_grad = model.model.layers[-1].mlp.down_proj.weight.grad.clone()
    unmasked = F.cross_entropy(logits[:, :-1][predicts], labels).item()
    cut_head(model, ids)
    assert isinstance(model.get_output_embeddings(), TaskHead)
    for loss in LOSSES:
        model.zero_grad()
        value = completion_loss(model, batch, loss)
        value.backward()
        assert value.item() == pytest.approx(expected.item(), rel=1e-5), loss
        grad = model.model.layers[-1].mlp.down_proj.weight.grad
        assert torch.allclose(grad, expected_grad, atol=1e-6), loss
    assert value.item() < unmasked  # the removed words took probability mass


def test_a_label_outside_the_vocabulary_is_refused(data):
    samples, _ = data
    model, tokenizer = tiny_student()
    batch = collate([encode(tokenizer, s, 512) for s in samples[:2]], tokenizer.pad_token_id)
    cut_head(model, sorted(tokenizer.all_special_ids))
    with pytest.raises(CotlibError, match="not in the task vocabulary"):
        completion_loss(model, batch)


def test_task_vocab_needs_a_frozen_embedding():
    with pytest.raises(CotlibError, match="task_vocab=True needs freeze_embeddings=True"):
        TrainConfig(task_vocab=True, freeze_embeddings=False)


def test_a_trained_task_vocabulary_student_round_trips(data, tmp_path):
    samples, questions = data
    model, tokenizer = tiny_student()
    config = TrainConfig(epochs=1, batch_size=8, bf16=False, task_vocab=True, learning_rate=1e-2)
    model = train(model, tokenizer, samples, config, tmp_path / "run", log=lambda _: None,
                  questions=questions)["model"]
    ids = kept_ids(model).tolist()
    assert ids == task_token_ids(tokenizer, texts(samples, questions))
    prompts = [prompt_text(q) for q in questions]
    stop = [COMPLETION_END.strip()]
    outputs = greedy_decode(model, tokenizer, prompts, 24, stop, bf16=False)
    save(model, tokenizer, tmp_path / "student")
    assert isinstance(model.get_output_embeddings(), TaskHead)  # saving leaves the cut in place
    assert json.loads((tmp_path / "student" / VOCAB_FILE).read_text()) == ids
    loaded, loaded_tokenizer = load_student(str(tmp_path / "student"))
    assert kept_ids(loaded).tolist() == ids
    assert greedy_decode(loaded, loaded_tokenizer, prompts, 24, stop, bf16=False) == outputs
    for output in outputs:  # what it writes is spelled with kept ids only
        assert set(tokenizer(output, add_special_tokens=False)["input_ids"]) <= set(ids)
    # a plain transformers load sees a standard full-vocabulary model with the same head rows
    script = ("import sys, json, torch; from transformers import AutoModelForCausalLM; "
              "m = AutoModelForCausalLM.from_pretrained(sys.argv[1]); "
              "print(json.dumps(m.get_output_embeddings().weight[json.loads(sys.argv[2])].tolist()))")
    plain = subprocess.run([sys.executable, "-c", script, str(tmp_path / "student"), json.dumps(ids)],
                           capture_output=True, text=True, check=True)
    rows = torch.tensor(json.loads(plain.stdout))
    assert torch.allclose(rows, loaded.get_output_embeddings().weight, atol=1e-6)
