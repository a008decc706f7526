"""The hf teacher: a transformers causal LM in this process."""
from __future__ import annotations

from pathlib import Path

from ..data import CotlibError, first_line
from ..prompts import STOP
from .base import Choice, Request, Result, Usage

class HFTeacher:
    """A local transformers causal LM, batched; greedy at T=0, else sampled and seeded."""
    workers = 1

    def __init__(self, model, tokenizer, name: str, batch_size: int = 8,
                 template: str = "plain"):
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        self.group_size, self.template = batch_size, template
        self.usage = Usage()
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"  # generation continues the right end

    @classmethod
    def from_pretrained(cls, path: str, **options) -> "HFTeacher":
        model, tokenizer = load_causal_lm(path)
        return cls(model, tokenizer, name=Path(path).name, **options)

    def check(self) -> None:
        pass

    def complete(self, requests: list[Request]) -> list[Result]:
        flat = [(i, r, seed) for i, r in enumerate(requests) for seed in r.seeds]
        results = [Result([]) for _ in requests]
        for start in range(0, len(flat), self.group_size):
            batch = flat[start:start + self.group_size]
            for (i, _, _), choice in zip(batch, self._generate(batch)):
                results[i].choices.append(choice)
        return results

    def _generate(self, batch: list) -> list[Choice]:
        import torch  # noqa: PLC0415
        request = batch[0][1]  # a stage's requests share temperature and max_tokens
        texts = [r.prompt.render(self.template) for _, r, _ in batch]
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True)
        torch.manual_seed(batch[0][2])
        sampled = request.temperature > 0
        with torch.no_grad():
            out = self.model.generate(
                **inputs, max_new_tokens=request.max_tokens, do_sample=sampled,
                temperature=request.temperature if sampled else None, top_p=None, top_k=None,
                pad_token_id=self.tokenizer.pad_token_id)
        new = out[:, inputs["input_ids"].shape[1]:]
        choices = []
        for row, mask in zip(new, inputs["attention_mask"]):
            ended = (row == self.tokenizer.eos_token_id).nonzero()
            length = int(ended[0]) if len(ended) else len(row)
            text = self.tokenizer.decode(row[:length], skip_special_tokens=True)
            text, stopped = cut_at_stop(text, STOP[self.template])
            reason = "stop" if len(ended) or stopped else "length"
            self.usage.add(int(mask.sum()), length)
            choices.append(Choice(text, reason, int(mask.sum()), length))
        return choices


def load_causal_lm(path, **model_options) -> tuple:
    """(model, tokenizer) of a Hugging Face directory (the hf teacher, students); a folder
    that holds none is a one-line error."""
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **model_options)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError, TypeError) as e:  # transformers' ways to say "not one"
        raise CotlibError(f"cannot load a causal LM from {path}: {first_line(e)}") from None
    return model, tokenizer


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """Text up to the first stop string, and whether one was found."""
    cut = min((text.find(s) for s in stops if s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)

