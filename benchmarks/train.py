"""Fine-tuning throughput: cotlib's training step against the peers a user would pick.

python benchmarks/train.py [--task multiarith] [--steps 4] [--batch-size 8] [--skip-peers]
Side by side in one run, same student (Gemma-3-270M), same real curated Fine-tune-CoT
samples, same thread count: transformers.Trainer fp32 and bf16, TRL's SFTTrainer with its
defaults on prompt/completion data, cotlib's fast path with our fused head loss, with torch's
`F.linear_cross_entropy`, and with the task vocabulary. Then the two fused losses alone on
the 262k-word head. Tokens/s counts real (non-padding) tokens; the first step of each run is
a warm-up and is not timed. Nothing else should be running.
"""
import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainerCallback, TrainingArguments

from cotlib.curation import curate
from cotlib.students import (GEMMA, FrozenHead, FrozenHeadCrossEntropy, TrainConfig, collate,
                             encode, load_student, train)
from cotlib.tasks import get_task
from cotlib.teachers import recorded
from peak import peak


class Clock(TrainerCallback):
    """Seconds of each optimizer step of a transformers Trainer."""

    def __init__(self):
        self.times = []

    def on_step_begin(self, *args, **kwargs):
        self.times.append(-time.perf_counter())

    def on_step_end(self, *args, **kwargs):
        self.times[-1] += time.perf_counter()


def counted(collator, tokens: list[int]):
    """`collator`, recording each batch's real tokens."""
    def collate_and_count(features):
        batch = collator(features)
        mask = batch.get("attention_mask")
        tokens.append(int(mask.sum()) if mask is not None else batch["input_ids"].numel())
        return batch
    return collate_and_count


def trainer_baseline(samples, batch_size: int, steps: int, bf16: bool = False) -> dict:
    """transformers.Trainer, every weight trained, logits over the full vocabulary."""
    model, tokenizer = load_student(GEMMA)
    encoded = [encode(tokenizer, s, 512) for s in samples]
    rows = [{"input_ids": ids, "prompt_length": n} for ids, n in encoded]
    tokens, clock = [], Clock()

    def collator(features):  # prompt and padding positions get label -100 (HF convention)
        batch = collate([(f["input_ids"], f["prompt_length"]) for f in features],
                        tokenizer.pad_token_id)
        labels = batch["input_ids"].masked_fill(~batch.pop("targets"), -100)
        return {**batch, "labels": labels}

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(out, per_device_train_batch_size=batch_size, max_steps=steps + 1,
                                 learning_rate=1e-4, save_strategy="no", report_to=[], bf16=bf16,
                                 use_cpu=True, dataloader_num_workers=0, logging_steps=10_000,
                                 remove_unused_columns=False, seed=0)
        Trainer(model=model, args=args, train_dataset=rows, data_collator=counted(collator, tokens),
                callbacks=[clock]).train()
    return {"step_tokens": tokens[:len(clock.times)], "step_seconds": clock.times}


def trl_baseline(samples, batch_size: int, steps: int) -> dict:
    """TRL's SFTTrainer with its defaults on prompt/completion records (completion-only loss,
    bf16, gradient checkpointing), as its documentation shows."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = load_student(GEMMA)
    data = Dataset.from_list([{"prompt": s.prompt, "completion": s.completion} for s in samples])
    tokens, clock = [], Clock()
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(out, per_device_train_batch_size=batch_size, max_steps=steps + 1,
                         save_strategy="no", report_to=[], use_cpu=True, logging_steps=10_000,
                         seed=0, bf16=torch.cpu._is_avx512_bf16_supported()
                         or torch.cpu._is_amx_tile_supported())
        trainer = SFTTrainer(model=model, args=args, train_dataset=data,
                             processing_class=tokenizer, callbacks=[clock])
        trainer.data_collator = counted(trainer.data_collator, tokens)
        trainer.train()
    return {"step_tokens": tokens[:len(clock.times)], "step_seconds": clock.times}


def cotlib_run(samples, batch_size: int, steps: int, questions=(), **settings) -> dict:
    model, tokenizer = load_student(GEMMA)
    config = TrainConfig(epochs=1, batch_size=batch_size, max_steps=steps + 1,
                         checkpoint_every=10_000, **settings)
    with tempfile.TemporaryDirectory() as out:
        result = train(model, tokenizer, samples, config, Path(out), log=lambda _: None,
                       questions=questions)
    return {**result, "head_rows": len(result["model"].get_output_embeddings().weight)}


def fused_losses(positions: int, repeats: int = 1) -> None:
    """Our fused head loss against torch's F.linear_cross_entropy on Gemma's bf16 head:
    loss, gradient and seconds of forward + backward over `positions` completion tokens."""
    model, _ = load_student(GEMMA)
    weight = model.get_output_embeddings().weight.detach()
    torch.manual_seed(0)
    hidden = torch.randn(positions, weight.shape[1]) * 2
    labels = torch.randint(0, len(weight), (positions,))
    head = FrozenHead(weight, torch.bfloat16)
    library = lambda **options: lambda h: F.linear_cross_entropy(
        h.to(torch.bfloat16), head.weight, labels, reduction="sum",
        options=torch.nn.LinearCrossEntropyOptions(**options))
    ways = {"ours (FrozenHeadCrossEntropy)": lambda h: FrozenHeadCrossEntropy.apply(h, labels, head),
            "torch linear_cross_entropy, defaults": library(),
            "torch linear_cross_entropy, accurate": library(acc_policy="accurate")}
    results = {}
    for name, way in ways.items():
        best = float("inf")
        for _ in range(repeats + 1):  # the first is a warm-up
            h = hidden.clone().requires_grad_(True)
            started = time.perf_counter()
            loss = way(h)
            loss.backward()
            best = min(best, time.perf_counter() - started)
        results[name] = (loss.item(), h.grad.float(), best)
    ours, grad, base = results[next(iter(ways))]
    print(f"\nfused head loss alone: {positions} positions x {len(weight)} words, bf16 head, "
          f"best of {repeats}")
    for name, (loss, g, seconds) in results.items():
        error = ((g - grad).norm() / grad.norm()).item()
        print(f"{name:<32} {seconds:6.2f} s  {base / seconds:5.2f}x  loss {loss:.2f} "
              f"(ours {ours:.2f})  gradient relative difference {error:.1e}", flush=True)


def flops_per_step(model, tokens: int, completion: int, full: bool, lora: bool) -> tuple[float, float]:
    """(non-embedding matmul FLOPs, LM-head FLOPs) of a training step."""
    head = model.get_output_embeddings().weight
    body = sum(p.numel() for p in model.parameters()) - head.numel()
    body_flops = (4 if lora else 6) * body * tokens  # forward 2, backward 2 (inputs) + 2 (weights)
    positions = tokens if full else completion
    head_flops = (6 if full else 4) * head.numel() * positions  # + weight gradient if trained
    return body_flops, head_flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="multiarith")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--skip-peers", action="store_true", help="only cotlib's paths")
    args = parser.parse_args()
    task = get_task(args.task)
    samples = curate(task, recorded(task), task.split_indices()["train"])
    questions = [s.question for s in task.split("test")]
    model, tokenizer = load_student(GEMMA)
    encoded = [encode(tokenizer, s, 512) for s in samples]
    completion_share = sum(len(ids) - n for ids, n in encoded) / sum(len(ids) for ids, _ in encoded)
    peaks = {"fp32": peak(torch.float32), "bf16": peak(torch.bfloat16)}
    print(f"{args.task}: {len(samples)} curated samples, completion tokens {completion_share:.0%} "
          f"of all; threads {torch.get_num_threads()}; peak fp32 {peaks['fp32']:.0f}, "
          f"bf16 {peaks['bf16']:.0f} GFLOP/s; batch {args.batch_size}, {args.steps} timed steps")
    fast = dict(loss="fused")
    runs = {  # name: (runner, settings, full logits everywhere, LoRA)
        "Trainer fp32 (all weights)": (trainer_baseline, {}, True, False),
        "Trainer bf16=True (all weights)": (trainer_baseline, dict(bf16=True), True, False),
        "TRL SFTTrainer, defaults": (trl_baseline, {}, False, False),
        "cotlib fast, our fused loss": (cotlib_run, fast, False, False),
        "cotlib fast, torch linear_cross_entropy": (cotlib_run, dict(loss="library"), False, False),
        "cotlib fast + task vocabulary": (cotlib_run, dict(task_vocab=True, questions=questions),
                                          False, False),
    }
    if args.skip_peers:
        runs = {k: v for k, v in runs.items() if k.startswith("cotlib")}
    rates = {}
    for name, (runner, settings, full, lora) in runs.items():
        result = runner(samples, args.batch_size, args.steps, **settings)
        tokens, seconds = sum(result["step_tokens"][1:]), sum(result["step_seconds"][1:])
        rates[name] = rate = tokens / seconds
        rows = result.get("head_rows", len(tokenizer))
        body, head = flops_per_step(model, tokens, round(tokens * completion_share), full, lora)
        head *= rows / len(tokenizer)
        print(f"{name:<42} {rate:7.1f} tokens/s  {rate / next(iter(rates.values())):5.2f}x  "
              f"head {rows:>6} rows; model FLOP/s {(body + head) / seconds / 1e9:6.1f} G = "
              f"{100 * (body + head) / seconds / 1e9 / peaks['bf16']:3.0f} % of the bf16 peak",
              flush=True)
    peers = [v for k, v in rates.items() if not k.startswith("cotlib")]
    if peers:
        best = max(rates.values())
        print(f"\nfastest cotlib path: {best / peers[0]:.2f}x the fp32 Trainer, "
              f"{best / max(peers):.2f}x the best peer")
    fused_losses(positions=256)


if __name__ == "__main__":
    main()
