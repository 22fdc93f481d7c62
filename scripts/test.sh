#!/usr/bin/env bash
# `make test`: lint, migration check and the whole pytest suite on PostgreSQL + Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
scripts/services.sh
source scripts/test-env.sh
# Tasks run eagerly unless a test starts a real worker (the `celery_worker` fixture).
export CELERY_TASK_ALWAYS_EAGER=1
.venv/bin/ruff format --check .
.venv/bin/ruff check .
.venv/bin/python manage.py makemigrations --check --dry-run
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
rm -rf "$LSF_DATA_DIR"
exit $status
