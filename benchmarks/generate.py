"""Evaluation generation: cotlib's batched generation vs `model.generate` at batch size 1.

python benchmarks/generate.py [--run runs/coin_flip/fine_tune_cot-XXXX] [--n 32] [--no-batch-1]
A fine-tuned student from a finished run (default: the newest Fine-tune-CoT run), greedy on
the same test questions, stopping at END: `model.generate` at batch 1, then cotlib batched,
fp32 and bf16, with finished rows waiting for the longest (as in `model.generate`) and
leaving the batch. Prints tokens/s, the ratios to the first way, and the accuracies.

python benchmarks/generate.py --task-vocab [--run ...] [--n 150] [--batch-size 64]
The same fine-tuned student with its full head and cut to the task vocabulary (the tokens
of its curated training completions and of the questions: vocabulary.task_token_ids), bf16,
same batches. Prints tokens/s, the ratio, and how many outputs and answers agree.

python benchmarks/generate.py --few-shot coin_flip [--n 64]
The base student on few-shot-CoT prompts: the exemplars every prompt shares run once
(cached) vs in every row, bf16, same batches. Prints seconds, the ratio, and the answers.
"""
import argparse
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cotlib.format import COMPLETION_END, prompt_text
import cotlib.evaluation as evaluation
from cotlib.evaluation import evaluate, greedy_decode, parse_completion
from cotlib.data import runs_root
from cotlib.students import GEMMA, load_student, prompt_ids
from cotlib.curation import curate
from cotlib.tasks import get_task
from cotlib.teachers import recorded
from cotlib.vocabulary import cut_head, task_token_ids


def batch_of_one(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """The plain way: one prompt at a time, fp32, `model.generate`."""
    outputs = []
    for prompt in prompts:
        ids = torch.tensor([prompt_ids(tokenizer, prompt)])
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens, stop_strings=[COMPLETION_END.strip()],
                             tokenizer=tokenizer, pad_token_id=tokenizer.pad_token_id)
        outputs.append(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
    return outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", type=Path, help="a finished fine_tune_cot run directory")
    parser.add_argument("--n", type=int, default=32, help="test questions")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--no-batch-1", action="store_true", help="skip the slow batch-1 way")
    parser.add_argument("--few-shot", metavar="TASK", help="compare shared-prefix caching instead")
    parser.add_argument("--task-vocab", action="store_true",
                        help="compare the full head with the task-vocabulary head instead")
    args = parser.parse_args()
    if args.few_shot:
        return few_shot(get_task(args.few_shot), args.n, args.batch_size)
    run = args.run or max(runs_root().glob("*/fine_tune_cot-*/model"), key=lambda p: p.stat().st_mtime).parent
    if args.task_vocab:
        return task_vocabulary(run, args.n, args.batch_size, args.max_new_tokens)
    task = get_task(run.parent.name)
    model = AutoModelForCausalLM.from_pretrained(run / "model", dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    samples = task.split("test")[:args.n]
    prompts = [prompt_text(s.question) for s in samples]
    print(f"{run}: {len(prompts)} {task.name} test questions, threads {torch.get_num_threads()}")
    run_ours = lambda bf16, drop: switched("DROP_FINISHED", drop, lambda: greedy_decode(
        model, tokenizer, prompts, args.max_new_tokens, [COMPLETION_END.strip()], args.batch_size, bf16))
    ways = {
        "model.generate, batch 1, fp32": lambda: batch_of_one(model, tokenizer, prompts, args.max_new_tokens),
        f"cotlib, batch {args.batch_size}, fp32": lambda: run_ours(False, True),
        f"cotlib, batch {args.batch_size}, bf16, rows wait": lambda: run_ours(True, False),
        f"cotlib, batch {args.batch_size}, bf16": lambda: run_ours(True, True),
    }
    if args.no_batch_1:
        del ways["model.generate, batch 1, fp32"]
    base, reference = None, None
    for name, way in ways.items():
        started = time.perf_counter()
        outputs = way()
        seconds = time.perf_counter() - started
        tokens = sum(len(tokenizer(o, add_special_tokens=False)["input_ids"]) for o in outputs)
        predicted = [parse_completion(task, o)[1] for o in outputs]
        correct = sum(task.is_correct(p, s.answer) for p, s in zip(predicted, samples))
        reference = reference or predicted
        same = sum(p == r for p, r in zip(predicted, reference))
        base = base or tokens / seconds
        print(f"{name:<36} {seconds:6.1f} s {tokens / seconds:7.1f} tokens/s  {tokens / seconds / base:5.2f}x  "
              f"accuracy {correct}/{len(samples)}  same answers as the first: {same}/{len(samples)}",
              flush=True)


def task_vocabulary(run: Path, n: int, batch_size: int, max_new_tokens: int) -> None:
    """Full head against the task-vocabulary head, same weights, greedy, bf16, batch `batch_size`."""
    task = get_task(run.parent.name)
    model, tokenizer = load_student(str(run / "model"))
    samples = task.split("test")[:n]
    prompts = [prompt_text(s.question) for s in samples]
    curated = curate(task, recorded(task), task.split_indices()["train"])
    texts = [c.prompt + c.completion for c in curated] + [prompt_text(s.question) for s in task.split("test")]
    ids = task_token_ids(tokenizer, texts)
    print(f"{run}: {len(prompts)} {task.name} test questions, batch {batch_size}, threads "
          f"{torch.get_num_threads()}; task vocabulary {len(ids)} of {len(tokenizer)} tokens")
    results, base = {}, None
    for name in ("full head (262k words)", "task-vocabulary head"):
        if name.startswith("task"):
            cut_head(model, ids)
        started = time.perf_counter()
        outputs = greedy_decode(model, tokenizer, prompts, max_new_tokens, [COMPLETION_END.strip()],
                                batch_size, bf16=None)
        seconds = time.perf_counter() - started
        tokens = sum(len(tokenizer(o, add_special_tokens=False)["input_ids"]) for o in outputs)
        predicted = [parse_completion(task, o)[1] for o in outputs]
        results[name] = outputs
        base = base or tokens / seconds
        first = next(iter(results.values()))
        print(f"{name:<24} {seconds:6.1f} s {tokens / seconds:7.1f} tokens/s  "
              f"{tokens / seconds / base:5.2f}x  accuracy "
              f"{sum(task.is_correct(p, s.answer) for p, s in zip(predicted, samples))}/{len(samples)}"
              f"  identical outputs: {sum(a == b for a, b in zip(outputs, first))}/{len(samples)}",
              flush=True)


def switched(name: str, value, way):
    """`way()` with cotlib.evaluation.<name> set to `value`."""
    kept = getattr(evaluation, name)
    setattr(evaluation, name, value)
    try:
        return way()
    finally:
        setattr(evaluation, name, kept)


def few_shot(task, n: int, batch_size: int) -> None:
    model, tokenizer = load_student(GEMMA)
    samples = task.split("test")[:n]
    print(f"{GEMMA}: few-shot-CoT on {len(samples)} {task.name} test questions, batch {batch_size}")
    results, base = {}, None
    for name, minimum in [("exemplars in every row", 10**9),
                          ("exemplars cached once", evaluation.SHARED_PREFIX_MIN)]:
        started = time.perf_counter()
        results[name] = switched("SHARED_PREFIX_MIN", minimum, lambda: evaluate(
            model, tokenizer, task, samples, "few_shot_cot", batch_size=batch_size))
        seconds = time.perf_counter() - started
        base = base or seconds
        first = next(iter(results.values()))
        print(f"{name:<24} {seconds:7.1f} s  {base / seconds:5.2f}x  accuracy "
              f"{sum(p.correct for p in results[name])}/{len(samples)}  same answers: "
              f"{sum(p.predicted == q.predicted for p, q in zip(results[name], first))}, identical "
              f"outputs: {sum(p.output == q.output for p, q in zip(results[name], first))}", flush=True)


if __name__ == "__main__":
    main()
