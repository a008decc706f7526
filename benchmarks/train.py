"""Fine-tuning throughput: cotlib's training step vs a plain transformers.Trainer, side by side.

python benchmarks/train.py [--task multiarith] [--steps 4] [--batch-size 8]
Same student (Gemma-3-270M), same real curated Fine-tune-CoT samples, same thread count.
Tokens/s counts real (non-padding) tokens; the first step of each run is a warm-up and is
not timed. Model FLOP utilisation is printed against this machine's fp32 and bf16 peaks.
"""
import argparse
import tempfile
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from cotlib.curation import curate
from cotlib.students import GEMMA, TrainConfig, collate, encode, load_student, train
from cotlib.tasks import get_task
from cotlib.teachers import recorded
from peak import peak


def trainer_baseline(samples, batch_size: int, steps: int) -> dict:
    """transformers.Trainer, fp32, every weight trained, logits over the full vocabulary."""
    model, tokenizer = load_student(GEMMA)
    encoded = [encode(tokenizer, s, 512) for s in samples]
    rows = [{"input_ids": ids, "prompt_length": n} for ids, n in encoded]
    tokens, times = [], []

    def collator(features):  # prompt and padding positions get label -100 (HF convention)
        batch = collate([(f["input_ids"], f["prompt_length"]) for f in features],
                        tokenizer.pad_token_id)
        tokens.append(int(batch["attention_mask"].sum()))
        labels = batch["input_ids"].masked_fill(~batch.pop("targets"), -100)
        return {**batch, "labels": labels}

    class Clock(TrainerCallback):
        def on_step_begin(self, *args, **kwargs):
            times.append(-time.perf_counter())

        def on_step_end(self, *args, **kwargs):
            times[-1] += time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(out, per_device_train_batch_size=batch_size, max_steps=steps + 1,
                                 learning_rate=1e-4, save_strategy="no", report_to=[],
                                 use_cpu=True, dataloader_num_workers=0, logging_steps=10_000,
                                 remove_unused_columns=False, seed=0)
        Trainer(model=model, args=args, train_dataset=rows, data_collator=collator,
                callbacks=[Clock()]).train()
    return {"step_tokens": tokens[:len(times)], "step_seconds": times}


def cotlib_run(samples, batch_size: int, steps: int, **settings) -> dict:
    model, tokenizer = load_student(GEMMA)
    config = TrainConfig(epochs=1, batch_size=batch_size, max_steps=steps + 1,
                         checkpoint_every=10_000, **settings)
    with tempfile.TemporaryDirectory() as out:
        return train(model, tokenizer, samples, config, Path(out), log=lambda _: None)


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
    args = parser.parse_args()
    task = get_task(args.task)
    samples = curate(task, recorded(task), task.split_indices()["train"])
    model, tokenizer = load_student(GEMMA)
    encoded = [encode(tokenizer, s, 512) for s in samples]
    completion_share = sum(len(ids) - n for ids, n in encoded) / sum(len(ids) for ids, _ in encoded)
    peaks = {"fp32": peak(torch.float32), "bf16": peak(torch.bfloat16)}
    print(f"{args.task}: {len(samples)} curated samples, completion tokens {completion_share:.0%} "
          f"of all; threads {torch.get_num_threads()}; peak fp32 {peaks['fp32']:.0f}, "
          f"bf16 {peaks['bf16']:.0f} GFLOP/s")
    runs = {
        "Trainer (fp32, full vocab, all weights)": (trainer_baseline, {}, True, False),
        "cotlib plain (fp32, full vocab, no buckets)": (cotlib_run, dict(
            loss="plain", bf16=False, bucket=False, freeze_embeddings=False), True, False),
        "cotlib fast (fused head, bf16, buckets)": (cotlib_run, {}, False, False),
        "cotlib fast + LoRA r=16": (cotlib_run, dict(lora_r=16, learning_rate=1e-3), False, True),
    }
    base = None
    for name, (runner, settings, full, lora) in runs.items():
        result = runner(samples, args.batch_size, args.steps, **settings)
        tokens, seconds = sum(result["step_tokens"][1:]), sum(result["step_seconds"][1:])
        rate = tokens / seconds
        base = base or rate
        body, head = flops_per_step(model, tokens, round(tokens * completion_share), full, lora)
        print(f"{name:<45} {rate:7.1f} tokens/s  {rate / base:5.2f}x   "
              f"non-embedding {body / seconds / 1e9:6.1f} GFLOP/s = {100 * body / seconds / 1e9 / peaks['fp32']:3.0f} % fp32 peak; "
              f"all {(body + head) / seconds / 1e9:6.1f} GFLOP/s = {100 * (body + head) / seconds / 1e9 / peaks['fp32']:3.0f} % fp32, "
              f"{100 * (body + head) / seconds / 1e9 / peaks['bf16']:3.0f} % bf16 peak", flush=True)


if __name__ == "__main__":
    main()
