"""The task-vocabulary student: its LM head cut to the tokens a task can write.

Gemma-3-270M's tied embedding and head have 262,144 rows; a task's questions and curated
completions use a few thousand. Only the output side is cut: the input embedding keeps
every row (a lookup costs nothing, and any text can still be read); the head scores the
kept token ids only, and what it picks is mapped back to a token id. Text in and text out
are unchanged. A departure from the paper (experiments.DEPARTURES).

A saved student is a plain full-vocabulary model directory (the head is the frozen tied
embedding, so nothing is lost) plus `task_vocab.json`, which `load_student` cuts again.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from .data import CotlibError

VOCAB_FILE = "task_vocab.json"


class TaskHead(torch.nn.Linear):
    """A frozen LM head on the kept token ids: logit i scores token `ids[i]`."""

    def __init__(self, full: torch.nn.Linear, ids: list[int]):
        super().__init__(full.in_features, len(ids), bias=False, device=full.weight.device,
                         dtype=full.weight.dtype)
        self.register_buffer("ids", torch.tensor(ids, device=full.weight.device))
        self.weight = torch.nn.Parameter(full.weight.detach()[self.ids].clone(),
                                         requires_grad=False)
        self.full = [full]  # the original head, for saving (a list: not a submodule)

    def positions(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Logit positions of token ids (training labels); every id must be kept."""
        found = torch.searchsorted(self.ids, token_ids).clamp(max=len(self.ids) - 1)
        missing = self.ids[found] != token_ids
        if missing.any():
            raise CotlibError(f"token id {int(token_ids[missing][0])} is not in the task "
                              f"vocabulary ({len(self.ids)} ids)")
        return found


WORD = re.compile(r"[^\W_]+")  # a run of letters or digits
CONTEXTS = ("{}", " {}", '"{}', "'{}", "({}")  # how a rationale may write a question's word
SPELLING = re.compile(r" ?[\x21-\x7e]{1,2}")  # tokens of one or two printable ASCII characters


def task_token_ids(tokenizer, texts: list[str]) -> list[int]:
    """The sorted token ids a task's student may write: the tokens of `texts` (prompts and
    curated completions), of each of their words in the contexts a rationale writes it (a
    tokenizer splits "Lloyd" after a quote otherwise than after a space), every token of one
    or two ASCII characters (so a new string, such as a joined answer, can still be spelled),
    and the special tokens."""
    words = {word for text in texts for word in WORD.findall(text)}
    forms = [context.format(form) for word in words for form in {word, word.lower()}
             for context in CONTEXTS]
    ids = set(tokenizer.all_special_ids) | spelling_ids(tokenizer)
    for encoded in tokenizer(list(texts) + forms, add_special_tokens=False)["input_ids"]:
        ids.update(encoded)
    return sorted(ids)


def spelling_ids(tokenizer) -> set[int]:
    """Ids of the tokens that are one or two printable ASCII characters (after a space or not)."""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    return {i for i, text in enumerate(texts) if SPELLING.fullmatch(text)}


def cut_head(model, ids: list[int]):
    """`model` with its frozen LM head replaced by a TaskHead on `ids` (in place)."""
    head = model.get_output_embeddings()
    if isinstance(head, TaskHead):
        raise CotlibError("the student's head is already cut to a task vocabulary")
    model.set_output_embeddings(TaskHead(head, ids))
    model.config.tie_word_embeddings = False  # never re-tie the cut head to the embedding
    return model


def task_head(model) -> TaskHead | None:
    """The model's cut head (through a DDP wrapper), or None: the full vocabulary."""
    head = getattr(model, "module", model).get_output_embeddings()
    return head if isinstance(head, TaskHead) else None


def kept_ids(model) -> torch.Tensor | None:
    """The token ids a cut head scores (None: the full vocabulary)."""
    head = task_head(model)
    return head.ids if head is not None else None


def save(model, tokenizer, path: Path) -> None:
    """save_pretrained as a full-vocabulary model, plus task_vocab.json if the head is cut."""
    head = model.get_output_embeddings()
    if not isinstance(head, TaskHead):
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        return
    if not torch.equal(head.full[0].weight[head.ids].to(head.weight.dtype), head.weight):
        raise CotlibError("the task head's weights changed in training: it cannot be saved "
                          "as the full tied head")
    model.set_output_embeddings(head.full[0])
    model.config.tie_word_embeddings = True
    try:
        model.save_pretrained(path)
    finally:
        model.set_output_embeddings(head)
        model.config.tie_word_embeddings = False
    tokenizer.save_pretrained(path)
    (Path(path) / VOCAB_FILE).write_text(json.dumps(head.ids.tolist()))


def load_ids(path: Path) -> list[int] | None:
    """The task vocabulary a saved student records (None: full vocabulary)."""
    file = Path(path) / VOCAB_FILE
    if not file.is_file():
        return None
    ids = json.loads(file.read_text())
    if not (isinstance(ids, list) and ids and all(isinstance(i, int) for i in ids)):
        raise CotlibError(f"{file}: expected a non-empty JSON list of token ids")
    return ids
