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
