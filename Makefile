# The two commands a newcomer needs: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint format bench install clean

# `make test` runs the suite in this many pytest-xdist worker processes (0: one process, e.g.
# for --pdb). Each worker has its own test database, Redis database and Celery queue
# (config/test_settings.py); the real-WordPress tests share one worker (tests/conftest.py).
TEST_WORKERS ?= 4

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# Python may keep compiled modules (and pytest its assertion-rewritten tests) in __pycache__
# even where the environment says not to (PYTHONDONTWRITEBYTECODE, as some containers set):
# without them every xdist worker and every Celery worker a test starts compiles the project
# and the tests again, ~4 s of CPU per worker at each start.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var/db.sqlite3 var/broker
