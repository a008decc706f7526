"""Committed evidence: each results table beside the predictions of every cell it reports.

A cell's predictions live in `results/predictions/<task>/<method>-<hash>.jsonl.gz` (the run
folder's name): a first line with the run's config hash, profile and what training recorded,
then one line per test question. A table's recipe (`results/predictions/<table>.json`) names
the builder (`BUILDERS`: from `tables` and `studies`), its profile and arguments, and its
cells. `rebuild` puts the cells back into a scratch runs folder, accuracies recomputed from
the predictions, and calls the same builder: the committed table must come out byte for byte.
`restore` puts them back under `runs/`, so finished work is reused on any machine.
"""
from __future__ import annotations

import gzip
import inspect
import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Iterator

import pandas as pd

from . import experiments, studies, tables
from .data import PROJECT_ROOT, CotlibError, runs_root
from .evaluation import Prediction, accuracy, paper_accuracy
from .store import write_atomic
from .students import TrainConfig
from .tasks import get_task

RESULTS = PROJECT_ROOT / "results"
RECORD_KEYS = ("sample_index", "output", "rationale", "predicted", "answer", "correct")
DERIVED = ("accuracy", "ci_low", "ci_high", "n", "accuracy_paper_reading")  # from predictions
BUILDERS = {f.__name__: f for f in (tables.main_table, tables.cells_table,
                                     tables.source_table, tables.audit_table, tables.recipe_table,
                                     tables.seed_table, studies.diverse_table, studies.teacher_table)}
STUDIES = ("diverse_table", "teacher_table")  # their cells: the columns naming a run folder
# Builders that read finished cells only: NaN where a cell has not run.
PARTIAL = ("cells_table", "source_table", "seed_table", *STUDIES)
CELL_COLUMNS = ("cell", "vanilla_cell", "recorded_D1_cell")
DECIMALS = 2  # every table is committed rounded to this


class MissingPredictions(CotlibError):
    """A table some of whose cells have no committed predictions."""


# --- one cell: export from a run folder, read back, put back into a runs folder ---------

def cell_id(out: Path) -> str:
    return f"{out.parent.name}/{out.name}"


def cell_path(results_dir: Path, cell: str) -> Path:
    return Path(results_dir) / "predictions" / f"{cell}.jsonl.gz"


def export_cell(out: Path, results_dir: Path = RESULTS) -> Path:
    """A finished run folder's test predictions as committed evidence (stable bytes)."""
    metrics = experiments.finished(out)
    if not metrics:
        raise CotlibError(f"{out}: not a finished run (no metrics.json)")
    config = json.loads((out / "config.json").read_text())
    header = {"cell": cell_id(out), "config_hash": out.name.rpartition("-")[2],
              "profile": config.get("name"), "config": config,
              "metrics": {k: v for k, v in metrics.items() if k not in DERIVED}}
    records = sorted(experiments.read_records(out / "predictions.jsonl"),
                     key=lambda r: r["sample_index"])
    lines = [header] + [{k: r[k] for k in RECORD_KEYS} for r in records]
    text = "".join(json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n" for line in lines)
    path = cell_path(results_dir, header["cell"])
    write_atomic(path, gzip.compress(text.encode("utf-8"), mtime=0))
    return path


def read_cell(path: Path) -> tuple[dict, list[dict]]:
    """(header, predictions) of a committed cell; anything malformed is one error naming it."""
    try:
        lines = gzip.decompress(Path(path).read_bytes()).decode("utf-8").splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise CotlibError(f"{path}: not a whole gzipped UTF-8 file ({e})") from None
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise CotlibError(f"{path} line {number}: not JSON ({e})") from None
        wanted = ("cell", "config_hash", "profile", "config", "metrics") if number == 1 else RECORD_KEYS
        if not isinstance(row, dict) or not set(wanted) <= row.keys():
            raise CotlibError(f"{path} line {number}: expected the keys {', '.join(wanted)}")
        rows.append(row)
    if not rows:
        raise CotlibError(f"{path}: empty")
    return rows[0], rows[1:]


def restore_cell(path: Path, runs: Path) -> dict:
    """Write a committed cell back as a finished run folder under `runs`; its accuracy and
    interval recomputed from the predictions. Returns the metrics."""
    header, records = read_cell(path)
    task = get_task(header["metrics"]["task"])
    questions = task.samples()
    predictions = [Prediction(question=questions[r["sample_index"]].question,
                              **{k: r[k] for k in RECORD_KEYS}) for r in records]
    metrics = {**header["metrics"], **accuracy(predictions)}
    if header["metrics"]["method"] == "fine_tune_cot":
        metrics["accuracy_paper_reading"] = paper_accuracy(task, [asdict(p) for p in predictions])
    out = Path(runs) / header["cell"]
    experiments.write_records(out / "predictions.jsonl", [asdict(p) for p in predictions])
    write_atomic(out / "config.json", json.dumps(header["config"], indent=1))
    write_atomic(out / "metrics.json", json.dumps(metrics, indent=1))
    return metrics


def restore(results_dir: Path = RESULTS, runs: Path | None = None) -> list[str]:
    """Every committed cell not finished under `runs` (default `runs_root()`) put back there,
    so a fresh clone's runs reuse them instead of training again (no model weights: a
    restored cell serves tables, not generation). Returns the cells restored."""
    runs = Path(runs or runs_root())
    restored = []
    for path in sorted((Path(results_dir) / "predictions").glob("*/*.jsonl.gz")):
        cell = f"{path.parent.name}/{path.name.removesuffix('.jsonl.gz')}"
        if not experiments.finished(runs / cell):
            restore_cell(path, runs)
            restored.append(cell)
    return restored


def cell_metrics(results_dir: Path, cell: str) -> dict | None:
    """Accuracy, 95 % interval and recorded training facts of a committed cell (None: absent)."""
    path = cell_path(results_dir, cell)
    if not path.exists():
        return None
    header, records = read_cell(path)
    return {**header["metrics"], **accuracy([Prediction(question="", **{k: r[k] for k in RECORD_KEYS})
                                             for r in records])}


def wilson(right: int, n: int) -> dict[str, float]:
    """`evaluation.accuracy` of `right` correct answers out of `n`."""
    return accuracy([Prediction(i, "", "", "", "", "", i < right) for i in range(n)])


# --- one table: its recipe, saving it with its evidence, rebuilding it -----------------

def profile_from(config: dict) -> experiments.Profile:
    """A Profile from its `asdict` (a recipe, a run's config.json)."""
    known = {f.name for f in fields(experiments.Profile)}
    settings = {k: v for k, v in config.items() if k in known}
    train = TrainConfig(**{k: v for k, v in settings["train"].items()
                           if k in {f.name for f in fields(TrainConfig)}})
    return experiments.Profile(**{**settings, "train": train, "tasks": tuple(settings["tasks"]),
                                  "methods": tuple(settings["methods"])})


def table_cells(builder: str, profile: experiments.Profile, args: dict,
                table: pd.DataFrame | None = None) -> list[str]:
    """The run folders (`<task>/<method>-<hash>`) whose numbers `builder` reports (a study's
    are named in its table: `table` if given, else built)."""
    run_dir = experiments.run_dir
    if builder in ("main_table", "audit_table"):
        methods = args.get("methods") or profile.methods
        return [cell_id(run_dir(profile, name, method)) for name in profile.tasks
                for method in methods if experiments.has_cell(get_task(name), method)]
    if builder == "seed_table":
        return [cell_id(run_dir(experiments.with_settings(profile, {"seed": seed}), name,
                                args.get("method", "fine_tune_cot")))
                for name in profile.tasks for seed in args["seeds"]]
    if builder == "recipe_table":
        return [cell_id(run_dir(experiments.recipe_profile(profile, settings), name,
                                "fine_tune_cot"))
                for name in profile.tasks for settings in args["recipes"].values()]
    if builder == "source_table":
        args = {"cells": [{"task": t, "teacher": s, "degree": d} for t, s, d in args["cells"]]}
    if builder in ("cells_table", "source_table"):
        return [cell_id(run_dir(experiments.with_settings(profile, c), c["task"], "fine_tune_cot"))
                for c in args["cells"]]
    if builder in STUDIES:
        planned = build(builder, profile, args) if table is None else table
        named = planned[[c for c in CELL_COLUMNS if c in planned]].to_numpy().ravel()
        return list(dict.fromkeys(named))
    raise CotlibError(f"unknown table builder {builder!r}; choose from {', '.join(BUILDERS)}")


def recipe_path(results_dir: Path, table: str) -> Path:
    return Path(results_dir) / "predictions" / f"{Path(table).stem}.json"


def save_table(table: pd.DataFrame, path: Path, builder: str, profile: experiments.Profile,
               index: bool = True, **args) -> list[str]:
    """Write `table` (made by `BUILDERS[builder](profile, **args)`) rounded to a CSV, with
    its evidence (`save_evidence`); returns the cells without predictions."""
    missing = save_evidence(path, builder, profile, index, table=table, **args)
    write_atomic(path, table.round(DECIMALS).to_csv(index=index))
    return missing


def save_evidence(path: Path, builder: str, profile: experiments.Profile, index: bool = True,
                  table: pd.DataFrame | None = None, **args) -> list[str]:
    """Beside the table at `path` (`table`, if made already): its recipe, and the predictions
    of each of its cells that has finished under runs/; returns the cells that have not (the
    table reports NaN there)."""
    path = Path(path)
    cells = table_cells(builder, profile, args, table)
    missing = []
    for cell in cells:
        out = runs_root() / cell
        if experiments.finished(out):
            export_cell(out, path.parent)
        else:
            missing.append(cell)
    recipe = {"table": path.name, "builder": builder, "profile": asdict(profile),
              "args": args, "index": index, "cells": cells, "blank": missing}
    write_atomic(recipe_path(path.parent, path.name),
                 json.dumps(recipe, indent=1, default=list) + "\n")
    return missing


def read_recipe(results_dir: Path, table: str) -> dict:
    path = recipe_path(results_dir, table)
    try:
        recipe = json.loads(path.read_text())
    except FileNotFoundError:
        raise CotlibError(f"{path}: no recipe for {table} (save it with results.save_table)") from None
    except json.JSONDecodeError as e:
        raise CotlibError(f"{path}: not JSON ({e})") from None
    missing = {"table", "builder", "profile", "args", "index", "cells"} - recipe.keys()
    if missing:
        raise CotlibError(f"{path}: missing {', '.join(sorted(missing))}")
    return recipe


def committed_tables(results_dir: Path = RESULTS) -> list[str]:
    """The committed tables that have a recipe (report student accuracies)."""
    return sorted(read_recipe(results_dir, p.stem + ".csv")["table"]
                  for p in (Path(results_dir) / "predictions").glob("*.json"))


def blank(recipe: dict) -> set[str]:
    """The cells a table left blank, not run when it was saved (only a table that reads
    finished cells, never training, may have them)."""
    return set(recipe.get("blank", ())) if recipe["builder"] in PARTIAL else set()


def lacking(results_dir: Path, table: str) -> list[str]:
    """The cells `table` reports whose predictions are not committed."""
    recipe = read_recipe(results_dir, table)
    left = blank(recipe)
    return [c for c in recipe["cells"] if c not in left and not cell_path(results_dir, c).exists()]


def rebuild(table: str, results_dir: Path = RESULTS) -> str:
    """The CSV text of a committed table, made again from its committed predictions by the
    builder that made it; never trains (every cell it reports must be committed)."""
    recipe = read_recipe(results_dir, table)
    profile = profile_from(recipe["profile"])
    if table_cells(recipe["builder"], profile, recipe["args"]) != recipe["cells"]:
        raise CotlibError(f"{table}: its profile now names other run folders than its recipe "
                          "(a config hash changed); rebuild it from runs/ first")
    if missing := lacking(results_dir, table):
        raise MissingPredictions(f"{table}: {len(missing)} of {len(recipe['cells'])} cells have "
                                 f"no committed predictions: {', '.join(missing)}")
    with tempfile.TemporaryDirectory() as scratch, runs_in(Path(scratch)):
        left = blank(recipe)  # a blank cell stays blank, even if run since
        for cell in (c for c in recipe["cells"] if c not in left):
            restore_cell(cell_path(results_dir, cell), Path(scratch))
        made = build(recipe["builder"], profile, recipe["args"])
    return made.round(DECIMALS).to_csv(index=recipe["index"])


def build(builder: str, profile: experiments.Profile, args: dict) -> pd.DataFrame:
    """`builder`'s table from the cells under `runs_root()`, quietly; a study trains nothing."""
    if builder not in BUILDERS:
        raise CotlibError(f"unknown table builder {builder!r}; choose from {', '.join(BUILDERS)}")
    function = BUILDERS[builder]
    quiet = {"log": lambda message: None} if "log" in inspect.signature(function).parameters else {}
    return function(profile, **args, **({"run_missing": False} if builder in STUDIES else {}),
                    **quiet)


@contextmanager
def runs_in(folder: Path) -> Iterator[None]:
    """`runs_root()` is `folder` while the block runs (the builders read cells there)."""
    before = os.environ.get("COTLIB_RUNS")
    os.environ["COTLIB_RUNS"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("COTLIB_RUNS")
        else:
            os.environ["COTLIB_RUNS"] = before


def check(results_dir: Path = RESULTS, write: bool = False) -> dict[str, str]:
    """Each table with a recipe: "rebuilt exactly", "differs ..." (with `write`: "rewritten
    ...") or "lacking ..."."""
    status = {}
    for table in committed_tables(results_dir):
        try:
            made = rebuild(table, results_dir)
        except MissingPredictions as e:
            status[table] = f"lacking predictions: {e}"
            continue
        path = Path(results_dir) / table
        if made == path.read_text():
            status[table] = "rebuilt exactly"
        elif write:  # a reading added to a builder: the table follows its predictions again
            path.write_text(made)
            status[table] = "rewritten from its predictions"
        else:
            status[table] = "differs from its predictions"
    return status


# --- reading committed tables (figures, README) ---------------------------------------

def read_table(path: Path, columns: list[str], **read) -> pd.DataFrame:
    """A committed CSV with at least `columns`; a missing file or column is one error."""
    try:
        table = pd.read_csv(path, **read)
    except FileNotFoundError:
        raise CotlibError(f"{path}: no such results file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise CotlibError(f"{path}: not a CSV table ({e})") from None
    absent = [c for c in columns if c not in table.columns]
    if absent:
        raise CotlibError(f"{path}: missing column(s) {', '.join(absent)}")
    return table


def main_long(results_dir: Path, table: str) -> pd.DataFrame:
    """A main table as one row per (task, row): accuracy, its 95 % interval and n, and the
    paper's GPT-3 0.3B number for the same method. Intervals come from the committed
    predictions; a cell without them gets the Wilson interval of its accuracy on the full
    test split (`interval` says which)."""
    path = Path(results_dir) / table
    wide = read_table(path, [], index_col=0)
    recipe = read_recipe(results_dir, table)
    profile = profile_from(recipe["profile"])
    cells = dict(zip([(c.split("/")[0], c.split("/")[1].rpartition("-")[0])
                      for c in recipe["cells"]], recipe["cells"]))
    paper = tables.paper_results()
    rows = []
    for name in profile.tasks:
        if name not in wide.columns:
            raise CotlibError(f"{path}: missing column {name} (a task of its profile)")
        task = get_task(name)
        n = profile.test_limit or len(task.split("test"))
        for method in ("teacher", *profile.methods):
            label = "Teacher (175B, recorded)" if method == "teacher" else tables.ROW_NAMES[method]
            if label not in wide.index or pd.isna(wide.loc[label, name]):
                continue
            value = float(wide.loc[label, name])
            cell = cells.get((name, method))
            measured = cell_metrics(results_dir, cell) if cell else None
            interval = measured or wilson(round(value * n / 100), n)
            paper_key = ("GPT-3", "Teacher", "175B") if method == "teacher" else \
                ("GPT-3", label, "0.3B")
            rows.append({"task": name, "title": task.title, "row": label, "accuracy": value,
                         "ci_low": interval["ci_low"], "ci_high": interval["ci_high"], "n": n,
                         "interval": "predictions" if measured else "accuracy and n",
                         "paper": paper.loc[paper_key, name] if paper_key in paper.index
                         else float("nan")})
    return pd.DataFrame(rows)


def seeds_cell(row: pd.Series) -> str:
    """A seed_table row as the README shows it: mean ± spread (count); one seed: no spread."""
    if row["seeds"] < 2:
        return f"– ({int(row['seeds'])})"
    return f"{row['mean']:.2f} ± {row['spread']:.2f} ({int(row['seeds'])})"


def main_markdown(results_dir: Path, table: str, seeds: str | None = None) -> str:
    """A committed main table as the README shows it: each student accuracy with its 95 %
    interval from the committed predictions and, with `seeds` (a `seed_table` CSV), a row of
    Fine-tune-CoT's mean ± spread over the seeds (their count in brackets)."""
    wide = read_table(Path(results_dir) / table, [], index_col=0)
    students = {(r.task, r.row): r for r in main_long(results_dir, table).itertuples()
                if r.row != "Teacher (175B, recorded)"}
    spread = read_table(Path(results_dir) / seeds, ["task", "seeds", "mean", "spread"]
                        ).set_index("task") if seeds else None

    def value(row: str, task: str) -> str:
        if (r := students.get((task, row))) is not None:
            return f"{r.accuracy:.2f} ({r.ci_low:.1f}–{r.ci_high:.1f})"
        return "–" if pd.isna(wide.loc[row, task]) else f"{wide.loc[row, task]:.2f}"

    lines = ["| | " + " | ".join(get_task(t).title for t in wide.columns) + " |",
             "|---" * (len(wide.columns) + 1) + "|"]
    for row in wide.index:
        if row.endswith((tables.LOW, tables.HIGH)):
            continue
        lines.append(f"| {row} | " + " | ".join(value(row, t) for t in wide.columns) + " |")
        if row == tables.ROW_NAMES["fine_tune_cot"] and spread is not None:
            lines.append("| Fine-tune-CoT, mean ± spread over seeds | " + " | ".join(
                seeds_cell(spread.loc[t]) if t in spread.index else "–" for t in wide.columns)
                + " |")
    return "\n".join(lines)
