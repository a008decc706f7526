"""Step 1 of Fine-tune-CoT: teachers that produce Zero-shot-CoT rationales.

`recorded`: the greedy text-davinci-002 outputs logged by Kojima et al. (2022), matched to
our samples by question text. `openai`: any OpenAI-compatible endpoint (OpenAI, vLLM,
Ollama, or a local llama.cpp server: `local`). `hf`: a transformers causal LM in-process.
`generate` asks any of them for D rationales per question, resumably (see `store`).
"""
from __future__ import annotations

import math
import os
import random
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Protocol

from .data import CotlibError, data_path, data_root
from .prompts import METHODS, STOP, Prompt, answer_prompt, reasoning_prompt
from .store import Completion, Store, export_jsonl, read_jsonl, write_atomic
from .tasks import Sample, Task

RECORD_SEPARATOR = "*" * 25
RECORD = re.compile(
    r"(?P<number>\d+)st data\n1_th_sampling\nQ: (?P<question>.*?)\n"
    r"A: Let's think step by step\.(?P<body>.*)\npred_before : .*?\n"
    r"pred_after : (?P<pred>.*)\npred_list : .*\npred_mode : .*\nGT : (?P<gold>.*)", re.S)


@dataclass(frozen=True)
class LogRecord:
    """One question of a Zero-shot-CoT log, as the log wrote it."""
    number: int
    question: str
    rationale: str
    answer_text: str
    log_prediction: str
    log_gold: str


@dataclass(frozen=True)
class RecordedCompletion:
    """A recorded teacher completion joined to one of our samples."""
    sample_index: int
    question: str
    rationale: str
    answer_text: str
    prediction: str  # our extraction from answer_text, in our choice letters
    answer: str  # our gold answer
    raw_prediction: str  # our extraction, in the log's choice letters
    log_prediction: str
    log_gold: str


def log_path(task: Task) -> Path:
    return data_path(f"zero_shot_cot/log/{task.log}_zero_shot_cot.log")


def read_log(path: Path, trigger: str) -> list[LogRecord]:
    """Parse a Zero-shot-CoT log; a truncated or malformed record is an error naming it."""
    blocks = path.read_text(encoding="utf-8").split(f"\n{RECORD_SEPARATOR}\n")
    records = []
    for block in blocks:
        start = re.search(r"^\d+st data$", block, re.M)
        if not start:
            continue
        match = RECORD.fullmatch(block[start.start():].rstrip("\n"))
        if not match or f"\n{trigger}" not in match["body"]:
            raise CotlibError(f"{path}: record {start.group(0)!r} is truncated or malformed")
        rationale, _, answer_text = match["body"].rpartition(f"\n{trigger}")
        records.append(LogRecord(int(match["number"]), match["question"], rationale.strip(),
                                 answer_text, match["pred"], match["gold"]))
    if not records:
        raise CotlibError(f"{path}: no records found")
    return records


def question_key(question: str) -> str:
    """Join key: the question stem without its choices, lowercase, letters and digits only."""
    stem = re.split(r"answer choices", question, flags=re.I)[0]
    key = re.sub(r"[^a-z0-9]", "", stem.lower())
    return key.removesuffix("whichchoiceistrue")


def _choice_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def log_choices(question: str) -> tuple[str, ...]:
    """Choices as the logs wrote them: "Answer Choices: (A) x (B) y"."""
    _, _, tail = question.partition("Answer Choices:")
    return tuple(t.strip() for t in re.split(r"\([A-F]\)", tail)[1:])


def recorded(task: Task) -> list[RecordedCompletion]:
    """The text-davinci-002 Zero-shot-CoT completions for our samples of `task`."""
    return list(_recorded(task, data_root()))


@lru_cache(maxsize=None)
def _recorded(task: Task, root: Path) -> tuple[RecordedCompletion, ...]:
    by_key: dict[str, list] = {}
    for sample in task.samples().values():
        by_key.setdefault(question_key(sample.question), []).append(sample)
    joined = []
    for record in read_log(log_path(task), task.trigger):
        candidates = by_key.get(question_key(record.question))
        if not candidates:
            continue
        sample = candidates.pop(0)  # duplicated texts: one record per sample, in order
        raw = prediction = task.extract(record.answer_text)
        rationale = record.rationale
        if task.answer_type == "choice":
            theirs = log_choices(record.question)
            prediction = _our_letter(raw, theirs, sample.choices)
            rationale = _our_letters_in(rationale, theirs, sample.choices)
        joined.append(RecordedCompletion(
            sample.sample_index, sample.question, rationale, record.answer_text.strip(),
            prediction, sample.answer, raw, record.log_prediction, record.log_gold))
    return tuple(sorted(joined, key=lambda c: c.sample_index))


def _our_letter(letter: str, theirs: tuple[str, ...], ours: tuple[str, ...]) -> str:
    """Map a letter of the log's choice order to the same choice text in ours."""
    index = ord(letter) - ord("A") if letter else -1
    if not 0 <= index < len(theirs):
        return ""
    text = _choice_key(theirs[index])
    keys = [_choice_key(c) for c in ours]
    if index < len(keys) and keys[index] == text:  # same place (some choice lists repeat a text)
        return letter
    return chr(ord("A") + keys.index(text)) if text in keys else ""


# A choice named in a rationale: "(B)" anywhere, or a bare letter in "the answer is B." / "B:"
CHOICE_MENTION = re.compile(r"\(([A-F])\)|(?<=\bis )([A-F])(?=[.:,]|$)")


def _our_letters_in(rationale: str, theirs: tuple[str, ...], ours: tuple[str, ...]) -> str:
    """Rewrite the choice letters a rationale names from the log's choice order into ours.

    Otherwise a student would learn "the answer is (A)" followed by "--> B".
    """
    def ours_for(match):
        letter = match[1] or match[2]
        mapped = _our_letter(letter, theirs, ours) or letter
        return f"({mapped})" if match[1] else mapped
    return CHOICE_MENTION.sub(ours_for, rationale)


# --- generated completions: any teacher behind one interface ---------------------------

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


# --- the openai teacher: any OpenAI-compatible endpoint -----------------------------------

class RetryableError(Exception):
    """A fault worth retrying: 429, 5xx, timeout, dropped connection, malformed body."""


class RequestFailed(Exception):
    """A request the endpoint refused for itself (e.g. 400: prompt too long); not retried."""


@dataclass
class OpenAITeacher:
    """A teacher behind the official `openai` SDK: OpenAI, vLLM, Ollama, llama.cpp, ...

    The key is read from the environment variable named `key_env` and kept only in the
    client object; it is never logged or written.
    """
    model: str
    base_url: str | None = None
    key_env: str = "OPENAI_API_KEY"
    api: str = "completions"  # or "chat"
    template: str = "plain"  # how the completions API sees a prompt: plain or chatml
    workers: int = 4
    timeout: float = 120.0
    retries: int = 5
    backoff: float = 1.0  # mean wait (s) before the first retry; doubles each time
    price: tuple[float, float] = (0.0, 0.0)
    name: str = ""
    needs_key: bool = True
    group_size: int = 1
    n_supported: bool | None = None  # learnt from the first n>1 request
    usage: Usage = field(init=False)

    def __post_init__(self):
        if self.api not in ("completions", "chat"):
            raise CotlibError(f"api {self.api!r}: choose completions or chat")
        if self.template not in STOP:
            raise CotlibError(f"template {self.template!r}: choose from {', '.join(STOP)}")
        if self.workers < 1:
            raise CotlibError(f"concurrency {self.workers} must be >= 1")
        self.name = self.name or self.model
        self.usage = Usage(self.price)
        self._client = None
        self._lock = threading.Lock()

    def _key(self) -> str:
        key = os.environ.get(self.key_env)
        if key:
            return key
        if self.needs_key:
            raise CotlibError(f"environment variable {self.key_env} is not set; it must hold "
                              f"the API key for {self.base_url or 'the OpenAI API'}")
        return "unused"  # local servers ignore it, the SDK wants one

    def client(self):
        if self._client is None:
            import openai  # noqa: PLC0415  (only teachers that call an API need it)
            self._client = openai.OpenAI(api_key=self._key(), base_url=self.base_url,
                                         max_retries=0, timeout=self.timeout)
        return self._client

    def check(self) -> None:
        """Before any work: the key is set and the endpoint answers."""
        import openai  # noqa: PLC0415
        client = self.client()
        where = self.base_url or "the OpenAI API"
        try:
            client.with_options(timeout=min(self.timeout, 15)).models.list()
        except openai.AuthenticationError:
            raise CotlibError(f"{where} rejected the key in ${self.key_env}") from None
        except openai.APITimeoutError:
            pass  # it accepted the connection but is busy (a one-request server mid-answer)
        except openai.APIConnectionError as e:
            raise CotlibError(f"cannot reach the teacher endpoint {where}: {e}") from None
        except openai.APIStatusError:
            pass  # some servers have no /models; the endpoint answered, which is enough

    def complete(self, requests: list[Request]) -> list[Result]:
        return [self._complete(r) for r in requests]

    def _complete(self, request: Request) -> Result:
        stop = STOP[self.template] if self.api == "completions" else None
        choices: list[Choice] = []
        while len(choices) < len(request.seeds):
            want = len(request.seeds) - len(choices)
            n = want if self.n_supported is not False else 1
            try:
                got = self._call(request, n, request.seeds[len(choices)], stop)
            except (RetryableError, RequestFailed) as e:
                return Result(choices, str(e))
            if n > 1:
                with self._lock:  # llama.cpp's server answers n>1 with one choice
                    self.n_supported = len(got) >= n
            choices += got[:n]
        return Result(choices)

    def _call(self, request: Request, n: int, seed: int, stop: list[str] | None) -> list[Choice]:
        for attempt in range(self.retries + 1):
            try:
                return self._once(request, n, seed, stop)
            except RetryableError as e:
                kind, retry_after = e.args[0], e.args[1] if len(e.args) > 1 else 0.0
                last = attempt == self.retries
                self.usage.fault(kind, retried=not last)
                if last:
                    raise RetryableError(f"{kind}, {attempt + 1} attempts") from None
                wait_s = self.backoff * 2**attempt * random.uniform(0.5, 1.5)  # jitter
                time.sleep(min(60.0, max(wait_s, retry_after)))
        raise AssertionError("unreachable")

    def _once(self, request: Request, n: int, seed: int, stop: list[str] | None) -> list[Choice]:
        import openai  # noqa: PLC0415
        common = dict(model=self.model, n=n, temperature=request.temperature,
                      max_tokens=request.max_tokens, seed=seed)
        try:
            if self.api == "chat":
                response = self.client().chat.completions.create(
                    messages=request.prompt.messages(), **common)
                texts = [(c.message.content, c.finish_reason) for c in response.choices]
            else:
                response = self.client().completions.create(
                    prompt=request.prompt.render(self.template), stop=stop, **common)
                texts = [(c.text, c.finish_reason) for c in response.choices]
        except openai.APITimeoutError:
            raise RetryableError("timeout") from None
        except openai.APIConnectionError:
            raise RetryableError("connection") from None
        except openai.RateLimitError as e:
            raise RetryableError("429", _retry_after(e)) from None
        except openai.APIStatusError as e:
            if e.status_code >= 500:
                raise RetryableError(f"{e.status_code}") from None
            if e.status_code in (401, 403, 404):  # every request would fail: stop the run
                raise CotlibError(f"{self.base_url or 'the OpenAI API'} refused the request "
                                  f"({e.status_code}): {e.message}") from None
            self.usage.fault(str(e.status_code), retried=False)
            raise RequestFailed(f"{e.status_code}: {e.message}"[:300]) from None
        except (openai.APIResponseValidationError, ValueError, TypeError, AttributeError):
            raise RetryableError("malformed") from None
        if not texts or any(not isinstance(t, str) for t, _ in texts):
            raise RetryableError("malformed")
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
        completion_tokens = getattr(usage, "completion_tokens", 0) or 0
        self.usage.add(prompt_tokens, completion_tokens)
        share = len(texts)  # usage covers all n choices; each record gets its share
        return [Choice(t, r or "", prompt_tokens // share, completion_tokens // share)
                for t, r in texts]


def _retry_after(error) -> float:
    try:
        return float(error.response.headers.get("retry-after", 0))
    except (AttributeError, TypeError, ValueError):
        return 0.0


LOCAL_URL = "http://127.0.0.1:8080/v1"


def local_teacher(model: str, base_url: str = LOCAL_URL, **options) -> OpenAITeacher:
    """A model served on 127.0.0.1 by `python -m cotlib serve` (llama.cpp).

    One request per completion (distinct seeds): llama-cpp-python's server ignores n > 1,
    and llama-server's usage counts the tokens of one choice only.
    """
    from .serve import get_model  # noqa: PLC0415
    spec = get_model(model)
    return OpenAITeacher(model=spec.name, base_url=base_url, template=spec.template,
                         needs_key=False, key_env="COTLIB_LOCAL_KEY", name=spec.name,
                         **{"n_supported": False, **options})


# --- the hf teacher: a transformers causal LM in this process ------------------------------

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
        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path)
        except OSError as e:
            raise CotlibError(f"cannot load a causal LM from {path}: {e}") from None
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


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """Text up to the first stop string, and whether one was found."""
    cut = min((text.find(s) for s in stops if s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


# --- step 1: ask a teacher for rationales, durably and resumably ----------------------------

@dataclass
class RunSummary:
    teacher: str
    task: str
    total: int  # completions wanted: questions x D
    done_before: int = 0
    done_now: int = 0
    failed: int = 0
    stopped: str = ""  # "" (finished), "budget" or "interrupted"
    seconds: float = 0.0
    usage: Usage | None = None

    def line(self) -> str:
        u = self.usage or Usage()
        text = (f"{self.teacher} {self.task}: {self.done_before + self.done_now}/{self.total} "
                f"done ({self.done_now} new, {self.failed} failed), {u.tokens:,} tokens, "
                f"${u.cost:.4f}, {u.retries} retries, {self.seconds:.0f}s")
        return text + (f"; stopped: {self.stopped}" if self.stopped else "")


def generate(teacher: Teacher, task: Task, store: Store, params: GenerationParams = GenerationParams(),
             part: str = "train", split: str = "default", limit: int | None = None,
             budget: Budget = Budget(), progress: bool = True,
             on_record: Callable[[Completion], None] | None = None) -> RunSummary:
    """Ask `teacher` for D completions of each question of a split part; resumable.

    What the store already holds (successes) is skipped; a failed completion is asked
    again. Completions are appended to the store as each question finishes.
    """
    samples = task.split(part, split)[:limit]
    split_name = f"{split}/{part}"
    done = store.load().done()
    summary = RunSummary(teacher.name, task.name, len(samples) * params.degree,
                         usage=teacher.usage)
    work = []
    for sample in samples:
        missing = [c for c in range(params.degree) if (teacher.name, params.key(), task.name,
                   split_name, sample.sample_index, c) not in done]
        summary.done_before += params.degree - len(missing)
        if missing:
            work.append((sample, missing))
    if not work:
        return summary
    teacher.check()
    groups = [work[i:i + teacher.group_size] for i in range(0, len(work), teacher.group_size)]
    start = time.monotonic()
    bar = _progress_bar(summary, progress)
    ask = lambda group: _ask(teacher, task, params, split_name, group, store)  # noqa: E731
    try:
        _run_groups(groups, ask, teacher.workers, budget, teacher.usage, summary, bar, on_record)
    except KeyboardInterrupt:
        summary.stopped = "interrupted"
    finally:
        summary.seconds = time.monotonic() - start
        if bar is not None:
            bar.close()
    return summary


def _run_groups(groups, ask, workers, budget, usage, summary, bar, on_record) -> None:
    pending: set[Future] = set()
    queue = list(reversed(groups))
    with ThreadPoolExecutor(workers) as pool:
        try:
            while queue or pending:
                while queue and len(pending) < workers and not budget.reached(usage):
                    pending.add(pool.submit(ask, queue.pop()))
                if queue and budget.reached(usage):
                    summary.stopped = "budget"
                    queue.clear()
                if not pending:
                    break
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    for record in future.result():
                        summary.failed += record.status != "ok"
                        summary.done_now += record.status == "ok"
                        if on_record:
                            on_record(record)
                    _show(bar, summary, usage)
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _ask(teacher: Teacher, task: Task, params: GenerationParams, split: str,
         group: list[tuple[Sample, list[int]]], store: Store) -> list[Completion]:
    """Both stages for a group of questions; every completion is stored as it is made."""
    sent = time.time()
    reasoning = [reasoning_prompt(params.method, task, s.question) for s, _ in group]
    first = teacher.complete([
        Request(prompt, tuple(seed_for(params.seed, s.sample_index, c) for c in missing),
                params.temperature, params.max_tokens)
        for prompt, (s, missing) in zip(reasoning, group)])
    records, second = [], []
    for prompt, (sample, missing), result in zip(reasoning, group, first):
        for c, index in enumerate(missing):
            record = Completion(teacher.name, params.key(), task.name, split, sample.sample_index,
                                index, sample.question, sample.answer, reasoning_prompt=prompt.text())
            if c >= len(result.choices):
                record.status, record.error = "failed", result.error or "no choice returned"
            else:
                _fill_first(record, result.choices[c], params.method, prompt, task)
                if params.method == "zs_cot":
                    second.append((record, Request(answer_prompt(prompt, record.rationale,
                                   task.trigger), (0,), 0.0, params.answer_max_tokens)))
            records.append(record)
    for (record, request), result in zip(second, teacher.complete([r for _, r in second])):
        record.prompt = request.prompt.text()
        if result.choices:
            _fill_answer(record, result.choices[0], task)
        else:
            record.status, record.error = "failed", result.error
    now = time.time()
    for record in records:
        record.seconds = round((now - sent) / max(1, len(records)), 3)  # wall time, shared
        record.started, record.finished = round(sent, 3), round(now, 3)
        store.append(record)
    return records


def _fill_first(record: Completion, choice: Choice, method: str, prompt: Prompt,
                task: Task) -> None:
    record.prompt_tokens, record.completion_tokens = choice.prompt_tokens, choice.completion_tokens
    if method == "zs_cot":
        record.rationale = choice.text.strip()
        record.reasoning_finish_reason = choice.finish_reason
        return
    # one-stage methods: few-shot-CoT states "The answer is X." after its rationale
    record.prompt = prompt.text()
    rationale, _, answer = choice.text.rpartition("The answer is")
    record.rationale = rationale.strip() if method == "fs_cot" else ""
    _fill_answer(record, Choice(answer if rationale else choice.text, choice.finish_reason, 0, 0),
                 task)


def _fill_answer(record: Completion, choice: Choice, task: Task) -> None:
    record.answer_text, record.finish_reason = choice.text.strip(), choice.finish_reason
    record.prompt_tokens += choice.prompt_tokens
    record.completion_tokens += choice.completion_tokens
    record.prediction = task.extract(record.answer_text)
    record.correct = task.is_correct(record.prediction, record.answer)


def _progress_bar(summary: RunSummary, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm  # noqa: PLC0415
    return tqdm(total=summary.total, initial=summary.done_before, unit="completion",
                desc=f"{summary.teacher} {summary.task}", dynamic_ncols=True)


def _show(bar, summary: RunSummary, usage: Usage) -> None:
    if bar is None:
        return
    bar.n = summary.done_before + summary.done_now
    bar.set_postfix(tokens=f"{usage.tokens:,}", cost=f"${usage.cost:.4f}",
                    errors=summary.failed + usage.retries, refresh=False)
    bar.refresh()


def recorded_completions(task: Task, params: GenerationParams = GenerationParams(),
                         part: str = "train", split: str = "default") -> list[Completion]:
    """The recorded text-davinci-002 outputs as completion records (D=1, greedy)."""
    if params.degree != 1 or params.temperature != 0 or params.method != "zs_cot":
        raise CotlibError("the recorded teacher has one greedy Zero-shot-CoT rationale per "
                          f"question; D={params.degree}, T={params.temperature:g}, "
                          f"method {params.method} cannot be asked of it")
    logged = {c.sample_index: c for c in recorded(task)}
    records = []
    for sample in task.split(part, split):  # in split order, as `generate` asks
        c = logged.get(sample.sample_index)
        if c is None:
            continue
        prompt = reasoning_prompt("zs_cot", task, c.question)
        records.append(Completion(
            RECORDED_TEACHER, params.key(), task.name, f"{split}/{part}", c.sample_index, 0,
            c.question, c.answer, reasoning_prompt=prompt.text(), rationale=c.rationale,
            prompt=answer_prompt(prompt, c.rationale, task.trigger).text(),
            answer_text=c.answer_text, prediction=c.prediction,
            correct=task.is_correct(c.prediction, c.answer)))
    return records


RECORDED_TEACHER = "text-davinci-002"
TEACHER_KINDS = ("recorded", "openai", "local", "hf")


def make_teacher(kind: str, model: str = "", **options) -> Teacher | None:
    """A teacher by kind; `recorded` has no live teacher (None): see recorded_completions."""
    if kind == "recorded":
        return None
    if kind == "openai":
        if not model:
            raise CotlibError("the openai teacher needs --model (the endpoint's model name)")
        return OpenAITeacher(model=model, **options)
    if kind == "local":
        return local_teacher(model or "qwen2.5-coder-1.5b", **options)
    if kind == "hf":
        if not model:
            raise CotlibError("the hf teacher needs --model (a local model directory)")
        return HFTeacher.from_pretrained(model, **options)
    raise CotlibError(f"unknown teacher {kind!r}; choose from {', '.join(TEACHER_KINDS)}")


def rescore(records: list[Completion], task: Task) -> list[Completion]:
    """Extract and score the predictions of imported records with the task's rules."""
    for r in records:
        r.prediction = task.extract(r.answer_text)
        r.correct = task.is_correct(r.prediction, r.answer)
    return records


def run_file(root: Path, teacher: str, params: GenerationParams, task: str, split: str,
             part: str, suffix: str = ".jsonl.gz") -> Path:
    """Where the completions of one (teacher, params, task, split) live under `root`."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", teacher)
    return Path(root) / safe / params.key() / f"{task}__{split}__{part}{suffix}"


def consolidate(store: Store, path: Path) -> list[Completion]:
    """Write the store's latest record per key, sorted, atomically to `path`."""
    records = list(store.load().records.values())
    export_jsonl(records, path)
    return records


def accuracy(records: list[Completion]) -> float:
    """Teacher accuracy (%) over successful completions."""
    ok = [r for r in records if r.status == "ok"]
    return 100 * sum(r.correct for r in ok) / len(ok) if ok else float("nan")


def run_tasks(teacher: Teacher | None, tasks: list[Task], params: GenerationParams,
              store_dir: Path, out_dir: Path, part: str = "train", split: str = "default",
              limit: int | None = None, budget: Budget = Budget(), progress: bool = True,
              report: Callable[[str], None] = print) -> dict[str, list[Completion]]:
    """Step 1 for several tasks: generate what is missing, then consolidate each task's file.

    `teacher=None` is the recorded teacher. Stops before the next task once the budget is
    reached. Returns the consolidated records per task.
    """
    name = teacher.name if teacher else RECORDED_TEACHER
    done = {}
    for task in tasks:
        where = dict(teacher=name, params=params, task=task.name, split=split, part=part)
        out = run_file(out_dir, **where)
        store_path = run_file(store_dir, suffix=".store.jsonl", **where)
        if not store_path.exists() and out.exists():  # e.g. a fresh clone of committed results
            export_jsonl(read_jsonl(out), store_path)
        store = Store(store_path)
        loaded = store.load()
        for problem in loaded.problems:
            report(f"warning: {problem}")
        if teacher is None:
            have = loaded.done()
            for record in recorded_completions(task, params, part, split)[:limit]:
                if record.key() not in have:
                    store.append(record)
        else:
            summary = generate(teacher, task, store, params, part, split, limit, budget, progress)
            report(summary.line())
        done[task.name] = consolidate(store, out)
        report(f"{task.name}: {len(done[task.name])} completions, teacher accuracy "
               f"{accuracy(done[task.name]):.1f}% -> {out}")
        if teacher is not None and budget.reached(teacher.usage):
            report("budget reached: stopped before the remaining tasks")
            break
    return done


def load_run(runs_dir: Path, teacher: str, params: GenerationParams, task: Task,
             part: str = "train", split: str = "default") -> list[Completion]:
    """The consolidated completions of one run (empty if there are none yet)."""
    path = run_file(runs_dir, teacher, params, task.name, split, part)
    return read_jsonl(path) if path.exists() else []


def run_summary(records: list[Completion], task: Task, server_threads: int | None = None) -> dict:
    """One row of results/teachers.csv: accuracy beside text-davinci-002 on the same
    questions, distinct rationales per question, tokens/s, wall time and, for a server on
    `server_threads` cores of this machine, CPU time."""
    ok = [r for r in records if r.status == "ok"]
    questions = {r.sample_index for r in ok}
    davinci = [c for c in recorded(task) if c.sample_index in questions]
    seconds = busy_seconds(records)
    tokens = sum(r.completion_tokens for r in ok)
    per_question = [len({r.rationale for r in ok if r.sample_index == q}) for q in questions]
    first = records[0] if records else None
    return {
        "teacher": first.teacher if first else "", "params": first.params if first else "",
        "task": task.name, "questions": len(questions), "completions": len(ok),
        "failed": len(records) - len(ok), "accuracy": round(accuracy(ok), 2),
        "davinci_accuracy_same_questions": round(accuracy_of_recorded(davinci, task), 2),
        "distinct_rationales_per_question": round(sum(per_question) / max(1, len(questions)), 2),
        "completion_tokens": tokens, "wall_seconds": round(seconds),
        "cpu_seconds": round(seconds * server_threads) if server_threads else float("nan"),
        "tokens_per_second": round(tokens / seconds, 1) if seconds else float("nan"),
        "rationale_cut_at_cap": sum(r.reasoning_finish_reason == "length" for r in ok)}


def diversity(sampled: list[Completion], greedy: list[Completion]):
    """Diverse reasoning per question: right samples, distinct rationales, distinct right
    ones (what curation keeps); and a summary row beside the greedy run where both ran."""
    import pandas as pd  # noqa: PLC0415
    ok = pd.DataFrame([vars(r) for r in sampled if r.status == "ok"])
    per_question = ok.groupby("sample_index").agg(
        right=("correct", "sum"), distinct=("rationale", "nunique"))
    per_question["kept"] = (ok[ok.correct].groupby("sample_index").rationale.nunique()
                            .reindex(per_question.index, fill_value=0))
    first = pd.Series({r.sample_index: r.correct for r in greedy if r.status == "ok"}, dtype=bool)
    both = per_question.index.intersection(first.index)
    any_right = per_question.right > 0
    return {"task": sampled[0].task, "questions": len(per_question),
            "sample_accuracy": 100 * ok.correct.mean(), "any_right_%": 100 * any_right.mean(),
            "distinct_per_question": per_question.distinct.mean(),
            "kept_per_question": per_question.kept.mean(), "questions_with_greedy": len(both),
            "greedy_accuracy_there": 100 * first[both].mean() if len(both) else math.nan,
            "any_right_there_%": 100 * any_right[both].mean() if len(both) else math.nan,
            }, per_question


def busy_seconds(records: list[Completion]) -> float:
    """Wall time spent asking: the union of the requests' intervals, so that concurrent
    requests count once (records without a finish time count their own seconds)."""
    total, end = sum(r.seconds for r in records if not r.finished), float("-inf")
    for start, stop in sorted((r.started, r.finished) for r in records if r.finished):
        total += max(0.0, stop - max(start, end))
        end = max(end, stop)
    return total


def accuracy_of_recorded(completions: list[RecordedCompletion], task: Task) -> float:
    if not completions:
        return float("nan")
    return 100 * sum(task.is_correct(c.prediction, c.answer) for c in completions) / len(completions)


def teacher_name(kind: str, model: str = "") -> str:
    """The id a teacher's completions are stored under (as `make_teacher` names it)."""
    if kind == "recorded":
        return RECORDED_TEACHER
    if kind == "local":
        from .serve import get_model  # noqa: PLC0415
        return get_model(model or "qwen2.5-coder-1.5b").name
    return Path(model).name if kind == "hf" else model


def update_table(path: Path, rows: list[dict]) -> None:
    """Replace the rows of the same (teacher, params, task) in a CSV table, keep the rest."""
    import pandas as pd  # noqa: PLC0415
    new = pd.DataFrame(rows)
    key = ["teacher", "params", "task"]
    if Path(path).exists():
        old = pd.read_csv(path)
        kept = old.merge(new[key], on=key, how="left", indicator=True)
        new = pd.concat([old[(kept["_merge"] == "left_only").to_numpy()], new])
    write_atomic(Path(path), new.sort_values(key).to_csv(index=False))
