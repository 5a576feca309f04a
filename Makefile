# Two commands for a new user: `make demo` and `make test`. Each sets itself up.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO ?= demo-workspace

.PHONY: demo test lint typecheck check bench clean

$(BIN)/doorstep: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

demo: $(BIN)/doorstep  ## generate a synthetic workspace and run every stage on it
	$(BIN)/doorstep demo $(DEMO)

test: $(BIN)/doorstep  ## the whole test suite (PostgreSQL too when DOORSTEP_TEST_DATABASE_URL is set)
	$(BIN)/pytest

lint: $(BIN)/doorstep
	$(BIN)/ruff check src tests benchmarks

typecheck: $(BIN)/doorstep
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) $(DEMO)
