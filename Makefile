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

test-slow: install
	$(BIN)/python -m pytest -n 2 -m slow

lint: install
	$(BIN)/ruff check midlogit tests benchmarks examples

docs: install
	$(MAKE) -C docs html SPHINXBUILD=$(abspath $(BIN))/sphinx-build
	$(BIN)/python docs/check_html.py docs/_build/html

.PHONY: install demo test test-slow lint docs
