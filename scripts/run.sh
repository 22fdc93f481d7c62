#!/usr/bin/env bash
# `make run`: migrate, load the demo campaign and serve on 127.0.0.1:8000.
# Empty environment: SQLite, tasks in-process, media under ./var. With DATABASE_URL and
# CELERY_BROKER_URL set: PostgreSQL, Redis and a real Celery worker started alongside.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# make run is a development server: DEBUG on unless the caller says otherwise.
export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
mkdir -p "${LSF_DATA_DIR:-var}"
$PY manage.py migrate --noinput
$PY manage.py seed_demo
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
if [ -n "${CELERY_BROKER_URL:-}" ]; then
  .venv/bin/celery -A labelstudio_ferv worker -l warning --concurrency 2 &
  pids+=($!)
  .venv/bin/celery -A labelstudio_ferv beat -l warning --schedule "${LSF_DATA_DIR:-var}/celerybeat-schedule" &
  pids+=($!)
fi
echo
echo "labelstudio-ferv is at http://$HOST:$PORT/"
echo "demo logins (password 'demo-password'): admin, reviewer, annotator1, annotator2, annotator3"
echo
if [ "$($PY -c 'from django.conf import settings; import django; django.setup(); print(int(settings.DEBUG))' 2>/dev/null)" = 1 ]; then
  $PY manage.py runserver "$HOST:$PORT" --noreload
else
  $PY manage.py collectstatic --noinput >/dev/null
  .venv/bin/gunicorn labelstudio_ferv.wsgi -b "$HOST:$PORT" -w "${WEB_CONCURRENCY:-2}"
fi
