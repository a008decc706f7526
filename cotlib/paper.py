"""The paper as one batch: the numbered notebooks, in order, headless with papermill.

Every profile knob is passed to each notebook that declares it, so what a committed notebook
last ran with never decides what runs. Executed copies go to runs/notebooks/<profile>/ with
their figures and tables (or over the committed notebooks, figures and tables: in place);
a copy appears only once its notebook has run to the end.
"""
from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
import papermill

from .data import PROJECT_ROOT, CotlibError, runs_root
from .experiments import PROFILES, get_profile

NOTEBOOKS = PROJECT_ROOT / "notebooks"
# the knobs of `experiments.get_profile` a notebook's parameters cell may declare
PROFILE_KNOBS = ("tasks", "student", "epochs", "learning_rate", "train_limit", "test_limit")


@dataclass
class Step:
    notebook: Path
    output: Path  # written only once the notebook has run to the end
    parameters: dict
    failed: Path  # where the executed copy of a failed run goes


def notebooks(names: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in order, or those named ("02", "02_curation" or its file name)."""
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return found
    chosen = []
    for name in names:
        match = [p for p in found if name in (p.name, p.stem, p.stem[:2])]
        if not match:
            raise CotlibError(f"unknown notebook {name!r}; choose from "
                              f"{', '.join(p.stem for p in found)}")
        chosen += match
    return sorted(set(chosen), key=found.index)


def value(text: str):
    """A `-p NAME VALUE` value: a Python literal (3, 1e-4, None, ['coin_flip']) or a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def check_type(name: str, given, notebook: Path, default: str) -> None:
    """An override must have its default's type (an int passes for a float; None: any)."""
    expected = type(value(default))
    if value(default) is None or isinstance(given, expected) or (
            expected is float and isinstance(given, int)) or given is None:
        return
    raise CotlibError(f"parameter {name}={given!r}: expected {expected.__name__}, like its "
                      f"default {default} in {notebook.name}")


def plan(profile: str, names: list[str] | None = None, in_place: bool = False,
         overrides: dict | None = None) -> list[Step]:
    """What `run` would execute, checked before anything is written."""
    if profile not in PROFILES:
        raise CotlibError(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    overrides = overrides or {}
    if "profile" in overrides:
        raise CotlibError("parameter profile: give it as --profile")
    get_profile(profile, **{k: v for k, v in overrides.items() if k in PROFILE_KNOBS})
    out = runs_root() / "notebooks" / profile
    steps, used = [], set()
    for notebook in notebooks(names):
        declared = papermill.inspect_notebook(str(notebook))
        parameters = {}
        if "profile" in declared:
            parameters = {"profile": profile, **{k: None for k in PROFILE_KNOBS if k in declared}}
        if not in_place:
            parameters.update({k: str(out / k.removesuffix("_dir")) for k in
                               ("figures_dir", "results_dir") if k in declared})
        for name, given in overrides.items():
            # a profile knob goes only where `profile` is declared (01's `tasks` are its own)
            if name in declared and (name not in PROFILE_KNOBS or "profile" in declared):
                check_type(name, given, notebook, declared[name]["default"])
                parameters[name] = given
                used.add(name)
        steps.append(Step(notebook, notebook if in_place else out / notebook.name, parameters,
                          out / f"{notebook.stem}.failed.ipynb"))
    if unknown := set(overrides) - used:
        raise CotlibError(f"parameter {', '.join(sorted(unknown))}: declared by none of "
                          f"{', '.join(s.notebook.stem for s in steps)}")
    return steps


def run(steps: list[Step], log: Callable[[str], None] = print) -> None:
    """Execute the steps in order; a failing cell stops the batch, naming notebook and cell."""
    # the kernels import this checkout's cotlib, whatever copy is installed
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *([path] if path else [])])
    try:
        execute(steps, log)
    finally:
        os.environ.pop("PYTHONPATH") if path is None else os.environ.update(PYTHONPATH=path)


def execute(steps: list[Step], log: Callable[[str], None]) -> None:
    for number, step in enumerate(steps):
        partial = step.output.with_name(f".{step.output.stem}.partial.ipynb")
        partial.parent.mkdir(parents=True, exist_ok=True)
        log(f"{step.notebook.name} -> {step.output}")
        try:
            papermill.execute_notebook(str(step.notebook), str(partial), step.parameters,
                                       cwd=str(NOTEBOOKS), kernel_name="python3",
                                       progress_bar=False)
        except papermill.PapermillExecutionError as e:
            step.failed.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, step.failed)
            if later := [s.notebook.stem for s in steps[number + 1:]]:
                log(f"skipped: {', '.join(later)} (after the failure in {step.notebook.stem})")
            raise CotlibError(f"{step.notebook.name} failed in cell [{e.exec_count}]: "
                              f"{e.ename}: {e.evalue} (executed copy: {step.failed})") from None
        except BaseException:  # Ctrl-C, a dead kernel: no half-run copy stays
            partial.unlink(missing_ok=True)
            raise
        if step.output == step.notebook:
            as_committed(partial, step.notebook.name)
        os.replace(partial, step.output)


def as_committed(path: Path, name: str) -> None:
    """An executed notebook as it is committed: without papermill's injected-parameters cell
    (kept, it would stay in force in a later run without -p; `papermill.parameters` keeps the
    values) and with its own file `name` for papermill's absolute input and output paths."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [c for c in notebook.cells
                      if "injected-parameters" not in c.metadata.get("tags", [])]
    notebook.metadata.get("papermill", {}).update(input_path=name, output_path=name)
    nbformat.write(notebook, path)
