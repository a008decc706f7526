"""Figures of the paper's quantities; each function draws one figure and returns it.

One colour per method in every figure (`METHOD_COLORS`); student accuracies carry their 95 %
interval as error bars and the paper's number as a black marker beside ours. `save` writes
PNG and PDF; `make_figures` draws every committed figure from results/ without training.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib

if "inline" not in os.environ.get("MPLBACKEND", ""):  # a notebook kernel keeps its inline backend
    matplotlib.use("Agg")  # headless: scripts and tests save figures to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import patches, ticker  # noqa: E402
import seaborn as sns  # noqa: E402

from .data import CotlibError  # noqa: E402
from .tasks import get_task  # noqa: E402

# seaborn's colour-blind palette, one colour per method everywhere
METHOD_COLORS = {"Teacher": "#949494", "Fine-tune-CoT": "#0173b2", "Fine-tune": "#de8f05",
                 "Zero-shot": "#029e73", "Zero-shot-CoT": "#cc78bc", "Few-shot-CoT": "#ca9161",
                 "Local teacher": "#56b4e9"}
METHOD_KEYS = {"fine_tune_cot": "Fine-tune-CoT", "vanilla": "Fine-tune", "zero_shot": "Zero-shot",
               "zero_shot_cot": "Zero-shot-CoT", "few_shot_cot": "Few-shot-CoT"}
PAPER = dict(marker="D", color="black", markersize=5, linestyle="none", zorder=3, clip_on=False)


def method_color(row: str) -> str:
    """The colour of a table row or method key ("Fine-tune-CoT (esc:..., D=4)" is Fine-tune-CoT)."""
    name = METHOD_KEYS.get(row, row)
    return next(c for m, c in sorted(METHOD_COLORS.items(), key=lambda kv: -len(kv[0]))
                if name.startswith(m))


def title(task: str) -> str:
    return get_task(task).title


def save(fig: plt.Figure, figures_dir: Path, name: str) -> list[Path]:
    """`name`.png and `name`.pdf in `figures_dir` (the PDF without a creation date: stable bytes)."""
    folder = Path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1], metadata={"CreationDate": None})
    plt.close(fig)
    return paths


def _bars(ax, labels: list[str], values, low, high, colors, paper=None) -> None:
    """Horizontal bars (top to bottom) with interval whiskers and the paper's markers."""
    y = range(len(labels))[::-1]
    values, low, high = (np.asarray(v, dtype=float) for v in (values, low, high))
    ax.barh(list(y), values, color=colors, height=0.7)
    ax.errorbar(values, list(y), xerr=np.clip([values - low, high - values], 0, None),
                fmt="none", ecolor="#333333", elinewidth=1, capsize=2)
    if paper is not None:
        ax.plot(paper, list(y), **PAPER)
    ax.set_yticks(list(y), labels, fontsize=8)
    ax.set_xlim(0, 100)


def main_results(long: pd.DataFrame) -> plt.Figure:
    """One panel per task: each method's accuracy with its 95 % interval, the paper's GPT-3
    number for the same method (0.3B student, 175B teacher) as a marker; `long` is
    `results.main_long`."""
    tasks = list(dict.fromkeys(long.task))
    cols = min(3, len(tasks))
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 0.35 * long.row.nunique() * rows + 1.2),
                             sharex=True, squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        part = long[long.task == task]
        _bars(ax, list(part.row.str.replace(" (175B, recorded)", "")), part.accuracy, part.ci_low,
              part.ci_high, [method_color(r) for r in part.row], part.paper)
        ax.set_title(title(task), fontsize=10)
    for ax in axes.flat[len(tasks):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("test accuracy (%)")
    fig.legend(handles=[plt.Line2D([], [], **PAPER, label="paper (GPT-3 0.3B student; teacher 175B)"),
                        plt.Line2D([], [], color="#333333", label="95 % interval (Wilson)")],
               loc="lower center", ncols=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05 if rows > 1 else 0.1, 1, 1))
    return fig


def rationale_lengths(lengths: pd.DataFrame) -> plt.Figure:
    """Box plot of rationale length (words) per task; `lengths` has columns task, words."""
    named = lengths.assign(task=lengths.task.map(title))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.boxplot(data=named, y="task", x="words", ax=ax, color=METHOD_COLORS["Teacher"],
                fliersize=2)
    ax.set(xlabel="words per rationale (text-davinci-002, Zero-shot-CoT)", ylabel="")
    fig.tight_layout()
    return fig


def training_loss(losses: dict[tuple[str, str], list[float]]) -> plt.Figure:
    """Training loss per optimizer step of each (task, method) run: colour by method, line
    style by task."""
    styles = dict(zip(dict.fromkeys(t for t, _ in losses), ["-", "--", ":", "-."] * 5))
    fig, ax = plt.subplots(figsize=(7, 4))
    for (task, method), values in losses.items():
        ax.plot(range(1, len(values) + 1), values, styles[task], color=method_color(method),
                label=f"{title(task)}, {METHOD_KEYS.get(method, method)}")
    ax.set(xlabel="optimizer step", ylabel="completion loss", yscale="log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


OUTCOME_COLORS = {True: "#6aa36f", False: "#d9776b"}  # right, wrong answers


def length_by_outcome(boxes: pd.DataFrame) -> plt.Figure:
    """Rationale length (words) of teacher and student, right against wrong, one panel per
    task; `boxes` is sample_studies.length_boxes (the box plots as numbers)."""
    tasks = list(dict.fromkeys(boxes.task))
    fig, axes = plt.subplots(len(tasks), 1, figsize=(8, 1.2 + 1.6 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        rows = boxes[boxes.task == task].assign(label=lambda t: t.who + " · " + t.cell.str.slice(0, 28))
        labels = list(dict.fromkeys(rows.label))
        for correct, shift in ((True, -0.2), (False, 0.2)):
            part = rows[rows.correct == correct]
            stats = [{"whislo": r.whislo, "q1": r.q1, "med": r.median, "q3": r.q3,
                      "whishi": r.whishi, "fliers": [float(w) for w in str(r.fliers).split()]}
                     for r in part.itertuples()]
            ax.bxp(stats, positions=[labels.index(label) + shift for label in part.label],
                   orientation="horizontal", widths=0.35, patch_artist=True,
                   boxprops={"facecolor": OUTCOME_COLORS[correct]},
                   medianprops={"color": "#333333"}, flierprops={"markersize": 1.5})
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_ylim(len(labels) - 0.5, -0.5)  # first row on top
        ax.set(title=title(task))
        ax.legend(handles=[patches.Patch(color=OUTCOME_COLORS[c], label=name)
                           for c, name in ((True, "right"), (False, "wrong"))],
                  fontsize=8, loc="lower right")
    axes[-1, 0].set(xlabel="words per rationale")
    fig.tight_layout()
    return fig


def error_categories(counts: pd.DataFrame) -> plt.Figure:
    """Stacked bars: hand-labelled wrong student answers per task by error category
    (`counts`: one row per task, one column per category; sample_studies.error_counts)."""
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.5 * len(counts)))
    counts.rename(index=title).plot.barh(stacked=True, ax=ax, colormap="Set2", width=0.7)
    ax.set(xlabel="labelled wrong answers", ylabel="")
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    return fig


def _interval(ax, x, table: pd.DataFrame, **style) -> None:
    """Accuracy points with their 95 % intervals as error bars."""
    errors = [table.accuracy - table.ci_low, table.ci_high - table.accuracy]
    ax.errorbar(x, table.accuracy, yerr=errors, capsize=3, **style)


BUDGET_COLORS = {"epochs": "C0", "steps": "C1"}


# dotted over a study's accuracy: what its test rationales get right (`studies.rationale_reading`)
READ_RATIONALES = (("rationale_right", "s", "rationale reaches the gold answer"),
                   ("steps_right", "v", "written steps computed right"),
                   ("computed_right", "^", "last step, computed exactly, gives the gold answer"))


def diverse_reasoning(table: pd.DataFrame) -> plt.Figure:
    """Per task (columns): test accuracy against D with 95 % intervals, one line per budget
    rule (dotted: what the test rationales get right, `READ_RATIONALES`, where the task has
    such a step), the vanilla and recorded D=1 students as reference lines
    (bands: their intervals), the paper's GPT-3 0.3B at D=1 and diverse as markers; below,
    training minutes per D."""
    tasks = list(dict.fromkeys(table.task))
    fig, axes = plt.subplots(2, len(tasks), figsize=(max(6.0, 4.2 * len(tasks)), 7),
                             squeeze=False, sharex="col", height_ratios=(3, 1.3))
    for (top, bottom), task in zip(axes.T, tasks):
        rows = table[table.task == task]
        for budget, line in rows.groupby("budget", sort=False):
            color = BUDGET_COLORS[budget]
            _interval(top, line.D, line, marker="o", color=color, label=f"ours, fixed {budget}")
            for column, marker, reading in READ_RATIONALES:
                if line[column].notna().any():
                    top.plot(line.D, line[column], marker=marker, mfc="none", ls=":",
                             color=color, label=f"ours, fixed {budget}: {reading}")
            bottom.plot(line.D, line.train_seconds / 60, marker="o", color=color)
        first = rows.iloc[0]
        for name, prefix, color in (("vanilla fine-tuning", "vanilla_", "0.4"),
                                    ("text-davinci-002 D=1 (recorded)", "recorded_D1_", "C3")):
            top.axhline(first[prefix + "accuracy"], color=color, ls="--", lw=1, label=name)
            top.axhspan(first[prefix + "ci_low"], first[prefix + "ci_high"], color=color,
                        alpha=0.1)
        top.plot([1], [first.paper_D1], "kx", ms=9, label="paper GPT-3 0.3B, D=1")
        top.plot([min(rows.D.max(), 8)], [first.paper_diverse], "k*", ms=11,
                 label="paper GPT-3 0.3B, diverse (D=8; 64 on MultiArith, SVAMP)")
        top.set(title=f"{title(task)}\n{first.teacher.split('/')[0]}", ylabel="test accuracy (%)",
                ylim=(0, None))
        bottom.set(xscale="log", xlabel="D (rationales per question)", ylim=(0, None),
                   ylabel="training (min)", xticks=sorted(set(rows.D)))
        bottom.xaxis.set_major_formatter(ticker.ScalarFormatter())
        bottom.xaxis.set_minor_locator(ticker.NullLocator())
    key = {label: h for ax in axes[0] for h, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(key.values(), key.keys(), loc="lower center", ncols=2, fontsize=8)
    fig.tight_layout(rect=(0, 0.15, 1, 1))
    return fig


def recipe_search(table: pd.DataFrame) -> plt.Figure:
    """Per task: validation accuracy after each epoch, one colour per recipe (solid), the test
    accuracy the paper's protocol would pick from (dotted, never used to choose), and a ring
    on the (recipe, epoch) chosen on validation."""
    tasks = list(dict.fromkeys(table.task))
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(8.0, 4.2 * len(tasks)), 4.2),
                             squeeze=False, sharey=True)
    colors = dict(zip(dict.fromkeys(table.recipe), sns.color_palette("colorblind")))
    for ax, task in zip(axes[0], tasks):
        rows = table[table.task == task]
        for recipe, line in rows.groupby("recipe", sort=False):
            ax.plot(line.epoch, line.validation, marker="o", ms=3, color=colors[recipe])
            ax.plot(line.epoch, line.test_paper_protocol, ls=":", color=colors[recipe])
        chosen = rows[rows.chosen]
        ax.plot(chosen.epoch, chosen.validation, "o", ms=11, mfc="none", color="black")
        ax.set(title=title(task), xlabel="epoch")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    highest = table[["validation", "test_paper_protocol"]].max().max()
    axes[0, 0].set(ylabel="accuracy (%)", ylim=(0, highest * 1.08))  # shared by every panel
    key = [plt.Line2D([], [], color=c, label=r) for r, c in colors.items()] + [
        plt.Line2D([], [], color="black", label="validation (chooses)"),
        plt.Line2D([], [], color="black", ls=":", label="test: the paper's best-of-epochs reads it"),
        plt.Line2D([], [], color="black", marker="o", ms=11, mfc="none", ls="none",
                   label="chosen on validation")]
    fig.legend(handles=key, loc="lower center", ncols=2, fontsize=8)
    fig.tight_layout(rect=(0, 0.22, 1, 1))
    return fig


TEACHER_AXES = {"teacher_train_accuracy": "teacher accuracy on our train split (%)",
                "teacher_equations": "teacher's right rationales that write out a step (%)"}


def teacher_study(table: pd.DataFrame, ranks: dict[str, pd.DataFrame]) -> plt.Figure:
    """Per task and teacher column of `TEACHER_AXES` the table has (written steps: arithmetic
    tasks only), one panel: that column (x) against each teacher's D=1 student's test accuracy
    with its 95 % interval (y); the paper's teacher (recorded text-davinci-002) a star;
    Spearman's rho over `ranks[column]` (`studies.rank_correlation`) and its p-value on top."""
    panels = [(task, x) for x in TEACHER_AXES if x in table for task in dict.fromkeys(table.task)
              if table.loc[table.task == task, x].notna().any()]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2), squeeze=False)
    for ax, (task, x) in zip(axes[0], panels):
        rows = table[table.task == task]
        for paper, group in rows.groupby("paper_teacher"):
            _interval(ax, group[x], group, ls="none",
                      marker="*" if paper else "o", ms=12 if paper else 6,
                      color="C3" if paper else "C0",
                      label="text-davinci-002 (recorded, the paper's)" if paper else "other")
        for row in rows.itertuples():
            name = row.teacher.removeprefix("faithful-cot:").split("/")[0]
            ax.annotate(name, (getattr(row, x), row.accuracy), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
        rho, p, n = ranks[x].set_index("task").reindex([task]).iloc[0][
            ["spearman", "p_value", "teachers"]]
        shown = f"p = {p:.3f}" if p >= 0.001 else "p < 0.001"
        ax.set(title=f"{title(task)}\n" + (f"Spearman rho = {rho:.2f} ({shown}, {n:.0f} teachers)"
                                           if pd.notna(rho) else "fewer than 3 students finished"),
               xlabel=TEACHER_AXES[x], ylabel="student test accuracy, D=1 (%)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def teacher_accuracy(table: pd.DataFrame, name: str) -> plt.Figure:
    """A local teacher beside text-davinci-002 on the same train questions, with intervals;
    `table` has task, accuracy, davinci_accuracy_same_questions, questions."""
    from .results import wilson  # noqa: PLC0415
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(table) + 1.2))
    labels, values, low, high, colors = [], [], [], [], []
    for row in table.itertuples():
        for label, value, color in [(name, row.accuracy, "Local teacher"),
                                    ("text-davinci-002", row.davinci_accuracy_same_questions, "Teacher")]:
            interval = wilson(round(value * row.questions / 100), row.questions)
            labels.append(f"{title(row.task)}: {label}")
            values.append(value)
            low.append(interval["ci_low"])
            high.append(interval["ci_high"])
            colors.append(METHOD_COLORS[color])
    _bars(ax, labels, values, low, high, colors)
    ax.set(xlabel="Zero-shot-CoT accuracy (%) on the same train questions, 95 % interval")
    fig.tight_layout()
    return fig


def teacher_diverse(right: pd.DataFrame, degree: int, temperature: float) -> plt.Figure:
    """Questions by how many of their D sampled rationales are right; `right` has one column
    per task (counts of right samples per question)."""
    counts = pd.DataFrame({title(t): right[t].value_counts().reindex(range(degree + 1), fill_value=0)
                           for t in right})
    ax = counts.plot.bar(figsize=(6, 3), rot=0, color=METHOD_COLORS["Local teacher"], legend=len(counts.columns) > 1)
    ax.set(xlabel=f"right samples of {degree} (T={temperature})", ylabel="questions")
    ax.figure.tight_layout()
    return ax.figure


def cells(table: pd.DataFrame, label: str, paper: dict[str, list[tuple[str, float]]] | None = None
          ) -> plt.Figure:
    """Fine-tune-CoT cells (columns task, accuracy, ci_low, ci_high and `label`), one bar each
    with its interval; `paper` gives per task (name, value) markers."""
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(table) + 1.8))
    labels = [f"{title(r.task)}\n{str(getattr(r, label)).split('/')[0]}" for r in table.itertuples()]
    _bars(ax, labels, table.accuracy, table.ci_low, table.ci_high,
          [METHOD_COLORS["Fine-tune-CoT"]] * len(table))
    names = [name for name, _ in next(iter((paper or {}).values()), [])]
    for name, marker in zip(names, ["D", "^", "s"]):
        xs = [dict(paper[t]).get(name) for t in table.task]
        ax.plot(xs, list(range(len(table)))[::-1], **{**PAPER, "marker": marker},
                label=f"paper: {name}")
    ax.set(xlabel="test accuracy (%) of the Fine-tune-CoT student, 95 % interval")
    return bottom_legend(fig)


def bottom_legend(fig: plt.Figure) -> plt.Figure:
    """The first panel's labelled markers as one legend under the figure (redrawn if called
    again after more markers)."""
    for old in fig.legends:
        old.remove()
    handles, labels = fig.axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncols=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04 * -(-len(handles) // 2), 1, 1))
    return fig


def switches(row) -> str:
    """What sets an ablation cell apart, in words: its teacher and D, answer format, filter and
    head (a blank teacher is the recorded text-davinci-002)."""
    get = lambda key: None if pd.isna(value := getattr(row, key, None)) else value
    teacher = str(get("teacher") or "text-davinci-002").split("/")[0]
    words = [f"{teacher}, D={int(get('degree') or 1)}"]
    if get("answer_format"):
        words.append(f"{row.answer_format} answer")
    if get("consistent_choices"):
        words.append("consistent choices")
    if get("task_vocab") is not None:
        words.append("task vocabulary" if row.task_vocab else "full head")
    return ", ".join(words)


READINGS = {"intermediate_right": ("o", "its rationale reaches the gold answer"),
            "answer_text_right": ("s", "its answer's text is the gold choice (any letter)")}


def ablation(table: pd.DataFrame) -> plt.Figure:
    """An ablation's cells (`tables.cells_table`), each bar named by its switches, with the
    paper's GPT-3 0.3B Fine-tune-CoT at D=1 as a marker and, where the audit counted them, the
    share of test answers whose rationale or answer text is right (`READINGS`), hollow."""
    named = table.assign(switches=[switches(row) for row in table.itertuples()])
    paper = paper_markers(named.task, {"GPT-3 0.3B": PAPER_FTC["GPT-3 0.3B, D=1"]})
    fig = cells(named, "switches", paper)
    y = fig.axes[0].get_yticks()  # the bars' rows, in the table's order
    for column, (marker, label) in READINGS.items():
        if column in named and named[column].notna().any():
            fig.axes[0].plot(100 * named[column] / named.n, y, marker=marker, mfc="none",
                             color="C1", linestyle="none", label=f"student: {label}")
    return bottom_legend(fig)


def paper_markers(tasks, rows: dict[str, tuple[str, str, str]]) -> dict[str, list[tuple[str, float]]]:
    """Per task the paper's number of each named (family, method, size) row."""
    from .tables import paper_results  # noqa: PLC0415
    paper = paper_results()
    return {t: [(name, paper.loc[key, t]) for name, key in rows.items()] for t in tasks}


# --- every committed figure, from results/ (and the data) without training -------------

LOCAL_TEACHER = "qwen2.5-coder-1.5b"
PAPER_FTC = {"GPT-3 0.3B, D=1": ("GPT-3", "Fine-tune-CoT", "0.3B"),
             "GPT-3 0.3B, diverse reasoning": ("GPT-3", "Diverse reasoning", "0.3B")}


def figure_main(results_dir: Path, profile: str) -> plt.Figure:
    from .results import main_long  # noqa: PLC0415
    return main_results(main_long(results_dir, f"main_{profile}.csv"))


def figure_training_loss(results_dir: Path, profile: str) -> plt.Figure:
    """The losses recorded with the trained cells of main_<profile>."""
    from . import results  # noqa: PLC0415
    losses = {}
    for cell in results.read_recipe(results_dir, f"main_{profile}.csv")["cells"]:
        path = results.cell_path(results_dir, cell)
        if path.exists() and "losses" in (metrics := results.read_cell(path)[0]["metrics"]):
            losses[(metrics["task"], metrics["method"])] = metrics["losses"]
    return training_loss(losses)


def figure_cells(results_dir: Path, table: str, label: str, paper: dict) -> plt.Figure:
    from .results import read_table  # noqa: PLC0415
    cells_ = read_table(Path(results_dir) / table, ["task", label, "accuracy", "ci_low", "ci_high"])
    if "D" in cells_:
        cells_[label] = cells_[label] + ", D=" + cells_["D"].astype(str)
    elif "teacher" in cells_:  # cells of several teachers: name each (blank: the recorded one)
        teacher = cells_.teacher.fillna("recorded").str.split("/").str[0]
        degree = cells_.get("degree", pd.Series(1, index=cells_.index)).fillna(1).astype(int)
        cells_[label] = cells_[label] + " (" + teacher + ", D=" + degree.astype(str) + ")"
    return cells(cells_, label, paper_markers(cells_.task, paper))


def figure_ablation(results_dir: Path, table: str) -> plt.Figure:
    from .results import read_table  # noqa: PLC0415
    return ablation(read_table(Path(results_dir) / table, ["task", "accuracy", "ci_low", "ci_high"]))


def figure_teacher_accuracy(results_dir: Path) -> plt.Figure:
    from .results import read_table  # noqa: PLC0415
    table = read_table(Path(results_dir) / "teachers.csv", [
        "teacher", "params", "task", "questions", "accuracy", "davinci_accuracy_same_questions"])
    greedy = table[(table.teacher == LOCAL_TEACHER) & table.params.str.contains("_T0_")]
    return teacher_accuracy(greedy, LOCAL_TEACHER)


def figure_teacher_diverse(results_dir: Path, degree: int = 4, temperature: float = 0.7) -> plt.Figure:
    from . import teachers  # noqa: PLC0415
    params = teachers.GenerationParams(degree=degree, temperature=temperature, max_tokens=256)
    runs = {t: teachers.load_run(Path(results_dir) / "teacher_runs", LOCAL_TEACHER, params, get_task(t))
            for t in ("multiarith", "svamp", "date_understanding", "coin_flip",
                      "last_letter_concatenation")}
    right = {t: pd.DataFrame([vars(r) for r in rs if r.status == "ok"]).groupby("sample_index")
             .correct.sum() for t, rs in runs.items() if rs}
    return teacher_diverse(pd.DataFrame(right), degree, temperature)


def figure_rationale_length(results_dir: Path) -> plt.Figure:
    from .teachers.report import rationale_lengths as lengths  # noqa: PLC0415
    return rationale_lengths(lengths())


def figure_sample_lengths(results_dir: Path, profile: str) -> plt.Figure:
    from .results import read_table  # noqa: PLC0415
    boxes = read_table(Path(results_dir) / f"sample_lengths_{profile}.csv", [
        "task", "cell", "who", "correct", "whislo", "q1", "median", "q3", "whishi", "fliers"])
    return length_by_outcome(boxes.fillna({"fliers": ""}))


def figure_error_categories(results_dir: Path, profile: str) -> plt.Figure:
    from .results import read_table  # noqa: PLC0415
    from .sample_studies import ERRORS  # noqa: PLC0415
    path = Path(results_dir) / f"error_counts_{profile}.csv"
    counts = read_table(path, ["task", *ERRORS]).set_index("task")[list(ERRORS)]
    if counts.empty:
        raise CotlibError(f"{path}: no labelled wrong answers yet (notebook 07's label sheet)")
    return error_categories(counts)


def figure_diverse_reasoning(results_dir: Path, profile: str) -> plt.Figure:
    from .results import read_table  # noqa: PLC0415
    references = [f"{p}{k}" for p in ("vanilla_", "recorded_D1_")
                  for k in ("accuracy", "ci_low", "ci_high")]
    readings = [column for column, _, _ in READ_RATIONALES]
    return diverse_reasoning(read_table(Path(results_dir) / f"diverse_reasoning_{profile}.csv", [
        "task", "teacher", "budget", "D", "accuracy", "ci_low", "ci_high", *readings,
        "train_seconds", *references, "paper_D1", "paper_diverse"]))


def figure_recipe_search(results_dir: Path) -> plt.Figure:
    from .results import read_table  # noqa: PLC0415
    return recipe_search(read_table(Path(results_dir) / "recipe_search.csv", [
        "task", "recipe", "epoch", "validation", "test_paper_protocol", "chosen"]))


def figure_teacher_study(results_dir: Path, profile: str) -> plt.Figure:
    from .results import read_table  # noqa: PLC0415
    from .studies import rank_correlation  # noqa: PLC0415
    table = read_table(Path(results_dir) / f"teacher_study_{profile}.csv", [
        "task", "teacher", "paper_teacher", "teacher_train_accuracy", "accuracy", "ci_low", "ci_high"])
    return teacher_study(table, {x: rank_correlation(table, of=x) for x in TEACHER_AXES if x in table})


@dataclass(frozen=True)
class Figure:
    """A committed figure: how it is drawn from results/, the files there it needs (which its
    notebook writes), and what it shows against the paper."""
    draw: Callable[[Path], plt.Figure]
    inputs: tuple[str, ...]
    notebook: str
    about: str


def study_figures(profile: str) -> dict[str, Figure]:
    """The figures of notebooks 05 and 07 on one profile; each drawn once its table is in results/."""
    return {
        f"diverse_reasoning_{profile}": Figure(
            lambda r: figure_diverse_reasoning(r, profile), (f"diverse_reasoning_{profile}.csv",),
            "05", f"diverse reasoning ({profile} profile): accuracy against D with 95 % intervals, "
            "the paper's GPT-3 0.3B at D=1 and with diverse reasoning"),
        f"teacher_study_{profile}": Figure(
            lambda r: figure_teacher_study(r, profile),
            (f"teacher_study_{profile}.csv",), "05",
            f"teacher accuracy against its D=1 student's ({profile} profile), Spearman's rho"),
        f"sample_lengths_{profile}": Figure(
            lambda r: figure_sample_lengths(r, profile), (f"sample_lengths_{profile}.csv",), "07",
            f"words per rationale, teacher and student, right and wrong ({profile} profile)"),
        f"error_categories_{profile}": Figure(
            lambda r: figure_error_categories(r, profile), (f"error_counts_{profile}.csv",), "07",
            f"hand-labelled categories of wrong student answers ({profile} profile)"),
    }


FIGURES = {
    "main_default": Figure(lambda r: figure_main(r, "default"), ("main_default.csv",), "04",
                           "main table, default profile (2 tasks, 2 epochs): every method with its "
                           "95 % interval; the paper's GPT-3 0.3B number per method"),
    "main_full": Figure(lambda r: figure_main(r, "full"), ("main_full.csv",), "04",
                        "main table, full profile (9 tasks, 4 epochs), as main_default"),
    "training_loss_default": Figure(lambda r: figure_training_loss(r, "default"),
                                    ("predictions/main_default.json",), "03",
                                    "training loss of the default profile's fine-tuned students"),
    "teacher_sources_default": Figure(
        lambda r: figure_cells(r, "teacher_sources_default.csv", "teacher", PAPER_FTC),
        ("teacher_sources_default.csv",), "04",
        "students of other teachers, with the paper's GPT-3 0.3B at D=1 and with diverse reasoning"),
    **{f"{name}_{profile}": Figure(lambda r, t=f"{name}_{profile}.csv": figure_ablation(r, t),
                                   (f"{name}_{profile}.csv",), "06", about)
       for name, profile, about in [
           ("answer_format", "default", "the paper's answer after `-->` against a copyable one, "
            "beside the paper's GPT-3 0.3B"),
           ("task_vocabulary", "default", "the task-vocabulary head against the full head"),
           *[("date_ablation", profile, "what moves Date off chance: the consistent-choice "
              "filter, the copyable answer, gpt-3.5-turbo at D=4") for profile in ("default", "full")]]},
    "recipe_search": Figure(figure_recipe_search, ("recipe_search.csv",), "04",
                            "validation accuracy per epoch of each training recipe (full profile), "
                            "the test curve the paper's best-of-epochs protocol reads, the choice"),
    "teacher_accuracy": Figure(figure_teacher_accuracy, ("teachers.csv",), "01",
                               "the local teacher against text-davinci-002 on the same train questions"),
    "teacher_diverse": Figure(figure_teacher_diverse, ("teacher_runs",), "01",
                              "diverse reasoning of the local teacher: right samples of D=4 per question"),
    "rationale_length": Figure(figure_rationale_length, (), "00",
                               "words per recorded text-davinci-002 rationale, per task (from the data)"),
    **study_figures("default"),
    **study_figures("full"),
}


def absent_inputs(results_dir: Path, name: str) -> list[str]:
    return [f for f in FIGURES[name].inputs if not (Path(results_dir) / f).exists()]


def available(results_dir: Path) -> list[str]:
    """The figures whose inputs are all in `results_dir`: those `make_figures` draws."""
    return [name for name in FIGURES if not absent_inputs(results_dir, name)]


def make_figures(results_dir: Path, figures_dir: Path, names: list[str] | None = None,
                 log=print) -> list[Path]:
    """Draw the figures `names` (default: every one whose inputs are in `results_dir`, saying
    which are skipped and why) from `results_dir` into `figures_dir`."""
    unknown = set(names or ()) - set(FIGURES)
    if unknown:
        raise CotlibError(f"unknown figure(s) {', '.join(sorted(unknown))}; choose from "
                          f"{', '.join(FIGURES)}")
    written = []
    for name in names or FIGURES:
        figure = FIGURES[name]
        if absent := absent_inputs(results_dir, name):
            missing = (f"no {', '.join(absent)} in {results_dir} (notebook {figure.notebook} "
                       f"writes {'it' if len(absent) == 1 else 'them'})")
            if names:
                raise CotlibError(f"figure {name}: {missing}")
            log(f"skipped {name}: {missing}")
            continue
        written += save(figure.draw(Path(results_dir)), figures_dir, name)
        log(f"{name}: {figure.about}")
    return written
