# One command for each thing a reader, an instructor or CI does. Each target sets up what it
# needs first (virtual environment, pinned packages, data), so a fresh clone needs nothing else.
# `make help` lists them; the environments and locks behind them are tools/environments.py.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
# The lock of this platform (make lock resolves all of them; README, "Platforms").
PLATFORM := $(shell uname -s)-$(shell uname -m)
LOCK ?= $(or $(if $(filter Darwin-arm64,$(PLATFORM)),locks/macos-arm64.lock), \
  $(if $(filter Linux-aarch64 Linux-arm64,$(PLATFORM)),locks/linux-aarch64.lock),requirements.lock)
VENV := .venv
# The venvs of the supported range's two ends (see "the supported range" below).
OLDEST := .venv-oldest
PY313 := .venv-py313
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
NPM_DIR := build/npm
MATHJAX := $(NPM_DIR)/node_modules/mathjax/es5/tex-chtml-full.js
BOOK_HTML := build/book/_build/html
RUNS := runs

export PYDEVD_DISABLE_FILE_VALIDATION := 1
# The venv's own pip installs uv (its entry in the lock, hash-checked), and uv installs the
# lock: the same pinned, hash-checked packages in a few seconds instead of minutes. uv does not
# read pip's configuration, so an index set for pip (PIP_INDEX_URL) is passed on. Unlike pip,
# uv compiles no bytecode unless asked: without it, and with PYTHONDONTWRITEBYTECODE set (as on
# our CI machines), every kernel would compile TensorFlow's sources again (20 s instead of 6 s).
export PIP_DISABLE_PIP_VERSION_CHECK := 1
UV_PIP = $(BIN)/uv pip install --quiet --compile-bytecode --python $(PY) \
  $${PIP_INDEX_URL:+--index-url "$$PIP_INDEX_URL"}

# Numerics (helpers/runtime/numerics.py): every command that runs chapter code starts through
# `python -m helpers --`, which puts the pins (instruction set, thread counts, BLAS kernel) into
# its environment, so every kernel it starts inherits them. NUMERICS=alternate pins other
# values on purpose; `make test` runs nbval under it. NUMERICS=none pins nothing.
NUMERICS ?= pinned
# $(call pinned_in,VENV): that venv's python, started under the pins.
pinned_in = BN_COMPANION_NUMERICS=$(NUMERICS) $(1)/bin/python -m helpers -- $(1)/bin/python
PINNED = $(KERAS_BACKEND_ENV)BN_COMPANION_NUMERICS=$(NUMERICS) $(PY) -m helpers --
# Keras's backend for the commands that run chapter code: tensorflow (Keras's default) or jax,
# where a chapter's subject is Keras rather than TensorFlow (helpers/runtime/supported.py):
# make run CHAPTER=01 BACKEND=jax. make chapter and make store refuse any but TensorFlow: the
# stored outputs are TensorFlow's. make backends-check runs BACKEND_CHAPTERS on JAX.
BACKEND ?=
KERAS_BACKEND_ENV = $(if $(BACKEND),KERAS_BACKEND=$(BACKEND) )
ifneq ($(filter chapter store,$(MAKECMDGOALS)),)
ifneq ($(filter-out tensorflow,$(BACKEND)),)
$(error make chapter and make store keep TensorFlow's outputs only, and BACKEND=$(BACKEND): run them without BACKEND, or use make run)
endif
endif
# The chapters that run to the end on Keras's JAX backend (issue 30).
BACKEND_CHAPTERS := 01 03 05
# The seed of CI's second execution of every chapter, other than the chapters' own 42.
ALT_SEED ?= 7
# Chapters executed at once by execute-check and nbval. TensorFlow runs each operation on one
# thread (see helpers/runtime/numerics.py), so two chapters at a time keep two cores busy.
JOBS ?= 2

# The chapters, then the executed appendices (A1, A2, ...; the claims index is generated).
# With JOBS > 1, execute-check and nbval hand them to the workers longest first, by the times
# that their runs measure into build/chapter_times.json, else by the tracked
# tools/chapter_times.json, which only make chapter-times rewrites (tools/chapter_times.py).
CHAPTER_MDS := $(sort $(wildcard chapters/[0-9][0-9]_*.md)) $(sort $(wildcard chapters/A[0-9]_*.md))
NOTEBOOKS := $(patsubst %.md,%.ipynb,$(CHAPTER_MDS))
CHAPTER ?=
PARAMS ?=
chapter_md = $(or $(firstword $(wildcard chapters/$(CHAPTER)_*.md)),$(error no chapter matches CHAPTER=$(CHAPTER); try e.g. CHAPTER=03))
EXECUTE = $(PINNED) $(PY) -m tools.execute_chapters
NBVAL = -m tools.standalone_nbval --jobs $(JOBS) $(NOTEBOOKS)

# The tests, under the pins. Markers select them (pyproject.toml): `integration` (kernels,
# subprocesses, servers, browsers, keras.applications networks) is left out by make check;
# `slow` by all but make unit-all; `browser` and `pdf` test a built book or PDF, so only
# book-check, book-dark and pdf-check select them.
PYTEST = $(PINNED) $(BIN)/pytest -q
NOT_BUILT := not browser and not pdf

.PHONY: help setup sysdeps sysdeps-pdf data check imports quick test lint unit unit-all sync-check execute-check nbval book-build book-check \
        book-dark pdf pdf-check backends-check test-extended internals-oldest pins-range nbval-oldest nbval-py313 install-py312 wheel \
        book store chapter chapter-times run format lock sync colab-cells lab bench clean distclean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# --- set-up -------------------------------------------------------------------------------

sysdeps: ## Debian as root: install the data package, Chromium and the browser test's fonts (skipped elsewhere)
	@bash tools/sysdeps.sh

sysdeps-pdf: ## Debian as root: also TeX Live, its fonts and poppler, for make pdf (skipped elsewhere)
	@bash tools/sysdeps.sh pdf

# The system Python writes uv's entry of the lock (standard library only: .venv has nothing yet).
$(STAMP): $(LOCK) pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PYTHON) -m tools.environments uv-requirement $(LOCK) > $(VENV)/uv-requirement.txt
	$(PY) -m pip install --quiet --require-hashes -r $(VENV)/uv-requirement.txt
	$(UV_PIP) --require-hashes -r $(LOCK)
	$(UV_PIP) --no-deps --no-build-isolation -e .
	@touch $@

setup: sysdeps $(STAMP) ## Create .venv and install the pinned packages

data: setup ## Place a verified local copy of Fashion-MNIST in Keras's cache
	$(PY) -c "from helpers.data import load_fashion_mnist as f; s = f(); print('Fashion-MNIST ready:', ', '.join(f'{x.shape[0]:,}' for x, _ in s))"

$(MATHJAX): tools/npm/package.json
	@mkdir -p $(NPM_DIR)
	cp tools/npm/package.json $(NPM_DIR)/package.json
	cd $(NPM_DIR) && npm install --no-package-lock --no-audit --no-fund --silent
	@test -f $@ && touch $@

# --- the edit loop: `make check` ------------------------------------------------------------

# Each step prints how long it took when it ends; `+` lets `make -n` show the steps' commands.
timed = start=$$(date +%s); $(MAKE) --no-print-directory $(1); \
	echo "== make $(1): $$(( $$(date +%s) - start )) s"

check: $(STAMP) ## Quick checks for the edit loop: lint, the import contract, tests without kernels
	@+$(call timed,lint)
	@+$(call timed,imports)
	@+$(call timed,quick)

imports: $(STAMP) ## The import contract of helpers (import-linter, [tool.importlinter] in pyproject.toml)
	$(BIN)/lint-imports

quick: $(STAMP) ## The tests that start no kernel, subprocess, server or browser (about a minute on 2 cores)
	$(PYTEST) -n $(JOBS) -m "not integration and not slow and $(NOT_BUILT)" tests

# --- CI: `make test` stops at the first broken step ----------------------------------------

test: data ## Everything CI checks, in order, stopping at the first failure
	@+$(call timed,lint)
	@+$(call timed,unit)
	@+$(call timed,sync-check)
	@+$(call timed,execute-check)
	@+$(call timed,nbval NUMERICS=alternate)
	@+$(call timed,book-build)
	@+$(call timed,book-check)

lint: $(STAMP) ## 0. ruff: lint and format check of Python files and chapter code (make format fixes)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: $(STAMP) ## 1. Unit tests of helpers and tools, integration included (not slow: make unit-all)
	$(PYTEST) -n $(JOBS) -m "not slow and $(NOT_BUILT)" tests

unit-all: $(STAMP) ## The unit tests, those marked slow included
	$(PYTEST) -n $(JOBS) -m "$(NOT_BUILT)" tests

sync-check: $(STAMP) ## 2. Every chapter .md / .ipynb pair holds the same cells and pairing metadata
	$(PY) -m tools.check_sync $(CHAPTER_MDS)

execute-check: $(OLDEST)/.installed ## 3. Every chapter alone, on the oldest supported stack, at seed ALT_SEED, reduced sizes
	$(call pinned_in,$(OLDEST)) -m tools.execute_chapters --standalone --into build/scratch \
	  --seed $(ALT_SEED) --reduced --jobs $(JOBS) $(CHAPTER_MDS)

nbval: $(STAMP) ## 4. nbval: stored outputs match a fresh execution of each chapter alone (make test: NUMERICS=alternate)
	$(PINNED) $(PY) $(NBVAL)

book-build: $(STAMP) $(MATHJAX) ## 5. Build the static book from the stored outputs, warnings are errors
	$(PY) -m tools.build_book

book-check: $(STAMP) $(MATHJAX) ## 6. The built book in headless Chromium: maths, figures, layout, alt text, axe-core
	$(PYTEST) -m browser tests/test_rendered_book.py

book-dark: $(STAMP) $(MATHJAX) ## The same browser checks with the theme in dark mode (after book-build)
	BOOK_MODE=dark $(PYTEST) -m browser tests/test_rendered_book.py

# The PDF edition: the same pages and stored outputs through Jupyter Book's LaTeX builder and
# XeLaTeX (TeX Live from make sysdeps-pdf), copied beside the html pages when they are built.
pdf: sysdeps-pdf $(STAMP) ## Build the book as one PDF: build/pdf/bn-companion.pdf (make book-build then links it)
	$(PY) -m tools.build_book --pdf

pdf-check: pdf ## The PDF holds every chapter title, claim id and figure, and no raw TeX
	$(PYTEST) -m pdf tests/test_pdf.py

# --- the supported range: other environments, each with the package installed from its wheel --

# The oldest supported stack (locks/oldest.lock: TensorFlow 2.19, Keras 3.10, NumPy 2.0.2,
# pandas 2.2.2, as on Colab) and CPython 3.13 with the newest releases (locks/py313.lock). Each
# venv gets its lock, then the package's wheel installed by pip as a reader installs it
# (tools/environments.py reader-env, then tools/reader_install.py). Chapters then run there with
# --standalone: each notebook copied alone into an empty folder outside the repository, as
# Colab opens it. PYTHON313/PYTHON312: a CPython X.Y that runs, pyenv's first, then the PATH's.
PYTHON313 ?= $(shell $(PYTHON) -m tools.environments find-python 3.13 2>/dev/null)
PYTHON312 ?= $(shell $(PYTHON) -m tools.environments find-python 3.12 2>/dev/null)
READER_ENV = $(PY) -m tools.environments reader-env --uv $(BIN)/uv
WHEEL_STAMP := build/dist/.built

$(WHEEL_STAMP): $(STAMP) pyproject.toml $(wildcard helpers/*.py helpers/*/*.py helpers/*/*.toml helpers/bench/*)
	rm -rf build/dist
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation -w build/dist .
	@touch $@

wheel: $(WHEEL_STAMP) ## Build the package's wheel into build/dist

$(OLDEST)/.installed: locks/oldest.lock $(WHEEL_STAMP)
	$(READER_ENV) $(OLDEST) "$(PYTHON)" locks/oldest.lock

$(PY313)/.installed: locks/py313.lock $(WHEEL_STAMP)
	$(READER_ENV) $(PY313) "$(PYTHON313)" locks/py313.lock

test-extended: data ## What CI checks beyond make test: the oldest stack, Python 3.13, 3.12, dark mode, the PDF, JAX
	@+$(call timed,internals-oldest)
	@+$(call timed,pins-range)
	@+$(call timed,nbval-oldest)
	@+$(call timed,nbval-py313)
	@+$(call timed,install-py312)
	@+$(call timed,book-dark)
	@+$(call timed,pdf-check)
	@+$(call timed,backends-check)

# The seam's contract (helpers/internals.py): every private Keras and TensorFlow attribute it
# names is still there in the oldest supported Keras, as tests/test_internals.py checks on the
# locked one in make test.
internals-oldest: $(OLDEST)/.installed ## The seam's contract test on the oldest supported stack (Keras 3.10)
	$(call pinned_in,$(OLDEST)) -m pytest -q -p no:cacheprovider tests/test_internals.py

# The numerics pins (tests/test_numerics_pins.py, in make unit on the lock) on the NumPy of each
# end of the range: a pinned OpenBLAS kernel that crashes or miscomputes there fails here.
pins-range: $(OLDEST)/.installed $(PY313)/.installed ## Each numerics profile's pins on the oldest and the newest NumPy
	$(OLDEST)/bin/python -m pytest -q -p no:cacheprovider tests/test_numerics_pins.py
	$(PY313)/bin/python -m pytest -q -p no:cacheprovider tests/test_numerics_pins.py

nbval-oldest: $(OLDEST)/.installed ## nbval on the oldest supported stack, every chapter alone
	$(call pinned_in,$(OLDEST)) $(NBVAL)

nbval-py313: $(PY313)/.installed ## nbval on Python 3.13 and the newest releases, every chapter alone
	$(call pinned_in,$(PY313)) $(NBVAL)

# Colab's stack (Python 3.12 with `tensorflow`, not `tensorflow-cpu`): pip's dry run must keep
# each of its versions and add no second TensorFlow.
COLAB_STACK := tensorflow==2.19.0 keras==3.10.0 numpy==2.0.2 pandas==2.2.2
install-py312: $(WHEEL_STAMP) ## pip takes the wheel on Python 3.12, alone and beside Colab's stack (dry runs)
	@test -n "$(PYTHON312)" || { echo "install-py312 needs CPython 3.12, which was not found (pyenv install 3.12, or set PYTHON312)"; exit 1; }
	$(PY) -m tools.reader_install --fresh $(PYTHON312) build/dist/*.whl
	$(PY) -m tools.reader_install --fresh $(PYTHON312) build/dist/*.whl --with $(COLAB_STACK)

# --- reading and writing chapters ----------------------------------------------------------

# make book is a reader's run: every chapter executed into build/executed (JOBS at a time), the
# book rendered from there, and a report of what reproduced (tools/reproduced.py); it leaves
# chapters/ and every tracked file as they were. Storing outputs is make store or make chapter:
# each notebook is replaced only by a run that succeeded, in one os.replace.
EXECUTED := build/executed

book: data $(MATHJAX) ## Execute every chapter into build/executed, render the book from there, report what reproduced
	rm -rf $(EXECUTED)
	$(EXECUTE) --into $(EXECUTED) --jobs $(JOBS) $(CHAPTER_MDS)
	$(PY) -m tools.build_book --from $(EXECUTED)
	@echo "The book is in $(BOOK_HTML)/index.html"
	@echo
	@$(PY) -m tools.reproduced $(EXECUTED)

store: data ## Execute every chapter and store its outputs in chapters/*.ipynb (only runs that succeeded)
	$(EXECUTE) --in-place $(CHAPTER_MDS)

chapter: data ## Execute one chapter and store its outputs in its .ipynb: make chapter CHAPTER=03
	$(EXECUTE) --in-place $(chapter_md)

chapter-times: $(STAMP) ## Store this machine's measured chapter times (build/) into the tracked tools/chapter_times.json
	$(PY) -m tools.chapter_times --store

run: data ## Execute one chapter with other parameters into runs/: make run CHAPTER=07 PARAMS="-p n_seeds 5"
	$(EXECUTE) --into $(RUNS) $(PARAMS) $(chapter_md)

backends-check: data ## The chapters that run on Keras's JAX backend (BACKEND_CHAPTERS), at seed ALT_SEED, reduced sizes
	KERAS_BACKEND=jax $(PINNED) $(PY) -m tools.execute_chapters --into build/backends/jax \
	  --seed $(ALT_SEED) --reduced --jobs $(JOBS) \
	  $(foreach n,$(BACKEND_CHAPTERS),$(firstword $(wildcard chapters/$(n)_*.md)))

# Ruff formats a chapter's .ipynb alone; tools/format_chapters.py then formats the .md and
# writes both sides through Jupytext, keeping their pairing metadata as stored
# (tests/test_format_chapters.py fails otherwise).
format: $(STAMP) ## Apply ruff's fixes and formatter to Python files and both sides of every chapter
	$(BIN)/ruff check --fix-only --quiet .
	$(BIN)/ruff format --quiet .
	$(PY) -m tools.format_chapters --ruff $(BIN)/ruff $(CHAPTER_MDS)

# Which locks, resolved for what, and how: tools/environments.py (`--dry-run` prints the commands).
lock: $(STAMP) ## Regenerate requirements.lock and locks/*.lock (hashes included) from pyproject.toml; UPGRADE=1: newest
	$(PY) -m tools.environments lock --uv $(BIN)/uv $(if $(UPGRADE),--upgrade)

colab-cells: $(STAMP) ## Rewrite every chapter's Open in Colab badge and install cell from pyproject.toml
	$(PY) -m tools.colab --write $(CHAPTER_MDS)
	@echo "Store the chapters that changed again (make store) so that each .ipynb follows its .md."

# jupytext --sync writes its version lines into each .md header and drops the .ipynb's
# text_representation; tools.pairing puts the stored form back (make sync-check checks it).
sync: $(STAMP) ## Re-pair .md and .ipynb after editing either side in JupyterLab
	$(BIN)/jupytext --sync $(CHAPTER_MDS)
	$(PY) -m tools.pairing $(CHAPTER_MDS)

# tools/lab/: a double-click opens a chapter's .md as a notebook; no news, update checks or
# other request leaves the machine; the reader's own Jupyter settings are left alone.
lab: data ## JupyterLab: double-click chapters/NN_*.md to open it as a notebook (as root too: containers)
	$(PINNED) $(BIN)/jupyter lab --notebook-dir=chapters --config=tools/lab/jupyter_lab_config.py \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

# The benchmarks measure speed, not numbers: TensorFlow keeps its default thread counts. The
# wall time to target first finds chapter 07's steps under the pins, then times those runs.
# Each part runs in its own process, with a bounded number of repetitions.
bench: data ## Benchmarks (latency, real networks, wall time to target): writes helpers/bench/
	BN_COMPANION_NUMERICS=none $(PY) bench/fusion_latency.py --out helpers/bench --update-readme
	BN_COMPANION_NUMERICS=none $(PY) bench/network_latency.py --out helpers/bench
	$(PINNED) $(PY) bench/wall_time.py --find-steps build/bench/wall_time_steps.json
	BN_COMPANION_NUMERICS=none $(PY) bench/wall_time.py --steps build/bench/wall_time_steps.json \
	  --out helpers/bench --reps 21

clean: ## Remove build outputs and scratch runs
	rm -rf build/book build/scratch $(EXECUTED) $(RUNS) .pytest_cache

distclean: clean ## Also remove the virtual environment and npm packages
	rm -rf $(VENV) $(OLDEST) $(PY313) build
