#!/usr/bin/env bash
# `make worker`: a Celery worker for the broker in CELERY_BROKER_URL. Without a broker the app
# runs tasks inside the web process, and a worker would wait on an in-memory queue nobody sends
# to; refuse instead of starting silently.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CELERY_BROKER_URL:-}" ]; then
  echo "make worker needs a broker: set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0)." >&2
  echo "Without one, tasks run inside the web process and no worker is needed." >&2
  exit 2
fi
exec .venv/bin/celery -A labelstudio_ferv worker -l info "$@"
