"""Drop papermill's injected-parameters cell from executed notebooks, in place.

A kept cell would stay in force in a later papermill run without -p; the values it held stay
recorded in the notebook's metadata (`papermill.parameters`).
"""
import sys

import nbformat

for path in sys.argv[1:]:
    notebook = nbformat.read(path, as_version=4)
    kept = [c for c in notebook.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    if len(kept) < len(notebook.cells):
        notebook.cells = kept
        nbformat.write(notebook, path)
