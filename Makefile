# Two commands: `make demo` runs the main job, `make test` runs the tests.
# Each first installs what it needs into .venv (once; again only when pyproject.toml changes).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel on these machines; GPU users with their own torch keep it (only installed if absent).
TORCH ?= torch==2.13.0
INSTALLED := $(VENV)/.installed

.PHONY: install test test-slow demo clean
install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

test: install
	$(PY) -m pytest

test-slow: install
	$(PY) -m pytest -m slow

demo: install
	cd notebooks && ../$(PY) -m papermill 00_data.ipynb 00_data.ipynb -k python3 --cwd .
	$(PY) -m cotlib tasks

clean:
	rm -rf $(VENV) .pytest_cache
