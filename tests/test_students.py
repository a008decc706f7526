import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from cotlib.curation import curate
from cotlib.data import CotlibError
from cotlib.students import (LOSSES, FrozenHead, TrainConfig, collate, completion_loss, encode,
                             fusable_head, length_buckets, load_student, prepare_trainable,
                             tiny_student, train)
from cotlib.tasks import get_task
from cotlib.teachers import recorded
from conftest import PROJECT

SCRIPT = PROJECT / "tests" / "train_tiny.py"


@pytest.fixture(scope="module")
def batch():
    task = get_task("coin_flip")
    samples = curate(task, recorded(task), task.split_indices()["train"])[:4]
    _, tokenizer = tiny_student()
    return collate([encode(tokenizer, s, 512) for s in samples], tokenizer.pad_token_id)


def test_loss_is_on_completion_tokens_only(batch):
    model, _ = tiny_student()
    labels = batch["input_ids"].masked_fill(~batch["targets"], -100)  # the standard HF recipe
    reference = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      labels=labels).loss
    for loss in LOSSES:
        assert completion_loss(model, batch, loss).item() == pytest.approx(reference.item(), rel=1e-5)
    # prompt positions and padding carry no target
    assert not batch["targets"][:, 0].any() and not (batch["targets"] & (batch["attention_mask"] == 0)).any()


def gradients(batch, loss, freeze, dtype=None):
    model, _ = tiny_student()
    prepare_trainable(model, TrainConfig(freeze_embeddings=freeze))
    frozen = FrozenHead(model.lm_head.weight, dtype) if freeze else None
    completion_loss(model, batch, loss, frozen=frozen).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad])


@pytest.mark.parametrize("freeze", [False, True])
def test_every_loss_path_gives_the_same_gradients(batch, freeze):
    plain = gradients(batch, "plain", freeze)
    for loss in ("positions", "fused", "library"):
        assert torch.allclose(plain, gradients(batch, loss, freeze), atol=1e-6), loss


def test_fused_head_is_used_only_when_frozen_and_matches_in_bf16(batch):
    model, _ = tiny_student()
    assert fusable_head(model) is None  # trainable head: plain cross-entropy on kept positions
    prepare_trainable(model, TrainConfig(freeze_embeddings=True))
    assert fusable_head(model) is model.lm_head
    # a bf16 copy of the head, as in training under bf16 autocast: close to fp32
    plain = gradients(batch, "plain", True)
    bf16 = gradients(batch, "fused", True, torch.bfloat16)
    assert torch.allclose(plain, bf16, atol=2e-3, rtol=2e-2)
    with pytest.raises(CotlibError, match="unknown loss 'fast'"):
        completion_loss(model, batch, "fast")


def test_length_buckets_cover_each_row_once_with_less_padding():
    lengths = [random.Random(i).randint(20, 300) for i in range(500)]
    steps = length_buckets(lengths, 8, seed=3)
    assert sorted(r for step in steps for r in step) == list(range(500))
    assert len(steps) == 63 and steps == length_buckets(lengths, 8, seed=3)
    padded = lambda steps: sum(len(s) * max(lengths[r] for r in s) for s in steps)
    order = random.Random(3).sample(range(500), 500)
    shuffled = [order[i:i + 8] for i in range(0, 500, 8)]
    assert padded(steps) < 0.75 * padded(shuffled)


def test_freezing_and_lora():
    model, _ = tiny_student()
    frozen = prepare_trainable(model, TrainConfig(freeze_embeddings=True))
    assert not frozen.get_input_embeddings().weight.requires_grad
    lora = prepare_trainable(tiny_student()[0], TrainConfig(lora_r=4))
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_unknown_student_is_a_clear_error(tmp_path):
    with pytest.raises(CotlibError, match="student 'gpt-9' cannot be loaded"):
        load_student("gpt-9")
    with pytest.raises(CotlibError, match="cannot be loaded"):
        load_student(str(tmp_path))


def unusable_model_dirs(tmp_path):
    """Folders with a config.json that are no usable model: bogus configs, no tokenizer."""
    for name, config in [("not_json", "{oops"), ("unknown_type", '{"model_type": "nonsense"}')]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(config)
        yield tmp_path / name
    tiny_student()[0].save_pretrained(tmp_path / "no_tokenizer")
    yield tmp_path / "no_tokenizer"


def test_a_folder_that_is_not_a_usable_model_is_a_clear_error(tmp_path):
    for path in unusable_model_dirs(tmp_path):
        with pytest.raises(CotlibError, match=f"cannot load a causal LM from {path}: ") as e:
            load_student(str(path))
        assert "\n" not in str(e.value)
    with pytest.raises(CotlibError, match="TrainConfig epochs=0: expected"):
        TrainConfig(epochs=0)


def train_tiny(out, *extra, launcher=(sys.executable,)):
    return subprocess.run([*launcher, str(SCRIPT), str(out), *extra], cwd=PROJECT,
                          capture_output=True, text=True, timeout=600)


def weights(path):
    return torch.load(path / "final.pt")


def test_resume_after_sigkill_gives_the_same_weights(tmp_path):
    reference = tmp_path / "uninterrupted"
    assert train_tiny(reference).returncode == 0
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, str(SCRIPT), str(killed), "--sleep", "1"],
                               cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (killed / "checkpoint" / "state.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "final.pt").exists()
    resumed = train_tiny(killed)
    assert resumed.returncode == 0 and "resumed from step" in resumed.stdout
    for name, tensor in weights(reference).items():
        assert torch.allclose(tensor, weights(killed)[name], atol=1e-6), name


def test_two_processes_match_one(tmp_path):
    one = train_tiny(tmp_path / "one", "--batch-size", "4")
    assert one.returncode == 0, one.stderr
    # torchrun starts the processes (--standalone: on a free local port); Accelerator reads
    # their environment: DDP over gloo
    two = train_tiny(tmp_path / "two", "--batch-size", "2", launcher=(
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"))
    assert "MULTI_CPU 2" in two.stdout, two.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-2000:]
    for name, tensor in weights(tmp_path / "one").items():
        assert torch.allclose(tensor, weights(tmp_path / "two")[name], atol=1e-4), name


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    assert train_tiny(tmp_path / "one", "--batch-size", "4").returncode == 0
    assert train_tiny(tmp_path / "accum", "--batch-size", "2", "--grad-accum", "2").returncode == 0
    for name, tensor in weights(tmp_path / "one").items():
        assert torch.allclose(tensor, weights(tmp_path / "accum")[name], atol=1e-5), name


def test_keep_best_chooses_the_epoch_on_validation_never_on_test(tmp_path):
    task = get_task("coin_flip")
    samples = curate(task, recorded(task), task.split_indices()["train"])[:8]
    model, tokenizer = tiny_student()
    validation, test = iter([10.0, 30.0, 20.0]), iter([90.0, 10.0, 50.0])  # test favours epoch 1
    snapshots = []

    def scores(student):
        snapshots.append({k: v.clone() for k, v in student.state_dict().items()})
        return {"validation": next(validation), "test": next(test)}

    config = TrainConfig(epochs=3, batch_size=4, bf16=False, keep="best", learning_rate=1e-2,
                         checkpoint_every=100)
    result = train(model, tokenizer, samples, config, tmp_path / "run", log=lambda _: None,
                   scores=scores)  # a run folder not made yet (measure makes it later)
    assert [e["validation"] for e in result["epochs"]] == [10.0, 30.0, 20.0]
    assert [e["epoch"] for e in result["epochs"]] == [1, 2, 3]
    kept = result["model"].state_dict()
    assert all(torch.equal(kept[k], snapshots[1][k]) for k in kept)  # epoch 2's weights
    assert not all(torch.equal(kept[k], snapshots[2][k]) for k in kept)


def test_keep_best_without_validation_scores_is_refused(tmp_path):
    model, tokenizer = tiny_student()
    with pytest.raises(CotlibError, match="keep='best' needs validation scores"):
        train(model, tokenizer, [], TrainConfig(keep="best"), tmp_path)
    with pytest.raises(CotlibError, match="schedule='cosine'"):
        TrainConfig(schedule="cosine")


def test_constant_schedule_keeps_the_learning_rate(tmp_path):
    task = get_task("coin_flip")
    samples = curate(task, recorded(task), task.split_indices()["train"])[:8]
    seen = []
    for schedule in ("constant", "linear"):
        model, tokenizer = tiny_student()
        config = TrainConfig(epochs=2, batch_size=4, bf16=False, schedule=schedule)
        original = torch.optim.AdamW.step

        def step(self, *args, **kwargs):
            seen.append((schedule, self.param_groups[0]["lr"]))
            return original(self, *args, **kwargs)

        torch.optim.AdamW.step = step
        try:
            train(model, tokenizer, samples, config, tmp_path / schedule, log=lambda _: None)
        finally:
            torch.optim.AdamW.step = original
    assert {lr for s, lr in seen if s == "constant"} == {1e-4}
    linear = [lr for s, lr in seen if s == "linear"]
    assert linear == sorted(linear, reverse=True) and linear[-1] < linear[0]  # decays
