"""Figures of the paper's quantities; each function draws one figure and returns it."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: notebooks and tests save figures to files
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
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
