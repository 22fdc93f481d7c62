#!/usr/bin/env bash
# `make test`: lint, migration check and the whole pytest suite on PostgreSQL + Redis, then the
# assignment, trust and review tests again on SQLite (the embedded default).
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
if [ $# -eq 0 ]; then
    # The same API, assignment, trust and review tests on the embedded default (SQLite, eager
    # tasks, no broker): both versions of every hot-path statement (annotations/statements.py)
    # are run. Tests marked `postgres` or `worker` skip themselves there.
    env -u DATABASE_URL -u CELERY_BROKER_URL .venv/bin/python -m pytest \
        tests/annotations/test_api_annotate.py tests/annotations/test_ahead.py \
        tests/annotations/test_assignment_consensus.py tests/annotations/test_trust.py \
        tests/annotations/test_review.py tests/annotations/test_gold_order.py \
        tests/annotations/test_quality.py tests/annotations/test_confidence.py \
        tests/annotations/test_api_campaigns.py \
        tests/annotations/test_api_people.py tests/annotations/test_api_tasks_audit_gold.py \
        tests/annotations/test_claim_order.py tests/annotations/test_informative.py \
        tests/annotations/test_guidelines_priorities_history.py \
        tests/annotations/test_qualification.py \
        tests/annotations/test_audit.py tests/annotations/test_signals.py
    sqlite_status=$?
    [ $status -ne 0 ] || status=$sqlite_status
fi
set -e
rm -rf "$LSF_DATA_DIR"
exit $status
