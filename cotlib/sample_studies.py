"""The paper's sample studies: read teacher and student rationales side by side to see why
Fine-tune-CoT works and where it fails (lengths, cases, labelled errors, diversity).

Reads finished Fine-tune-CoT cells (never trains). Hand labels live in a small CSV keyed by
(task, run, sample_index), with a hash of the labelled output so a rerun that changes a
prediction is caught instead of silently keeping a stale label.
"""
from __future__ import annotations

import hashlib
import io
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib import cbook

from . import sources
from .audit import intermediate_answer
from .data import CotlibError
from .experiments import (Profile, finished, read_records, run_dir, teacher_completions,
                          train_indices, with_settings)
from .store import write_atomic
from .tasks import Sample, Task, canonical_gold, extract_number, get_task


@dataclass(frozen=True)
class Cell:
    """A finished Fine-tune-CoT student: its settings and where its predictions are."""
    task: str
    profile: Profile  # the profile with this cell's settings (teacher, D, answer format)
    path: Path

    @property
    def run(self) -> str:  # the run folder, e.g. fine_tune_cot-56b8ca82: keys the labels
        return self.path.name

    @property
    def name(self) -> str:
        teacher = "text-davinci-002" if self.profile.teacher == "recorded" else self.profile.teacher
        copyable = ", copyable" if self.profile.answer_format == "copyable" else ""
        steps = f", {self.profile.train.max_steps} steps" if self.profile.train.max_steps else ""
        return f"{teacher}, D={self.profile.degree}{copyable}{steps}"

    def predictions(self) -> list[dict]:
        return read_records(self.path / "predictions.jsonl")


def finished_cells(profile: Profile, cells: list[dict] = (), log=print) -> list[Cell]:
    """The profile's own Fine-tune-CoT cell of each task, then `cells` (a task and overrides
    of the profile or its TrainConfig: teacher, degree, answer_format, max_steps, the steps
    budget of notebook 05); cells not run yet are left out, said."""
    wanted = [{"task": t} for t in profile.tasks] + list(cells)
    found = []
    for cell in wanted:
        if "task" not in cell:
            raise CotlibError(f"cell {cell}: expected a task and profile settings "
                              "(teacher, degree, answer_format, max_steps ...)")
        get_task(cell["task"])  # an unknown task: one clear line
        chosen = with_settings(profile, cell)  # an unknown setting: one clear line
        path = run_dir(chosen, cell["task"], "fine_tune_cot")
        if finished(path):
            found.append(Cell(cell["task"], chosen, path))
        else:
            log(f"not run yet, left out: {cell} ({path.parent.name}/{path.name})")
    return found


def words(text: str) -> int:
    return len(text.split())


# --- lengths -------------------------------------------------------------------------------

def lengths(cells: list[Cell]) -> pd.DataFrame:
    """Rationale length in words, one row per rationale: the teacher's on the train questions
    the student learnt from (all D, before the answer filter), the student's on test."""
    rows = []
    for cell in cells:
        task = get_task(cell.task)
        trained_on = set(train_indices(cell.profile, task)[0])
        for c in teacher_completions(cell.profile, task):
            if c.sample_index in trained_on:
                rows.append({"task": cell.task, "cell": cell.name, "who": "teacher (train)",
                             "correct": c.correct, "words": words(c.rationale)})
        rows += [{"task": cell.task, "cell": cell.name, "who": "student (test)",
                  "correct": p["correct"], "words": words(p["rationale"])}
                 for p in cell.predictions()]
    return pd.DataFrame(rows)


def length_boxes(table: pd.DataFrame) -> pd.DataFrame:
    """The box plot of words per rationale of each task, cell, teacher/student and answer
    (right/wrong), as numbers: count, quartiles, whiskers (1.5 IQR) and the distinct outliers
    (space-separated); what `plots.length_by_outcome` draws, small enough to commit."""
    rows = []
    for (task, cell, who, correct), group in table.groupby(["task", "cell", "who", "correct"],
                                                           sort=False):
        box = cbook.boxplot_stats(group.words.to_numpy())[0]
        rows.append({"task": task, "cell": cell, "who": who, "correct": correct,
                     "rationales": len(group), "whislo": box["whislo"], "q1": box["q1"],
                     "median": box["med"], "q3": box["q3"], "whishi": box["whishi"],
                     "fliers": " ".join(str(int(w)) for w in sorted(set(box["fliers"])))})
    return pd.DataFrame(rows)


# --- what a rationale concludes; side by side ------------------------------------------------

RESULT = re.compile(r"=\s*\$?(-?\d[\d,]*\.?\d*)")
HEADS = re.compile(r"\b(heads|tails) up\b", re.I)


def conclusion(task: Task, sample: Sample, rationale: str) -> str | None:
    """The answer the rationale itself reaches, before `-->`: Last Letter's letters, the
    choice named last, the last computed number, Coin Flip's last heads/tails state; None if
    unread. A reading for picking examples; labels decide what is counted."""
    if task.answer_type in ("letters", "choice"):
        return intermediate_answer(task, sample, rationale)
    if task.answer_type == "number":  # the last result "= N", else the last number
        numbers = RESULT.findall(rationale) or re.findall(r"-?\d[\d,]*\.?\d*", rationale)
        return canonical_gold(extract_number(numbers[-1])) if numbers else None
    if task.name == "coin_flip":
        states = HEADS.findall(rationale)
        return ("yes" if states[-1].lower() == "heads" else "no") if states else None
    return None


def test_teacher(cell: Cell) -> dict[int, tuple[str, object]]:
    """The teacher shown beside the student on each test question: the cell's own where it
    answered that question, else the recorded text-davinci-002; its first completion."""
    task, first = get_task(cell.task), {}
    for spec in dict.fromkeys((cell.profile.teacher, "recorded")):
        for c in sources.completions(sources.get_source(spec), task, "test"):
            first.setdefault(c.sample_index, (spec, c))
    return first


def cases(cell: Cell, labels: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every test question of a cell: teacher and student side by side, and its case. A
    correct student answer is "right for a wrong reason" when its hand label says so, or,
    unlabelled, when the rationale concludes another answer than the gold one."""
    task, samples = get_task(cell.task), get_task(cell.task).samples()
    teacher = test_teacher(cell)
    hand = {} if labels is None else {int(r.sample_index): r.label for r in labels.itertuples()
                                      if r.task == cell.task and r.run == cell.run}
    rows = []
    for p in cell.predictions():
        sample = samples[p["sample_index"]]
        spec, t = teacher.get(p["sample_index"], ("", None))
        reached = conclusion(task, sample, p["rationale"])
        wrong_reason = p["correct"] and (
            hand[p["sample_index"]] == "wrong_reason" if p["sample_index"] in hand
            else reached is not None and not task.is_correct(reached, sample.answer))
        teacher_right = bool(t and t.correct)
        case = ("right for a wrong reason" if wrong_reason else "both right"
                if p["correct"] and teacher_right else "student wrong, teacher right"
                if teacher_right else "student right, teacher wrong" if p["correct"]
                else "both wrong")
        rows.append({"task": cell.task, "cell": cell.name, "run": cell.run,
                     "sample_index": p["sample_index"], "case": case,
                     "question": sample.question, "gold": sample.answer, "teacher": spec,
                     "teacher_rationale": t.rationale if t else "",
                     "teacher_answer": t.prediction if t else "",
                     "student_rationale": p["rationale"], "student_answer": p["predicted"],
                     "student_concludes": reached})
    return pd.DataFrame(rows)


SIDE_BY_SIDE = ("both right", "student wrong, teacher right", "right for a wrong reason")


def side_by_side(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One question of each case in SIDE_BY_SIDE per task and cell (a seeded pick); a case
    that never occurs is left out."""
    picks = [group.sample(1, random_state=seed) for (_, _, case), group
             in table.groupby(["task", "cell", "case"], sort=False) if case in SIDE_BY_SIDE]
    return pd.concat(picks) if picks else table.head(0)


def as_markdown(row) -> str:
    """A side-by-side example as markdown text."""
    quote = lambda text: "\n".join("> " + line for line in str(text).splitlines()) or "> (none)"
    return (f"**{row.task}, {row.cell}: {row.case}** (test question {row.sample_index}, "
            f"gold {row.gold})\n\n{quote(row.question)}\n\n*Teacher ({row.teacher}), answer "
            f"{row.teacher_answer or '-'}:*\n\n{quote(row.teacher_rationale)}\n\n*Student, answer "
            f"{row.student_answer or '-'}:*\n\n{quote(row.student_rationale)}\n")


# --- hand-labelled errors ------------------------------------------------------------------

ERRORS = ("semantic", "calculation", "formatting", "other")  # wrong answers
REASONS = ("sound", "wrong_reason")  # correct answers of multiple-choice tasks
LABEL_COLUMNS = ["task", "run", "sample_index", "correct", "output_sha", "label", "note"]


def output_sha(output: str) -> str:
    return hashlib.sha256(output.encode()).hexdigest()[:10]


def labelling_cells(cells: list[Cell]) -> list[Cell]:
    """The cells whose errors are labelled: the first of each task (the profile's own cell
    where it ran), and every cell of a multiple-choice task (its correct answers)."""
    first = {}
    for cell in cells:
        first.setdefault(cell.task, cell)
    return [c for c in cells if first[c.task] is c or get_task(c.task).answer_type == "choice"]


def to_label(cell: Cell, per_task: int = 30, seed: int = 0, errors: bool = True) -> list[dict]:
    """The predictions to label: a seeded sample of `per_task` wrong answers (all if fewer),
    and on a multiple-choice task every correct answer (is it right for the right reason?)."""
    predictions = cell.predictions()
    wrong = sorted(p["sample_index"] for p in predictions if not p["correct"])
    chosen = set(random.Random(f"{cell.task}/{seed}").sample(wrong, min(per_task, len(wrong)))
                 if errors else [])
    choice = get_task(cell.task).answer_type == "choice"
    return [p for p in predictions if p["sample_index"] in chosen or (choice and p["correct"])]


def label_sheet(cells: list[Cell], labels: pd.DataFrame, per_task: int = 30,
                seed: int = 0) -> pd.DataFrame:
    """What is still to be labelled (keyed rows, the output and a heuristic pre-label to check
    by reading): a new run's predictions get a sheet, labelled ones are left out."""
    done = set(zip(labels.task, labels.run, labels.sample_index))
    rows, firsts = [], labelling_cells(cells)
    for cell in firsts:
        errors = cell is next(c for c in firsts if c.task == cell.task)
        task, samples = get_task(cell.task), get_task(cell.task).samples()
        for p in to_label(cell, per_task, seed, errors):
            if (cell.task, cell.run, p["sample_index"]) in done:
                continue
            reached = conclusion(task, samples[p["sample_index"]], p["rationale"])
            rows.append({"task": cell.task, "run": cell.run, "sample_index": p["sample_index"],
                         "correct": p["correct"], "output_sha": output_sha(p["output"]),
                         "label": prelabel(task, samples[p["sample_index"]], p, reached),
                         "note": "", "gold": p["answer"], "predicted": p["predicted"],
                         "concludes": reached, "output": p["output"]})
    return pd.DataFrame(rows, columns=LABEL_COLUMNS + ["gold", "predicted", "concludes", "output"])


def prelabel(task: Task, sample: Sample, prediction: dict, reached: str | None) -> str:
    """A guess to check by reading, never a label by itself: an answer the rationale does
    not reach is formatting; no answer at all, other; else semantic."""
    gold_reached = reached is not None and task.is_correct(reached, sample.answer)
    if prediction["correct"]:
        return "sound" if gold_reached else "wrong_reason"
    if gold_reached or "-->" not in prediction["output"]:
        return "formatting" if gold_reached else "other"
    return "semantic"


def read_labels(path: Path) -> pd.DataFrame:
    """The labels CSV (its leading `#` lines state the rule); a missing column, an unknown
    label or a repeated key is one error line naming the file."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=LABEL_COLUMNS)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    body = "".join(line for line in lines if not line.startswith("#"))
    try:
        table = pd.read_csv(io.StringIO(body), dtype={"output_sha": str}, keep_default_na=False)
    except pd.errors.ParserError as e:
        raise CotlibError(f"{path}: not a labels CSV ({e})") from None
    missing = [c for c in LABEL_COLUMNS if c not in table.columns]
    if missing:
        raise CotlibError(f"{path}: missing column(s) {', '.join(missing)}")
    bad = table[~table.label.isin(ERRORS + REASONS)]
    if len(bad):
        raise CotlibError(f"{path}: row {bad.index[0] + 1} has label {bad.label.iloc[0]!r}; "
                          f"choose from {', '.join(ERRORS + REASONS)}")
    repeated = table.duplicated(["task", "run", "sample_index"])
    if repeated.any():
        raise CotlibError(f"{path}: row {repeated.idxmax() + 1} labels "
                          f"{tuple(table.loc[repeated.idxmax(), ['task', 'run', 'sample_index']])} again")
    table["correct"] = table.correct.astype(str).str.lower() == "true"
    return table


def check_labels(labels: pd.DataFrame, cells: list[Cell]) -> pd.DataFrame:
    """The labels of `cells`, each checked against the prediction it was made on (a run
    redone under the same folder must be labelled again)."""
    outputs = {(c.task, c.run, p["sample_index"]): (p["output"], p["correct"])
               for c in cells for p in c.predictions()}
    keep = []
    for row in labels.itertuples():
        key = (row.task, row.run, int(row.sample_index))
        if key not in outputs:
            continue  # a cell not among these (another profile's)
        output, correct = outputs[key]
        if output_sha(output) != row.output_sha or correct != row.correct:
            raise CotlibError(f"label {key}: made on another output than the run's "
                              "predictions.jsonl now holds; label it again")
        if (row.label in ERRORS) == correct:
            raise CotlibError(f"label {key}: {row.label!r} on a {'correct' if correct else 'wrong'}"
                              " answer")
        keep.append(row.Index)
    return labels.loc[keep]


def write_labels(path: Path, labels: pd.DataFrame) -> None:
    """Write labels under the rule's header, sorted by key (stable bytes)."""
    table = labels[LABEL_COLUMNS].sort_values(["task", "run", "sample_index"])
    write_atomic(path, LABEL_RULE + table.to_csv(index=False))


LABEL_RULE = """\
# Hand labels of Fine-tune-CoT student test answers, one row per answer, keyed by (task, run,
# sample_index); output_sha: sha256 of the labelled output (first 10 hex digits). Made by
# reading each output beside the question and gold answer (cotlib.sample_studies).
# Wrong answers (a seeded sample per task, sample_studies.to_label); the first error in
# reading order decides:
#   semantic: the plan is wrong: a misread question, a wrong operation or quantity, a wrong
#     fact (the last day of a quarter), a missing step, the question restated without working;
#   calculation: the step is right, its computed value wrong: a sum, a date shift, the last
#     letter of a word;
#   formatting: the rationale reaches the gold answer (Last Letter: every letter right); the answer
#     it then writes (its closing sentence or after -->) differs or is missing;
#   other: none of these (text looping until the token cap, an ill-posed question or gold).
# Correct answers of multiple-choice tasks (every one):
#   sound: the rationale reaches the chosen option by right steps;
#   wrong_reason: it reaches another option or none (a date not among the choices), or gets
#     there by a wrong step, and the letter after --> happens to be gold.
"""


def error_counts(labels: pd.DataFrame) -> pd.DataFrame:
    """Wrong answers per task and error category (labelled ones)."""
    wrong = labels[labels.label.isin(ERRORS)]
    counts = pd.crosstab(wrong.task, pd.Categorical(wrong.label, ERRORS), dropna=False)
    counts.columns.name = None
    return counts.assign(labelled=counts.sum(axis=1))


def reason_counts(labels: pd.DataFrame) -> pd.DataFrame:
    """Correct multiple-choice answers per task and run: sound or right for a wrong reason."""
    right = labels[labels.label.isin(REASONS)]
    counts = pd.crosstab([right.task, right.run], pd.Categorical(right.label, REASONS),
                         dropna=False)  # both columns even where one is 0
    counts.columns.name = None
    return counts[counts.sum(axis=1) > 0]  # not the runs of one task under another


# --- diversity -----------------------------------------------------------------------------

MASKS = [(re.compile(r"([\"'‘“]).{1,30}?[\"'’”]"), "Q"),  # quoted names and letters
         (re.compile(r"\$?-?\d[\d,./:]*"), "N"),  # numbers, dates, times, money
         (re.compile(r"(?<=[\w,;] )[A-Z][a-z]+"), "W")]  # capitalised words mid-sentence


def template(rationale: str) -> str:
    """A rationale with what varies between questions masked: quoted text, numbers and
    dates, capitalised words (names, months) inside a sentence; lowercased."""
    for pattern, mask in MASKS:
        rationale = pattern.sub(mask, rationale)
    return " ".join(rationale.lower().split())


def opening(rationale: str, count: int = 5) -> str:
    """The first `count` words of a rationale's template."""
    return " ".join(template(rationale).split()[:count])


def variety(rationales: list[str]) -> dict:
    """Distinct openings and templates among rationales, and the most common template's share."""
    templates = pd.Series([template(r) for r in rationales], dtype=object)
    return {"rationales": len(rationales),
            "distinct_openings": len({opening(r) for r in rationales}),
            "distinct_templates": templates.nunique(),
            "top_template_share": templates.value_counts(normalize=True).iloc[0]
            if len(templates) else float("nan")}


def diversity(cells: list[Cell]) -> pd.DataFrame:
    """Per cell: the teacher's D rationales per train question (distinct openings and
    templates per question, mean), and the variety of teacher and student across questions."""
    rows = []
    for cell in cells:
        task = get_task(cell.task)
        trained_on = set(train_indices(cell.profile, task)[0])
        taught = [c for c in teacher_completions(cell.profile, task) if c.sample_index in trained_on]
        by_question: dict[int, list[str]] = {}
        for c in taught:
            by_question.setdefault(c.sample_index, []).append(c.rationale)
        per_question = pd.DataFrame([variety(r) for r in by_question.values()])
        firsts = [r[0] for r in by_question.values()]  # one per question, as the student writes
        teacher, student = variety(firsts), variety([p["rationale"] for p in cell.predictions()])
        rows.append({"task": cell.task, "cell": cell.name, "D": cell.profile.degree,
                     "openings per question": per_question.distinct_openings.mean(),
                     "templates per question": per_question.distinct_templates.mean(),
                     **{f"teacher {k}": v for k, v in across(teacher).items()},
                     **{f"student {k}": v for k, v in across(student).items()}})
    return pd.DataFrame(rows).set_index(["task", "cell"])


def across(found: dict) -> dict:
    """Variety across questions as shares (% of rationales), comparable between cells."""
    n = found["rationales"] or float("nan")
    return {"distinct openings %": 100 * found["distinct_openings"] / n,
            "distinct templates %": 100 * found["distinct_templates"] / n,
            "top template %": 100 * found["top_template_share"]}


def closing_note(counts: pd.DataFrame, reasons: pd.DataFrame, unlabelled: pd.DataFrame) -> str:
    """The section's conclusion as markdown, computed from the labels."""
    if counts.empty:
        return "No labelled wrong answers for these cells yet: label the sheet first."
    total = counts[list(ERRORS)].sum()
    lines = [f"**Error categories**, {int(counts.labelled.sum())} hand-labelled wrong student "
             f"answers on {len(counts)} tasks: " + ", ".join(f"{k} {int(v)}" for k, v in total.items()) + "."]
    lines += [f"- {task}: " + ", ".join(f"{k} {int(row[k])}" for k in ERRORS if row[k])
              for task, row in counts.iterrows()]
    if len(reasons):
        wrong, right = int(reasons.wrong_reason.sum()), int(reasons.sum().sum())
        lines.append(f"\n**Right for a wrong reason**: {wrong} of the {right} correct "
                     "multiple-choice answers (" + "; ".join(
                         f"{task} {run}: {int(r.wrong_reason)} of {int(r.sum())}"
                         for (task, run), r in reasons.iterrows()) + ").")
    if len(unlabelled):
        lines.append(f"\n{len(unlabelled)} answers of these cells are not labelled yet "
                     "(the label sheet lists them).")
    return "\n".join(lines)
