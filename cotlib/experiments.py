"""Reusable wiring of the steps: profiles, run folders and runs that notebooks, the CLI
and the tables (`tables`) share."""
from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from . import sources, vocabulary
from .curation import FinetuneSample, curate, vanilla
from .data import CotlibError, runs_root
from .environment import versions
from .evaluation import accuracy, evaluate, paper_accuracy
from .format import ANSWER_FORMATS
from .prompts import few_shot_exemplars, has_few_shot
from .store import owned, write_atomic
from .students import BEST_FILE, GEMMA, TrainConfig, load_student, train
from .tasks import Task, get_task


# --- Fine-tune-CoT runs: profiles, run directories, runs ----------------------------------

@dataclass(frozen=True)
class Profile:
    """What to run: a student, tasks, training settings, and how much of each split."""
    name: str
    student: str
    tasks: tuple[str, ...]
    train: TrainConfig
    train_limit: int | None = None  # first N train questions (None: all)
    validation_size: int = 0  # last N of those held out to compare hyperparameters, never test
    test_limit: int | None = None  # first N test questions (None: all)
    methods: tuple[str, ...] = ("fine_tune_cot", "vanilla", "zero_shot", "zero_shot_cot",
                                "few_shot_cot")
    max_new_tokens: int = 160
    eval_batch_size: int = 64  # greedy decoding is bound by reading the weights: big batches pay
    notes: str = ""
    teacher: str = "recorded"  # a teacher source spec (`python -m cotlib sources`)
    degree: int = 1  # D: the first D completions per train question
    distinct: bool = False  # drop exact duplicate rationales of a question (the paper keeps them)
    answer_format: str = "paper"  # or "copyable" (format.answer_field): a departure, its own row
    test_every_epoch: bool = False  # the paper's protocol, beside ours: a test curve, never read
    # to choose anything (train.keep="best" chooses the epoch on validation)
    consistent_choices: bool = False  # drop samples whose rationale concludes another choice


FULL_TASKS = ("single_eq", "addsub", "multiarith", "svamp", "date_understanding",
              "tracking_shuffled_objects", "last_letter_concatenation", "coin_flip",
              "strategy_qa")
# Training recipes compared on validation (scripts/recipe_search.sh: results/recipe_search.csv).
RECIPES = {
    "ours": dict(learning_rate=1e-4, schedule="linear", epochs=4),
    "paper's open students (lr 3e-4, constant; 10 of its 20 epochs)": dict(
        learning_rate=3e-4, schedule="constant", epochs=10),
    "between: the paper's lr, our schedule and length": dict(
        learning_rate=3e-4, schedule="linear", epochs=4),
}
# The full profile trains the recipe validation chose (`profile_choice` in
# results/recipe_search.csv; a test holds the two together) and keeps each run's epoch of best
# validation. `make demo` trains 2 epochs of our schedule and keeps the last, to fit its time;
# the task vocabulary (vocabulary.py) is checked against the full head in
# results/task_vocabulary_default.csv.
FULL_RECIPE = "ours"
DEMO_TRAINING = TrainConfig(epochs=2, learning_rate=1e-4, batch_size=8, task_vocab=True)
STUDENT_TRAINING = replace(DEMO_TRAINING, keep="best", **RECIPES[FULL_RECIPE])
TASK_VOCAB_DEPARTURE = ("Fine-tune-CoT students' LM head cut to the tokens of the task's "
                        "questions and curated completions (vocabulary.py); the input embedding "
                        "and the baselines keep the full vocabulary")
DEPARTURES = ("departures from the paper: Gemma-3-270M student (paper: GPT-3 0.3B-6.7B, T5, "
              "GPT-2); tied embedding frozen; lr 1e-4, batch 8 (paper: 20 epochs for the open "
              "students, 4 for GPT-3); the last 40 train questions held out for validation; "
              "bf16 autocast where the CPU has fast bf16; " + TASK_VOCAB_DEPARTURE)
COPYABLE_DEPARTURE = ("copyable answer after `-->` (Last Letter: letters spaced out; multiple "
                      "choice: the choice text, then its letter); the paper writes the answer")
CONSISTENT_CHOICES_DEPARTURE = ("multiple-choice samples whose rationale concludes another "
                                "choice than their answer dropped (curation.named_choice); the "
                                "paper keeps every sample with the right answer")
PROFILES = {p.name: p for p in [
    Profile("smoke", "tiny", ("coin_flip", "multiarith"),
            TrainConfig(epochs=1, batch_size=4, bf16=False, checkpoint_every=2),
            train_limit=16, test_limit=6, max_new_tokens=16,
            notes="tiny random model: exercises every step in seconds; accuracies are meaningless"),
    Profile("default", GEMMA, ("coin_flip", "last_letter_concatenation"), DEMO_TRAINING,
            validation_size=40, notes=DEPARTURES + "; 2 epochs and two tasks, so that `make "
            "demo` fits ~20 minutes on 2 CPU cores"),
    Profile("full", GEMMA, FULL_TASKS, STUDENT_TRAINING, validation_size=40,
            notes=DEPARTURES + f"; recipe {FULL_RECIPE!r} ({RECIPES[FULL_RECIPE]}) chosen on "
            "validation (results/recipe_search.csv), each run keeping its epoch of best "
            "validation; the 9 tasks with recorded train rationales"),
]}


def get_profile(name: str, tasks: list[str] | None = None, student: str | None = None,
                epochs: int | None = None, learning_rate: float | None = None,
                train_limit: int | None = None, test_limit: int | None = None,
                validation_size: int | None = None, teacher: str | None = None,
                degree: int | None = None, distinct: bool | None = None,
                answer_format: str | None = None, task_vocab: bool | None = None,
                schedule: str | None = None, keep: str | None = None,
                test_every_epoch: bool | None = None,
                consistent_choices: bool | None = None) -> Profile:
    """A profile with some settings overridden (None keeps the profile's own); the teacher
    source must cover every task at degree D, checked here before anything runs."""
    if name not in PROFILES:
        raise CotlibError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    profile = PROFILES[name]
    for key, value, kind in [("epochs", epochs, int), ("learning_rate", learning_rate, float),
                             ("train_limit", train_limit, int), ("test_limit", test_limit, int),
                             ("validation_size", validation_size, int), ("degree", degree, int)]:
        if value is not None and (not isinstance(value, (kind, int)) or not math.isfinite(value)
                                  or value <= 0):  # nan/inf: a NaN loss or a torch traceback
            raise CotlibError(f"parameter {key}={value!r}: expected a positive "
                              f"{'finite float' if kind is float else kind.__name__}")
    if tasks is not None:
        if isinstance(tasks, str) or not tasks:
            raise CotlibError(f"parameter tasks={tasks!r}: expected a non-empty list of task names")
        for task in tasks:
            get_task(task)
    train = replace(profile.train, **{k: v for k, v in
                                      [("epochs", epochs), ("learning_rate", learning_rate),
                                       ("task_vocab", task_vocab), ("schedule", schedule),
                                       ("keep", keep)] if v is not None})
    changes = {"tasks": tuple(tasks) if tasks else None, "student": student,
               "train_limit": train_limit, "test_limit": test_limit,
               "validation_size": validation_size, "teacher": teacher, "degree": degree,
               "distinct": distinct, "answer_format": answer_format,
               "test_every_epoch": test_every_epoch, "consistent_choices": consistent_choices}
    if answer_format not in (None, *ANSWER_FORMATS):
        raise CotlibError(f"parameter answer_format={answer_format!r}: choose from "
                          f"{', '.join(ANSWER_FORMATS)}")
    if answer_format == "copyable":
        changes["notes"] = profile.notes + "; " + COPYABLE_DEPARTURE
    if consistent_choices and not profile.consistent_choices:
        changes["notes"] = changes.get("notes", profile.notes) + "; " + CONSISTENT_CHOICES_DEPARTURE
    if train.task_vocab != profile.train.task_vocab:
        notes = changes.get("notes", profile.notes)
        changes["notes"] = (notes + "; " + TASK_VOCAB_DEPARTURE if train.task_vocab else
                            notes.replace("; " + TASK_VOCAB_DEPARTURE, "; full-vocabulary head"))
    profile = replace(profile, train=train, **{k: v for k, v in changes.items() if v is not None})
    if teacher is not None or degree is not None:  # asked for: check before anything runs
        source = sources.get_source(profile.teacher)
        for task in profile.tasks:
            sources.check_degree(source, get_task(task), profile.degree)
    return profile


def run_dir(profile: Profile, task: str, method: str) -> Path:
    """runs/<task>/<method>-<hash of everything that changes this method's result>.

    Profiles share cells: `full` reuses what `default` finished; baselines do not depend
    on training settings.
    """
    settings = [profile.student, profile.test_limit, profile.max_new_tokens]
    if method in TRAINED:
        train = asdict(train_config(profile, method))
        for key, default in NEW_TRAIN_DEFAULTS.items():  # older cells keep their hash
            if train[key] == default:
                del train[key]
        settings += [train, profile.train_limit, profile.validation_size]
    teacher = {"teacher": profile.teacher, "degree": profile.degree, "distinct": profile.distinct}
    if method == "fine_tune_cot" and teacher != TEACHER_DEFAULTS:  # older cells keep their hash
        settings.append(teacher)
    if method == "fine_tune_cot" and profile.answer_format != "paper":
        settings.append({"answer_format": profile.answer_format})
    if method == "fine_tune_cot" and profile.consistent_choices:  # else older cells' hash
        settings.append({"consistent_choices": True})
    # not hashed: test_every_epoch adds a test curve beside the same training (the step order
    # is a pure function of the seed), so the main table reuses a recipe-search cell
    config = json.dumps(settings, sort_keys=True)
    digest = hashlib.sha256(config.encode()).hexdigest()[:8]
    return runs_root() / task / f"{method}-{digest}"


TEACHER_DEFAULTS = {"teacher": "recorded", "degree": 1, "distinct": False}
NEW_TRAIN_DEFAULTS = {"task_vocab": False, "schedule": "linear", "keep": "last"}  # hashed if set


def train_config(profile: Profile, method: str) -> TrainConfig:
    """The profile's training settings for a method: the task vocabulary is Fine-tune-CoT's
    alone (the baselines keep the full head)."""
    return profile.train if method == "fine_tune_cot" else replace(profile.train, task_vocab=False)


def train_indices(profile: Profile, task: Task) -> tuple[list[int], list[int]]:
    """(training, validation) sample indices: the validation slice ends the train split."""
    # through split(): a task without its train split offline (AQuA) says so
    indices = [s.sample_index for s in task.split("train")][:profile.train_limit]
    cut = len(indices) - profile.validation_size
    if cut < 1:
        raise CotlibError(f"validation_size={profile.validation_size} holds out all "
                          f"{len(indices)} train questions of {task.name} (train_limit="
                          f"{profile.train_limit}): the validation slice leaves no train questions")
    return indices[:cut], indices[cut:]


def train_samples(profile: Profile, task: Task, method: str) -> list[FinetuneSample]:
    indices = train_indices(profile, task)[0]
    if method == "vanilla":
        return vanilla(task, indices)
    teacher, wanted = teacher_completions(profile, task), set(indices)
    if not any(c.sample_index in wanted for c in teacher):
        raise CotlibError(f"teacher source {profile.teacher} has no rationales on the train "
                          f"questions of {task.name}; Fine-tune-CoT needs them")
    return curate(task, teacher, indices, distinct=profile.distinct,
                  answer_format=profile.answer_format,
                  consistent_choices=profile.consistent_choices)


def teacher_completions(profile: Profile, task: Task) -> list:
    """The profile's teacher on the train part (the one door: `sources.completions`)."""
    source = sources.get_source(profile.teacher)
    return sources.completions(source, task, "train", profile.degree)


def run(profile: Profile, task_name: str, method: str, force: bool = False, log=print) -> dict:
    """One cell of the main table: train if needed, evaluate on test, store everything.

    A finished run (metrics.json present) is loaded, not recomputed, unless force=True.
    """
    task = get_task(task_name)
    out = run_dir(profile, task_name, method)
    if not force and (done := reusable(profile, method, out)):
        return done
    samples = task.split("test")[:profile.test_limit]
    # a task without train questions offline (AQuA) has no validation slice for its baselines
    held_out = [] if "train" in task.unavailable else train_indices(profile, task)[1]
    validation = [task.samples()[i] for i in held_out]
    curated = train_samples(profile, task, method) if method in TRAINED else []
    if method == "few_shot_cot":
        few_shot_exemplars(task)  # a task without exemplars fails here, before any output
    if method in TRAINED and not curated:
        raise CotlibError(f"{task_name}: zero curated samples for {method}")
    if method in TRAINED and train_config(profile, method).keep == "best" and not validation:
        raise CotlibError(f"{task_name}: keep='best' chooses the epoch on validation, and the "
                          "profile holds none out (set validation_size)")
    model, tokenizer = load_student(profile.student)
    with owned(out, log):  # another process on this runs folder may be doing this very cell
        if not force and (done := reusable(profile, method, out)):
            return done
        return measure(profile, task, method, out, model, tokenizer, samples, validation,
                       curated, log)


def measure(profile: Profile, task: Task, method: str, out: Path, model, tokenizer,
            samples: list, validation: list, curated: list[FinetuneSample], log=print) -> dict:
    """Train (trained methods), evaluate, and store the cell in `out`; metrics.json last."""
    metrics: dict = {"task": task.name, "method": method, "profile": profile.name,
                     "student": profile.student}
    answer_format = profile.answer_format if method == "fine_tune_cot" else "paper"
    ask = lambda student, questions: evaluate(
        student, tokenizer, task, questions, EVAL_METHOD.get(method, method),
        profile.max_new_tokens, profile.eval_batch_size, profile.train.bf16, answer_format)
    if method in TRAINED:
        config = train_config(profile, method)
        questions = [s.question for s in samples + validation]  # read at test time
        scores = None
        if config.keep == "best" or profile.test_every_epoch:
            scores = lambda student: {  # "test" only as the paper's protocol: never chooses
                "validation": accuracy(ask(student, validation))["accuracy"],
                **({"test": accuracy(ask(student, samples))["accuracy"]}
                   if profile.test_every_epoch else {})}
        model, trained = fine_tuned(model, tokenizer, curated, config, out, log, questions, scores)
        metrics.update(train_samples=len(curated), **trained)
        if profile.test_every_epoch:
            metrics["paper_protocol_best_test"] = max(e["test"] for e in trained["epochs"])
    if method == "fine_tune_cot":
        metrics.update(teacher_source(profile, task, log))
    started = time.time()  # evaluation time: validation slice and test
    if validation:
        metrics["validation"] = accuracy(ask(model, validation))
    predictions = ask(model, samples)
    metrics.update(accuracy(predictions), eval_seconds=time.time() - started,
                   peak_memory_gb=peak_memory_gb())
    if method == "fine_tune_cot":  # the official code's reading, beside ours (which tables use)
        metrics["accuracy_paper_reading"] = paper_accuracy(task, [asdict(p) for p in predictions])
    write_records(out / "predictions.jsonl", [asdict(p) for p in predictions])
    write_atomic(out / "config.json", json.dumps({**asdict(profile), "versions": versions()},
                                                 indent=1, default=str))
    write_atomic(out / "metrics.json", json.dumps(metrics, indent=1))
    return metrics


def peak_memory_gb() -> float:
    """This process's peak resident memory so far (GiB; Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def teacher_source(profile: Profile, task: Task, log=print) -> dict:
    """What the run learnt from: the source, D, and its records that match no question."""
    found = sources.joined(sources.get_source(profile.teacher), task)
    if found.unmatched:
        log(f"{profile.teacher} {task.name}: {found.unmatched} of {found.records} records match "
            "no question of ours (not used)")
    return {"teacher": profile.teacher, "degree": profile.degree, "distinct": profile.distinct,
            "source_records": found.records, "source_unmatched": found.unmatched}


def finished(out: Path) -> dict:
    """The metrics of a finished run directory ({} while it is not finished)."""
    done = out / "metrics.json"
    return json.loads(done.read_text()) if done.is_file() else {}


def reusable(profile: Profile, method: str, out: Path) -> dict:
    """`finished(out)`, unless the profile asks for a test curve (the paper's protocol) that
    the finished cell was trained without: then one clear error, not a silent gap."""
    done = finished(out)
    if done and profile.test_every_epoch and method in TRAINED and \
            "paper_protocol_best_test" not in done:
        raise CotlibError(f"{out}: finished without the per-epoch test curve that "
                          "test_every_epoch asks for; move the folder away to train it again")
    return done


def fine_tuned(model, tokenizer, curated: list[FinetuneSample], config: TrainConfig,
               out: Path, log=print, questions: list[str] = (), scores=None) -> tuple:
    """(fine-tuned model, training metrics), trained once and kept in out/model.

    A run killed during evaluation reloads the saved student instead of training again.
    """
    saved = out / "model"
    if not (saved / "train.json").is_file():
        trained = train(model, tokenizer, curated, config, out, log=log, questions=questions,
                        scores=scores)
        model = trained.pop("model")
        if hasattr(model, "merge_and_unload"):  # LoRA: fold the adapters into the weights
            model = model.merge_and_unload()
        partial = saved.with_name("model.partial")
        vocabulary.save(model, tokenizer, partial)
        summary = {k: trained[k] for k in ("total_steps", "tokens", "seconds", "losses", "epochs")}
        (partial / "train.json").write_text(json.dumps(summary))
        shutil.rmtree(saved, ignore_errors=True)
        os.replace(partial, saved)
        shutil.rmtree(out / "checkpoint", ignore_errors=True)
        (out / BEST_FILE).unlink(missing_ok=True)
        return model, summary
    model = type(model).from_pretrained(saved, dtype=torch.float32)
    if (ids := vocabulary.load_ids(saved)) is not None:
        vocabulary.cut_head(model, ids)
    return model, json.loads((saved / "train.json").read_text())


TRAINED = ("fine_tune_cot", "vanilla")
EVAL_METHOD = {"fine_tune_cot": "fine_tune", "vanilla": "vanilla"}


def read_records(path: Path) -> list[dict]:
    """A run folder's JSON-lines file (predictions.jsonl) as dicts."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def write_records(path: Path, records: list[dict]) -> None:
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def has_cell(task: Task, method: str) -> bool:
    """Whether the main table has this cell: not few-shot-CoT without exemplars (paper: "-")."""
    return method != "few_shot_cot" or has_few_shot(task)


def recipe_profile(profile: Profile, settings: dict) -> Profile:
    """`profile` trained with a recipe: each epoch scored, the best on validation kept, and
    test scored after each epoch for the paper's protocol only."""
    return replace(profile, train=replace(profile.train, keep="best", **settings),
                   test_every_epoch=True)


def with_settings(profile: Profile, cell: dict) -> Profile:
    """`profile` with a cell's overrides: Profile fields, or TrainConfig fields (task_vocab ...);
    its "task" is not one. Any other key is one error naming the cell."""
    train = {k: v for k, v in cell.items() if k in TrainConfig.__dataclass_fields__}
    rest = {k: v for k, v in cell.items() if k != "task" and k not in train}
    if unknown := sorted(set(rest) - set(Profile.__dataclass_fields__)):
        raise CotlibError(f"cell {cell}: expected profile settings (teacher, degree, "
                          f"answer_format, max_steps ...), not {unknown}")
    return replace(profile, train=replace(profile.train, **train), **rest)
