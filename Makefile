# Dockgate: `make demo` and `make test` are the two commands a newcomer needs.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test lint format bench chaos clean help readme

help:
	@echo "make demo   - create .venv, install, run the appliance on embedded defaults"
	@echo "make test   - install what the tests need (Python and Debian packages), run pytest"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - print the performance figures (bench/)"
	@echo "make chaos  - kills, outages, power loss, fuzzing, security with figures (tests/chaos, tests/fuzz, tests/security)"

$(VENV)/.runtime: pyproject.toml .ci/install
	bash .ci/install runtime
	touch $@

$(VENV)/.dev: pyproject.toml .ci/install
	bash .ci/install dev
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	bash .ci/install broker
	$(BIN)/dockgate demo

test: $(VENV)/.dev
	bash .ci/install system
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

chaos: $(VENV)/.dev  ## long kill/outage run (>= 30 kills), power loss (600 cycles), every fuzzer at 10x its CI budget; prints the figures
	bash .ci/install system
	DOCKGATE_CHAOS_LONG=1 DOCKGATE_FUZZ_EXAMPLES=10 $(BIN)/python -m pytest -s -rxX tests/chaos tests/fuzz tests/security $(PYTEST_ARGS)

bench: $(VENV)/.dev
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info

readme: $(VENV)/.runtime  ## regenerate the README's error-code table from edge/contracts/errors.py
	$(BIN)/python -c "import re,pathlib;from edge.contracts.errors import markdown_table as t;p=pathlib.Path('README.md');s=p.read_text();a='<!-- errors:begin -->';b='<!-- errors:end -->';p.write_text(s[:s.index(a)+len(a)]+'\n'+t()+'\n'+s[s.index(b):])"
