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
