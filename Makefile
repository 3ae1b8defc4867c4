# Entry points for readers and CI. Everything runs in .venv, built from the
# pinned versions in requirements/lock.txt on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The notebook kernel is started as "python"; putting the venv first on PATH
# makes it the venv's interpreter rather than the system one.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help env book test lab benchmarks clean

help:
	@echo "make env         create .venv with the pinned versions (the other targets do this first)"
	@echo "make book        execute every chapter and build the HTML book into _build/html"
	@echo "make test        run the test suite (unit tests, every chapter, the book build)"
	@echo "make lab         open JupyterLab on the chapters"
	@echo "make benchmarks  print the timing benchmarks"
	@echo "make clean       remove _build (keeps .venv)"

env: $(STAMP)

$(STAMP): requirements/lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

test: $(STAMP)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

benchmarks: $(STAMP)
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf _build
