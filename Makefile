# The two commands the README starts with. Both create or refresh .venv and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes, so a pulled dependency is never missing.
$(STAMP): $(BIN)/python pyproject.toml
	# The Spark parity tests need Java (pyspark 3.5+/4.x run on Java 17, Debian 12's default JRE).
	command -v java >/dev/null || (apt-get update && apt-get install -y default-jre-headless)
	$(BIN)/python -m pip install --quiet -e ".[test,spark]"
	touch $(STAMP)

venv: $(STAMP)

# On a terminal the demo ends by serving the console until Ctrl-C; without one (CI, a pipe) it ends.
demo: $(STAMP)
	if [ -t 0 ]; then $(BIN)/dvsync demo; else $(BIN)/dvsync demo --no-console; fi

# pytest-xdist workers: one per core, at most 4 (beyond that the longest groups set the pace and each
# worker only repeats the session set-up). loadgroup keeps tests marked xdist_group on one worker.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

# The console's browser tests drive Debian's chromium (Playwright never downloads a browser here).
test: $(STAMP)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	# Comparison libraries are optional: a bench prints our own figures when they will not install.
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt || echo "bench: optional comparison packages not installed"
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
