"""The software behind a run: exact versions, recorded in each run's config.json (the lock
that `make` installs from is constraints.txt)."""
from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = ("torch", "transformers", "accelerate", "peft", "safetensors", "tokenizers", "gguf",
            "numpy", "pandas")


def versions() -> dict[str, str]:
    """Python and the installed versions of the packages a result depends on."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
