"""cotlib: Fine-tune-CoT (Ho, Schmid, Yun, ACL 2023) as a small library.

Data flows one way: tasks -> teachers -> curation -> students -> evaluation -> plots.
"""
from .data import CotlibError

__all__ = ["CotlibError"]
