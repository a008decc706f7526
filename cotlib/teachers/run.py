"""Step 1, durably and resumably: ask any teacher for D rationales per question, store every
completion as it arrives (see `store`), consolidate a run into one file."""
from __future__ import annotations

import re
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..data import CotlibError, check_dir
from ..prompts import Prompt, answer_prompt, reasoning_prompt
from ..store import Completion, Store, export_jsonl, owned, read_jsonl
from ..tasks import Sample, Task
from .base import Budget, Choice, GenerationParams, Request, Teacher, Usage, accuracy, seed_for
from .recorded import RECORDED_TEACHER, recorded_completions

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
    check_limit(limit)
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


def check_limit(limit: int | None) -> None:
    """None (all questions) or N >= 1: a slice [:0] or [:-1] would pass silently."""
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise CotlibError(f"limit={limit}: expected at least 1 question")


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


TEACHER_KINDS = ("recorded", "openai", "local", "hf")


def make_teacher(kind: str, model: str = "", **options) -> Teacher | None:
    """A teacher by kind; `recorded` has no live teacher (None): see recorded_completions."""
    if kind == "recorded":
        return None
    from .api import OpenAITeacher, local_teacher  # noqa: PLC0415  (backends only when asked)
    from .hf import HFTeacher  # noqa: PLC0415
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



def teacher_name(kind: str, model: str = "") -> str:
    """The id a teacher's completions are stored under (as `make_teacher` names it)."""
    if kind == "recorded":
        return RECORDED_TEACHER
    if kind == "local":
        from ..serve import get_model  # noqa: PLC0415
        return get_model(model or "qwen2.5-coder-1.5b").name
    return Path(model).name if kind == "hf" else model



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



def run_tasks(teacher: Teacher | None, tasks: list[Task], params: GenerationParams,
              store_dir: Path, out_dir: Path, part: str = "train", split: str = "default",
              limit: int | None = None, budget: Budget = Budget(), progress: bool = True,
              report: Callable[[str], None] = print) -> dict[str, list[Completion]]:
    """Step 1 for several tasks: generate what is missing, then consolidate each task's file.

    `teacher=None` is the recorded teacher. Stops before the next task once the budget is
    reached. Returns the consolidated records per task.
    """
    name = teacher.name if teacher else RECORDED_TEACHER
    recorded = _check_run(teacher, tasks, params, store_dir, out_dir, part, split, limit)
    done = {}
    for task in tasks:
        where = dict(teacher=name, params=params, task=task.name, split=split, part=part)
        out = run_file(out_dir, **where)
        store_path = run_file(store_dir, suffix=".store.jsonl", **where)
        with owned(store_path, report):  # one writer per store: a second `generate` waits
            if not store_path.exists() and out.exists():  # e.g. a fresh clone of committed results
                export_jsonl(read_jsonl(out), store_path)
            store = Store(store_path)
            loaded = store.load()
            for problem in loaded.problems:
                report(f"warning: {problem}")
            if teacher is None:
                have = loaded.done()
                for record in recorded[task.name]:
                    if record.key() not in have:
                        store.append(record)
            else:
                summary = generate(teacher, task, store, params, part, split, limit, budget,
                                   progress)
                report(summary.line())
            done[task.name] = consolidate(store, out)
        report(f"{task.name}: {len(done[task.name])} completions, teacher accuracy "
               f"{accuracy(done[task.name]):.1f}% -> {out}")
        if teacher is not None and budget.reached(teacher.usage):
            report("budget reached: stopped before the remaining tasks")
            break
    return done


def _check_run(teacher, tasks, params, store_dir, out_dir, part, split, limit) -> dict:
    """Refuse what would fail, before any folder is made; the recorded teacher's records."""
    check_limit(limit)
    check_dir(Path(store_dir), "store_dir")
    check_dir(Path(out_dir), "out_dir")
    for task in tasks:
        task.split(part, split)  # an unknown split or part, AQuA's train
    if teacher is not None:
        teacher.check()  # the key, the endpoint
        return {}
    return {task.name: recorded_completions(task, params, part, split)[:limit] for task in tasks}


def load_run(runs_dir: Path, teacher: str, params: GenerationParams, task: Task,
             part: str = "train", split: str = "default") -> list[Completion]:
    """The consolidated completions of one run (empty if there are none yet)."""
    path = run_file(runs_dir, teacher, params, task.name, split, part)
    return read_jsonl(path) if path.exists() else []


