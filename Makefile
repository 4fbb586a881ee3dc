# One command for each thing a reader, an instructor or CI does. Each target sets up what it
# needs first (virtual environment, pinned packages, data), so a fresh clone needs nothing else.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
NPM_DIR := build/npm
MATHJAX := $(NPM_DIR)/node_modules/mathjax/es5/tex-chtml-full.js
BOOK_HTML := build/book/_build/html
RUNS := runs

# Quiet TensorFlow start-up in every process and kernel (chapters also set these themselves).
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1

CHAPTER_MDS := $(sort $(wildcard chapters/[0-9][0-9]_*.md))
CHAPTER ?=
PARAMS ?=
chapter_md = $(or $(firstword $(wildcard chapters/$(CHAPTER)_*.md)),$(error no chapter matches CHAPTER=$(CHAPTER); try e.g. CHAPTER=03))

.PHONY: help setup sysdeps data test unit sync-check execute-check nbval book-build book-check \
        book chapter run sync lab bench clean distclean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# --- set-up -------------------------------------------------------------------------------

sysdeps: ## Debian as root: install the data package and Chromium (skipped elsewhere)
	@bash tools/sysdeps.sh

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==26.3"
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

setup: sysdeps $(STAMP) ## Create .venv and install the pinned packages

data: setup ## Place a verified local copy of Fashion-MNIST in Keras's cache
	$(PY) -c "from helpers.data import load_fashion_mnist as f; s = f(); print('Fashion-MNIST ready:', ', '.join(f'{x.shape[0]:,}' for x, _ in s))"

$(MATHJAX): tools/npm/package.json
	@mkdir -p $(NPM_DIR)
	cp tools/npm/package.json $(NPM_DIR)/package.json
	cd $(NPM_DIR) && npm install --no-package-lock --no-audit --no-fund --silent
	@test -f $@ && touch $@

# --- CI: `make test` stops at the first broken step ----------------------------------------

test: data ## Everything CI checks, in order, stopping at the first failure
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory sync-check
	$(MAKE) --no-print-directory execute-check
	$(MAKE) --no-print-directory nbval
	$(MAKE) --no-print-directory book-build
	$(MAKE) --no-print-directory book-check

unit: $(STAMP) ## 1. Unit tests of helpers
	$(BIN)/pytest -q tests --ignore=tests/test_book.py

sync-check: $(STAMP) ## 2. Every chapter .md / .ipynb pair holds the same cells
	$(PY) tools/check_sync.py $(CHAPTER_MDS)

execute-check: $(STAMP) ## 3. Every chapter executes with papermill, into build/scratch
	@mkdir -p build/scratch
	@for md in $(CHAPTER_MDS); do nb=$${md%.md}.ipynb; out=build/scratch/$$(basename $$nb); \
	  start=$$(date +%s); \
	  $(BIN)/papermill --no-progress-bar --log-level WARNING --cwd chapters $$nb $$out; \
	  echo "executed $$nb in $$(( $$(date +%s) - start )) s"; done

nbval: $(STAMP) ## 4. nbval: stored outputs match a fresh execution
	$(BIN)/pytest -q -p no:cacheprovider --nbval --nbval-current-env \
	  --nbval-sanitize-with nbval_sanitize.cfg --nbval-cell-timeout 900 \
	  $(patsubst %.md,%.ipynb,$(CHAPTER_MDS))

book-build: $(STAMP) $(MATHJAX) ## 5. Build the static book from the stored outputs, warnings are errors
	$(PY) tools/build_book.py

book-check: $(STAMP) ## 6. Open the built book in headless Chromium: maths typeset, figures, no remote assets
	$(BIN)/pytest -q tests/test_book.py

# --- reading and writing chapters ----------------------------------------------------------

book: data $(MATHJAX) ## Execute every chapter (refreshing stored outputs) and render the book
	@for md in $(CHAPTER_MDS); do tools/execute_chapter.sh $$md; done
	$(PY) tools/build_book.py
	@echo "The book is in $(BOOK_HTML)/index.html"

chapter: data ## Execute one chapter in place from its .md: make chapter CHAPTER=03
	@tools/execute_chapter.sh $(chapter_md)

run: data ## Execute one chapter with other parameters into runs/: make run CHAPTER=07 PARAMS="-p epochs 20"
	@mkdir -p $(RUNS)
	@md=$(chapter_md); nb=$${md%.md}.ipynb; out=$(RUNS)/$$(basename $$nb); \
	  $(BIN)/papermill --no-progress-bar --log-level WARNING --cwd chapters $(PARAMS) $$nb $$out; \
	  echo "wrote $$out (the chapter itself is unchanged)"

sync: $(STAMP) ## Re-pair .md and .ipynb after editing either side in JupyterLab
	$(BIN)/jupytext --sync $(CHAPTER_MDS)

lab: data ## JupyterLab with Jupytext: open chapters/*.md as notebooks
	$(BIN)/jupyter lab --notebook-dir=chapters

bench: data ## Fusion latency benchmark: writes bench/latency.{json,md}
	$(PY) bench/fusion_latency.py --out bench --update-readme

clean: ## Remove build outputs and scratch runs
	rm -rf build/book build/scratch $(RUNS) .pytest_cache

distclean: clean ## Also remove the virtual environment and npm packages
	rm -rf $(VENV) build
