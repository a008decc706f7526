"""The teacher interface of step 1: how a teacher is asked (GenerationParams, Request), what
it answers (Choice, Result), and the accounting every backend shares (Usage, Budget)."""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Protocol

from ..data import CotlibError
from ..prompts import METHODS, Prompt
from ..store import Completion

@dataclass(frozen=True)
class GenerationParams:
    """How the teacher is asked: method, diverse reasoning degree D and temperature T."""
    method: str = "zs_cot"
    degree: int = 1  # D: rationales per question
    temperature: float = 0.0  # T: 0 is greedy
    max_tokens: int = 128  # cap of the rationale, as the paper's teacher calls
    answer_max_tokens: int = 32
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise CotlibError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        if not (isinstance(self.degree, int) and self.degree >= 1):
            raise CotlibError(f"degree D={self.degree} must be an integer >= 1")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise CotlibError(f"temperature T={self.temperature} must be >= 0")
        if self.degree > 1 and self.temperature == 0:
            raise CotlibError(f"D={self.degree} rationales at T=0 would all be the same "
                              "greedy one; diverse reasoning needs T > 0 (the paper: 0.7)")
        if self.max_tokens < 1 or self.answer_max_tokens < 1:
            raise CotlibError("max_tokens and answer_max_tokens must be >= 1")

    def key(self) -> str:
        """Store key: what changes the text of a completion (D only adds indices)."""
        return (f"{self.method}_T{self.temperature:g}_max{self.max_tokens}"
                f"_ans{self.answer_max_tokens}_seed{self.seed}")


@dataclass(frozen=True)
class Request:
    """One prompt to complete `len(seeds)` times (the n of the OpenAI API)."""
    prompt: Prompt
    seeds: tuple[int, ...]
    temperature: float
    max_tokens: int


@dataclass(frozen=True)
class Choice:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Result:
    """The choices a teacher got for a request; `error` says why any are missing."""
    choices: list[Choice]
    error: str = ""


class Teacher(Protocol):
    name: str
    workers: int  # groups run at once (threads)
    group_size: int  # samples per group (a batch for local models)
    usage: "Usage"

    def check(self) -> None: ...
    def complete(self, requests: list[Request]) -> list[Result]: ...


@dataclass
class Usage:
    """Token, cost and fault accounting of one teacher; updated from worker threads."""
    price: tuple[float, float] = (0.0, 0.0)  # USD per 1M prompt / completion tokens
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    failures: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost(self) -> float:
        return (self.prompt_tokens * self.price[0] + self.completion_tokens * self.price[1]) / 1e6

    def add(self, prompt_tokens: int, completion_tokens: int) -> None:
        with self.lock:
            self.requests += 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens

    def fault(self, kind: str, retried: bool) -> None:
        with self.lock:
            self.faults[kind] = self.faults.get(kind, 0) + 1
            if retried:
                self.retries += 1
            else:
                self.failures += 1


@dataclass(frozen=True)
class Budget:
    """Stop submitting new work once either limit is reached (None: no limit)."""
    max_cost: float | None = None  # USD
    max_tokens: int | None = None

    def reached(self, usage: Usage) -> bool:
        return ((self.max_cost is not None and usage.cost >= self.max_cost)
                or (self.max_tokens is not None and usage.tokens >= self.max_tokens))


def seed_for(seed: int, sample_index: int, completion_index: int) -> int:
    """Distinct, reproducible seed per completion (servers that ignore n get D requests)."""
    return (seed * 1_000_003 + sample_index * 997 + completion_index) % 2**31



def accuracy(records: list[Completion]) -> float:
    """Teacher accuracy (%) over successful completions."""
    ok = [r for r in records if r.status == "ok"]
    return 100 * sum(r.correct for r in ok) / len(ok) if ok else float("nan")


