# The two commands a newcomer needs: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BENCH_ARGS ?=

.PHONY: install run worker test screenshots lint format system-deps services bench-transcode bench-load \
        bench-trust bench-export bench-candidates bench-tasks bench-history bench-profile chaos clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

## Serve the app on 127.0.0.1:8000 (embedded default unless DATABASE_URL/CELERY_BROKER_URL are set).
run: install
	scripts/run.sh

## A Celery worker for the broker in CELERY_BROKER_URL (refuses to start without one).
worker: install
	scripts/worker.sh

## The whole suite against real PostgreSQL and Redis, plus lint and migration checks.
test: install
	scripts/test.sh

## Refresh docs/screenshots/ from the browser tests (`make test` saves them to a temporary folder).
screenshots: install
	SCREENSHOT_DIR=$(CURDIR)/docs/screenshots scripts/test.sh tests/frontend/test_browser.py tests/frontend/test_admin_browser.py tests/frontend/test_gold_browser.py tests/frontend/test_trust_browser.py

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

system-deps:
	scripts/system-deps.sh

services: install
	scripts/services.sh

bench-transcode: install
	scripts/bench.sh bench/transcode.py $(BENCH_ARGS)

## Faults injected into real processes while annotators answer (minutes; not part of make test).
chaos: install
	BENCH_DATABASE_URL=$${CHAOS_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/lsf_chaos} \
		scripts/bench.sh bench/chaos.py $(BENCH_ARGS)

bench-load: install
	scripts/bench.sh bench/annotate_load.py $(BENCH_ARGS)

bench-trust: install
	scripts/bench.sh bench/simulate.py $(BENCH_ARGS)

bench-export: install
	scripts/bench.sh bench/export.py $(BENCH_ARGS)

bench-candidates: install
	scripts/bench.sh bench/candidates.py $(BENCH_ARGS)

bench-tasks: install
	scripts/bench.sh bench/tasks_list.py $(BENCH_ARGS)

## Progress over time (dashboard chart API) on 86,000 clips x 5 votes.
bench-history: install
	scripts/bench.sh bench/progress_history.py $(BENCH_ARGS)

bench-profile: install
	scripts/bench.sh bench/profile_loop.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
