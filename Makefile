# The two commands README.md opens with: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n 2 -m "not slow"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch==2.13.0 first: a CPU build; an unpinned torch would pull several GB of CUDA packages.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,docs]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/midlogit demo

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The oldest versions pyproject.toml declares (ci/oldest.txt pins them), in a second
# virtual environment; torch stays 2.13.0, the only CPU build the registry has.
OLDEST_VENV ?= .venv-oldest
OLDEST_BIN := $(OLDEST_VENV)/bin

$(OLDEST_VENV)/.installed: pyproject.toml ci/oldest.txt
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_BIN)/python -m pip install --quiet --upgrade pip
	$(OLDEST_BIN)/python -m pip install --quiet --only-binary :all: -c ci/oldest.txt torch
	$(OLDEST_BIN)/python -m pip install --quiet --only-binary :all: -c ci/oldest.txt -e ".[dev,docs]"
	touch $@

test-oldest: $(OLDEST_VENV)/.installed
	$(OLDEST_BIN)/python ci/check_oldest.py
	$(OLDEST_BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: install
	$(BIN)/python -m pytest -n 2 -m slow

lint: install
	$(BIN)/ruff check midlogit tests benchmarks examples

docs: install
	$(MAKE) -C docs html SPHINXBUILD=$(abspath $(BIN))/sphinx-build
	$(BIN)/python docs/check_html.py docs/_build/html

.PHONY: install demo test test-oldest test-slow lint docs
