"""cotlib: Fine-tune-CoT (Ho, Schmid, Yun, ACL 2023) as a small library.

Data flows one way: tasks -> teachers -> curation -> students -> evaluation -> plots.
"""
import warnings

from .data import CotlibError

# Headless notebooks have no ipywidgets; tqdm's warning about it would print a local path.
warnings.filterwarnings("ignore", message="IProgress not found")

__all__ = ["CotlibError"]
