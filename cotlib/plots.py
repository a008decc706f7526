"""Figures of the paper's quantities; each function draws one figure and returns it."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: notebooks and tests save figures to files
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import ticker  # noqa: E402
import seaborn as sns  # noqa: E402


def rationale_lengths(lengths: pd.DataFrame) -> plt.Figure:
    """Box plot of rationale length (words) per task; `lengths` has columns task, words."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.boxplot(data=lengths, y="task", x="words", ax=ax, color="#8fb3d9", fliersize=2)
    ax.set(xlabel="words per rationale (text-davinci-002, Zero-shot-CoT)", ylabel="")
    fig.tight_layout()
    return fig


def main_results(table: pd.DataFrame) -> plt.Figure:
    """Grouped bars: accuracy per task (x) for each row of the main table (hue)."""
    long = table.reset_index(names="method").melt(id_vars="method", var_name="task",
                                                  value_name="accuracy")
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(table.columns)), 4.5))
    sns.barplot(data=long, x="task", y="accuracy", hue="method", ax=ax)
    ax.set(xlabel="", ylabel="test accuracy (%)", ylim=(0, 100))
    ax.legend(fontsize=8, ncols=2, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    return fig


def training_loss(losses: dict[str, list[float]]) -> plt.Figure:
    """Training loss per optimizer step, one line per run."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, values in losses.items():
        ax.plot(range(1, len(values) + 1), values, label=label)
    ax.set(xlabel="optimizer step", ylabel="completion loss", yscale="log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def length_by_outcome(lengths: pd.DataFrame) -> plt.Figure:
    """Rationale length (words) of teacher and student, right against wrong, one panel per
    task; `lengths` has columns task, cell, who, correct, words (sample_studies.lengths)."""
    tasks = list(dict.fromkeys(lengths.task))
    fig, axes = plt.subplots(len(tasks), 1, figsize=(8, 1.2 + 1.6 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        rows = lengths[lengths.task == task].assign(
            rationales=lambda t: t.who + " · " + t.cell.str.slice(0, 28),
            answer=lambda t: t.correct.map({True: "right", False: "wrong"}))
        sns.boxplot(data=rows, y="rationales", x="words", hue="answer", ax=ax, fliersize=1.5,
                    hue_order=["right", "wrong"], palette={"right": "#6aa36f", "wrong": "#d9776b"})
        ax.set(title=task, ylabel="", xlabel="")
        ax.tick_params(axis="y", labelsize=8)
        ax.legend(fontsize=8, loc="lower right")
    axes[-1, 0].set(xlabel="words per rationale")


def _interval(ax, x, table: pd.DataFrame, **style) -> None:
    """Accuracy points with their 95 % intervals as error bars."""
    errors = [table.accuracy - table.ci_low, table.ci_high - table.accuracy]
    ax.errorbar(x, table.accuracy, yerr=errors, capsize=3, **style)


def diverse_reasoning(table: pd.DataFrame) -> plt.Figure:
    """Per task (columns): test accuracy against D with 95 % intervals, one line per budget
    rule, the vanilla and recorded D=1 students as reference lines (bands: their intervals),
    the paper's GPT-3 0.3B at D=1 and diverse as markers; below, training minutes per D."""
    tasks = list(dict.fromkeys(table.task))
    fig, axes = plt.subplots(2, len(tasks), figsize=(max(6.0, 4.2 * len(tasks)), 7),
                             squeeze=False, sharex="col", height_ratios=(3, 1.3))
    for (top, bottom), task in zip(axes.T, tasks):
        rows = table[table.task == task]
        for budget, line in rows.groupby("budget", sort=False):
            _interval(top, line.D, line, marker="o", label=f"ours, fixed {budget}")
            bottom.plot(line.D, line.train_seconds / 60, marker="o", label=f"fixed {budget}")
        first = rows.iloc[0]
        for name, prefix, color in (("vanilla fine-tuning", "vanilla_", "0.4"),
                                    ("text-davinci-002 D=1 (recorded)", "recorded_D1_", "C3")):
            top.axhline(first[prefix + "accuracy"], color=color, ls="--", lw=1, label=name)
            top.axhspan(first[prefix + "ci_low"], first[prefix + "ci_high"], color=color,
                        alpha=0.1)
        top.plot([1], [first.paper_D1], "kx", ms=9, label="paper GPT-3 0.3B, D=1")
        top.plot([rows.D.max()], [first.paper_diverse], "k*", ms=11,
                 label="paper GPT-3 0.3B, diverse (D=8; 64 on MultiArith, SVAMP)")
        top.set(title=f"{task}\n{first.teacher.split('/')[0]}", ylabel="test accuracy (%)",
                ylim=(0, None))
        bottom.set(xscale="log", xlabel="D (rationales per question)",
                   ylabel="training (min)", xticks=sorted(set(rows.D)))
        bottom.xaxis.set_major_formatter(ticker.ScalarFormatter())
        bottom.xaxis.set_minor_locator(ticker.NullLocator())
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncols=2, fontsize=8)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    return fig


def teacher_study(table: pd.DataFrame, correlation: pd.DataFrame) -> plt.Figure:
    """Per task: each teacher's accuracy on our train split (x) against its D=1 student's test
    accuracy with its 95 % interval (y); the paper's teacher (recorded text-davinci-002) a star;
    Spearman's rho in the title."""
    tasks = list(dict.fromkeys(table.task))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 4.2), squeeze=False)
    rho = correlation.set_index("task").spearman
    for ax, task in zip(axes[0], tasks):
        rows = table[table.task == task]
        for paper, group in rows.groupby("paper_teacher"):
            _interval(ax, group.teacher_train_accuracy, group, ls="none",
                      marker="*" if paper else "o", ms=12 if paper else 6,
                      color="C3" if paper else "C0",
                      label="text-davinci-002 (recorded, the paper's)" if paper else "other")
        for row in rows.itertuples():
            name = row.teacher.removeprefix("faithful-cot:").split("/")[0]
            ax.annotate(name, (row.teacher_train_accuracy, row.accuracy), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
        ax.set(title=f"{task}  (Spearman rho = {rho.get(task, float('nan')):.2f})",
               xlabel="teacher accuracy on our train split (%)",
               ylabel="student test accuracy, D=1 (%)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def error_categories(counts: pd.DataFrame) -> plt.Figure:
    """Stacked bars: hand-labelled wrong student answers per task by error category
    (`counts`: one row per task, one column per category; sample_studies.error_counts)."""
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.5 * len(counts)))
    counts.plot.barh(stacked=True, ax=ax, colormap="Set2", width=0.7)
    ax.set(xlabel="labelled wrong answers", ylabel="")
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, stem) -> None:
    """The figure as `<stem>.png` and `<stem>.pdf`."""
    for suffix in (".png", ".pdf"):
        fig.savefig(f"{stem}{suffix}", dpi=120)
