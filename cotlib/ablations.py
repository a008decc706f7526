"""Notebook 06's ablations: Fine-tune-CoT cells that differ in one switch, the same recipe and
seed otherwise, each set a `tables.cells_table` saved with its predictions as
`results/<ablation>_<profile>.csv` (`experiments.run`: a finished cell is loaded, a missing one
trained). `python -m cotlib ablation NAME` runs one; notebook 06 runs them all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import results
from .data import CotlibError
from .experiments import Profile, finished, get_profile, run, run_dir, with_settings
from .tables import cells_table

MOT, ESC = "mot:gpt-3.5-turbo-cot1", "esc:gpt-3.5-turbo"


@dataclass(frozen=True)
class Ablation:
    question: str
    cells: tuple[dict, ...]  # a task and overrides of the profile (or of its TrainConfig)
    shared: dict = field(default_factory=dict)  # overrides every cell has (get_profile knobs)
    choose: str | None = None  # the switch validation chooses among (`cells_table` choose)


ABLATIONS = {
    "answer_format": Ablation(
        "the paper's answer after `-->` against a copyable one (Last Letter spelled out; a "
        "choice's text, then its letter), from the recorded teacher and gpt-3.5-turbo at D=4",
        tuple({"task": task, "answer_format": form, **teacher}
              for task, teachers in [
                  ("last_letter_concatenation", [{}, {"teacher": ESC, "degree": 4}]),
                  ("date_understanding", [{}, {"teacher": MOT, "degree": 4}]),
                  ("tracking_shuffled_objects", [{}])]
              for teacher in teachers for form in ("paper", "copyable")),
        {"task_vocab": False}, choose="answer_format"),
    "task_vocabulary": Ablation(
        "the student's head cut to the task's tokens against the full 262k-word head",
        tuple({"task": task, "task_vocab": vocab}
              for task in ("coin_flip", "date_understanding", "last_letter_concatenation")
              for vocab in (False, True))),
    "date_ablation": Ablation(
        "what moves Date Understanding off chance: dropping samples whose rationale concludes "
        "another choice, the copyable answer, gpt-3.5-turbo's diverse samples (MoT, D=4)",
        tuple({"task": "date_understanding", **cell} for cell in (
            {}, {"consistent_choices": True}, {"answer_format": "copyable"},
            {"teacher": MOT, "degree": 4},
            {"teacher": MOT, "degree": 4, "consistent_choices": True}))),
}


def ablation(name: str) -> Ablation:
    if name not in ABLATIONS:
        raise CotlibError(f"unknown ablation {name!r}; choose from {', '.join(ABLATIONS)}")
    return ABLATIONS[name]


def profile_of(name: str, profile: str) -> Profile:
    """The profile (smoke, default, full) an ablation's cells train under, with its shared
    overrides."""
    return get_profile(profile, **ablation(name).shared)


def run_ablation(name: str, profile: str = "default", tasks: list[str] | None = None,
                 results_dir: Path | None = results.RESULTS, log=print) -> pd.DataFrame:
    """An ablation's table: each missing cell (of `tasks` only, if given) trained in turn and,
    with `results_dir`, the table of all its cells (blank: not run) saved after each (`save`),
    so an interrupted run keeps what finished."""
    chosen, config = ablation(name), profile_of(name, profile)
    wanted = [c for c in chosen.cells if not tasks or c["task"] in tasks]
    if not wanted:
        log(f"{name}: no cell on {', '.join(tasks)}")
        return pd.DataFrame()
    table = lambda: cells_table(config, list(chosen.cells), choose=chosen.choose)
    for cell in wanted:
        log(f"{name}: {cell}")
        settings = with_settings(config, cell)
        trained = not finished(run_dir(settings, cell["task"], "fine_tune_cot"))
        run(settings, cell["task"], "fine_tune_cot", log=log)
        if trained and results_dir is not None:  # saved as it goes; a loaded cell adds nothing
            save(name, config, table(), results_dir)
    made = table()
    if results_dir is not None:
        save(name, config, made, results_dir)
    return made


def save(name: str, config: Profile, made: pd.DataFrame, results_dir: Path = results.RESULTS
         ) -> Path:
    """Write an ablation's table as `<name>_<profile>.csv` with its predictions."""
    chosen, path = ablation(name), Path(results_dir) / f"{name}_{config.name}.csv"
    choose = {"choose": chosen.choose} if chosen.choose else {}
    results.save_table(made, path, "cells_table", config, index=False, cells=list(chosen.cells),
                       **choose)
    return path
