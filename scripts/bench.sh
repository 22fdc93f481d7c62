#!/usr/bin/env bash
# Run one benchmark against real PostgreSQL and Redis; its last line is one JSON object.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
scripts/services.sh
source scripts/test-env.sh
export DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/lsf_bench}"
export CELERY_TASK_ALWAYS_EAGER=0
script=$1
shift
exec .venv/bin/python "$script" "$@"
