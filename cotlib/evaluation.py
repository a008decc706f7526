"""Evaluation: batched greedy generation, answer parsing, accuracy with a 95 % interval.

Fine-tuned students answer after `-->` and stop at `END`; the base-model baselines
(zero-shot, Zero-shot-CoT, few-shot-CoT) are prompted as in the paper.
"""
from __future__ import annotations

import math
import re
from copy import deepcopy
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from .format import ANSWER_SEP, COMPLETION_END, prompt_text, read_answer, split_completion
from .data import CotlibError
from .students import prompt_ids, use_bf16
from .prompts import answer_prompt, few_shot_cot, zero_shot, zero_shot_cot
from .tasks import Sample, Task
from .vocabulary import kept_ids

METHODS = ("fine_tune", "vanilla", "zero_shot", "zero_shot_cot", "few_shot_cot")


@dataclass(frozen=True)
class Prediction:
    sample_index: int
    question: str
    output: str  # what the student generated
    rationale: str
    predicted: str
    answer: str
    correct: bool


def parse_completion(task: Task, output: str, answer_format: str = "paper") -> tuple[str, str]:
    """(rationale, predicted answer) of ` <rationale> --> <answer> END`; no `-->`, no answer."""
    rationale, answer = split_completion(output)
    return rationale, read_answer(task, answer, answer_format) if answer is not None else ""


def paper_reading(task: Task, output: str) -> str:
    """The official code's reading of a fine-tuned completion (the paper's numbers): the first
    candidate after `-->`, else the last one anywhere; Last Letter is the whole tail after
    `-->` without quotes, dots and whitespace."""
    head, sep, tail = output.split(COMPLETION_END.strip())[0].partition(ANSWER_SEP.strip())
    if task.answer_type == "letters":
        return re.sub(r"[\"'.\s]", "", tail) if sep else ""
    text = tail if sep else head
    if task.answer_type == "number":
        found = re.findall(r"-?\d+\.?\d*", text.replace(",", ""))
    elif task.answer_type == "choice":
        found = re.findall(f"[{task.letters}]", text)
    else:
        found = re.findall(r"\b(yes|no)\b", text.lower())
    return (found[0] if sep else found[-1]).rstrip(".") if found else ""


def parse_few_shot(task: Task, output: str) -> tuple[str, str]:
    """Few-shot-CoT: the answer follows the last "answer is" of the first reply."""
    reply = output.split("\nQ:")[0]
    rationale, sep, answer = reply.rpartition("answer is")
    return (rationale.strip(), task.extract(answer)) if sep else (reply.strip(), "")


SHARED_PREFIX_MIN = 32  # tokens all prompts start with (few-shot exemplars): computed once
DROP_FINISHED = True  # finished rows leave the batch (False: they wait, as in model.generate)


@torch.no_grad()
def greedy_decode(model, tokenizer, prompts: list[str], max_new_tokens: int, stop: list[str],
             batch_size: int = 16, bf16: bool | None = None) -> list[str]:
    """Greedy continuations, batched (left padding, KV cache), prompts grouped by length.

    A long prefix shared by every prompt is run once; each batch starts from its cache.
    """
    if not prompts:
        return []
    encoded = [prompt_ids(tokenizer, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    outputs = [""] * len(prompts)
    model = inference_copy(model, bf16)
    device = next(model.parameters()).device
    shared = shared_prefix(encoded)
    shared = shared if shared >= SHARED_PREFIX_MIN else 0
    prefix = encoded[0][:shared]
    cache = prefill(model, prefix, device) if shared else None
    finished = stopper(model, tokenizer, stop)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        width = max(len(encoded[i]) for i in rows)
        input_ids = torch.full((len(rows), width), tokenizer.pad_token_id)
        attention = torch.zeros_like(input_ids)
        input_ids[:, :shared], attention[:, :shared] = torch.tensor(prefix, dtype=torch.long), 1
        for row, i in enumerate(rows):  # left padding after the shared prefix
            input_ids[row, width - len(encoded[i]) + shared:] = torch.tensor(encoded[i][shared:])
            attention[row, width - len(encoded[i]) + shared:] = 1
        past = deepcopy(cache) if shared else DynamicCache(config=model.config)
        past.batch_repeat_interleave(len(rows))
        tokens = greedy(model, input_ids[:, shared:].to(device), attention.to(device), past,
                        max_new_tokens, finished)
        for i, ids in zip(rows, tokens):
            outputs[i] = tokenizer.decode(ids, skip_special_tokens=True)
    return outputs


def greedy(model, input_ids, attention, cache, max_new_tokens: int, finished) -> list[list[int]]:
    """Greedy new tokens of each row; `cache` holds the tokens of `attention` before
    `input_ids`. A row is done once `finished(its tokens)`; with DROP_FINISHED it leaves the
    batch and its cache, so the rows still generating run on without computing for it."""
    tokens = [[] for _ in range(len(input_ids))]
    done = [False] * len(input_ids)
    vocabulary = kept_ids(model)  # a task-vocabulary head scores these ids only
    live = torch.arange(len(input_ids), device=input_ids.device)  # rows in the batch
    positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1]:]
    for _ in range(max_new_tokens):
        logits = model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                       cache=cache, use_cache=True, logits_to_keep=1).logits
        chosen = logits[:, -1].argmax(-1)
        if vocabulary is not None:
            chosen = vocabulary[chosen]
        for row, token in zip(live.tolist(), chosen.tolist()):
            if not done[row]:
                tokens[row].append(token)
                done[row] = finished(tokens[row])
        if all(done):
            break
        going = [k for k, row in enumerate(live.tolist()) if not done[row]]
        if DROP_FINISHED and len(going) < len(live):
            keep = torch.tensor(going, device=live.device)
            cache.batch_select_indices(keep)
            live, chosen, attention = live[keep], chosen[keep], attention[keep]
        positions = attention.sum(-1, keepdim=True)  # real tokens so far: the new one's position
        attention = torch.cat([attention, attention.new_ones(len(live), 1)], dim=1)
        input_ids = chosen[:, None]
    return tokens


def stopper(model, tokenizer, stop: list[str]):
    """Whether a row's new tokens end it: an end-of-sequence token, or a stop string in
    their text (looked for in the last few tokens, where a new one can complete it)."""
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos]) | {tokenizer.eos_token_id}
    window = max((len(s) for s in stop), default=0) + 1
    return lambda ids: ids[-1] in eos or any(
        s in tokenizer.decode(ids[-window:], skip_special_tokens=True) for s in stop)


def shared_prefix(encoded: list[list[int]]) -> int:
    """How many leading tokens all prompts share, leaving each at least one of its own."""
    length = min((len(ids) for ids in encoded), default=1) - 1
    for ids in encoded[1:]:
        length = next((i for i in range(length) if ids[i] != encoded[0][i]), length)
    return max(0, length)


def prefill(model, ids: list[int], device):
    """The KV cache of `ids` (batch of one)."""
    cache = DynamicCache(config=model.config)
    model(input_ids=torch.tensor([ids], device=device), cache=cache, use_cache=True,
          logits_to_keep=1)
    return cache


def inference_copy(model, bf16: bool | None = None):
    """The model in eval mode; where bf16 is fast, a bf16 copy (weights cast once: autocast
    would re-cast a frozen head at every generated token). Buffers such as rotary
    frequencies keep their precision."""
    device = next(model.parameters()).device
    if not use_bf16(bf16, device) or next(model.parameters()).dtype != torch.float32:
        return model.eval()
    copy = deepcopy(model).eval().to(torch.bfloat16)
    for kept, original in zip(copy.buffers(), model.buffers()):
        kept.data = original.data
    # On CPU, a bf16 weight that needs no gradient (the frozen head) times the
    # non-contiguous last hidden state of each prefill goes through a batched copy of the
    # weight per row (5 GB and 15 s per batch of 16 for the 262k-word head); with
    # requires_grad set, it is one matmul. Free under no_grad.
    return copy.requires_grad_(True)


def evaluate(model, tokenizer, task: Task, samples: list[Sample], method: str = "fine_tune",
             max_new_tokens: int = 160, batch_size: int = 16, bf16: bool | None = None,
             answer_format: str = "paper") -> list[Prediction]:
    """Predictions of `model` on `samples` with one of METHODS."""
    run = lambda prompts, tokens, stop: greedy_decode(model, tokenizer, prompts, tokens, stop,
                                                 batch_size, bf16)
    questions = [s.question for s in samples]
    if method == "fine_tune":
        outputs = run([prompt_text(q) for q in questions], max_new_tokens, [COMPLETION_END.strip()])
        parsed = [parse_completion(task, o, answer_format) for o in outputs]
    elif method == "vanilla":  # ` <answer> END`: no rationale, no arrow
        outputs = run([prompt_text(q) for q in questions], 24, [COMPLETION_END.strip()])
        parsed = [("", task.extract(o.split(COMPLETION_END.strip())[0])) for o in outputs]
    elif method == "zero_shot":
        outputs = run([zero_shot(q, task.trigger).text() for q in questions], 32, ["\n"])
        parsed = [("", task.extract(o)) for o in outputs]
    elif method == "zero_shot_cot":
        reasoning = [zero_shot_cot(q) for q in questions]
        rationales = run([p.text() for p in reasoning], 128, ["\nQ:"])
        answers = run([answer_prompt(p, r, task.trigger).text()
                       for p, r in zip(reasoning, rationales)], 32, ["\n"])
        outputs = [f"{r}\n{task.trigger}{a}" for r, a in zip(rationales, answers)]
        parsed = [(r.strip(), task.extract(a)) for r, a in zip(rationales, answers)]
    elif method == "few_shot_cot":
        outputs = run([few_shot_cot(task, q).text() for q in questions], 128, ["\nQ:"])
        parsed = [parse_few_shot(task, o) for o in outputs]
    else:
        raise CotlibError(f"unknown evaluation method {method!r}; choose from {METHODS}")
    return [Prediction(s.sample_index, s.question, o, r, p, s.answer, task.is_correct(p, s.answer))
            for s, o, (r, p) in zip(samples, outputs, parsed)]


def paper_accuracy(task: Task, predictions: list[dict]) -> float:
    """Accuracy (%) of stored fine-tuned predictions under `paper_reading`."""
    right = [task.is_correct(paper_reading(task, p["output"]), p["answer"]) for p in predictions]
    return 100 * sum(right) / len(right) if right else float("nan")


def accuracy(predictions: list[Prediction]) -> dict[str, float]:
    """Accuracy (%) with a 95 % Wilson score interval."""
    n, k, z = len(predictions), sum(p.correct for p in predictions), 1.96
    if n == 0:
        return {"accuracy": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0}
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"accuracy": 100 * p, "ci_low": max(0.0, 100 * (centre - half)),
            "ci_high": min(100.0, 100 * (centre + half)), "n": n}
