#!/usr/bin/env bash
# `make run`: migrate, load the demo campaign and serve on 127.0.0.1:8000, in one of two modes.
#
# embedded (no DATABASE_URL): SQLite, tasks in-process, data under ./var/embedded; a development
#   server (runserver) with DEBUG on.
# services (DATABASE_URL set): PostgreSQL (the database is created when missing), Redis and a
#   Celery worker and beat when CELERY_BROKER_URL is set, data under ./var/services; gunicorn with
#   DEBUG off, as in production, with a secret key generated once into the data folder when
#   SECRET_KEY is not set.
# The two modes keep their data apart, so one never overwrites the other's media files.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"

if [ -n "${DATABASE_URL:-}" ]; then
  MODE=services
  export DJANGO_DEBUG="${DJANGO_DEBUG:-0}"
else
  MODE=embedded
  export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"
fi
export LSF_DATA_DIR="${LSF_DATA_DIR:-var/$MODE}"
mkdir -p "$LSF_DATA_DIR"
case "${DJANGO_DEBUG,,}" in 1 | true | yes | on) DEBUG=1 ;; *) DEBUG=0 ;; esac

if [ "$DEBUG" = 0 ]; then
  # Settings refuse to start with DEBUG off and no real secret: keep one for this machine.
  if [ -z "${SECRET_KEY:-}" ]; then
    secret_file="$LSF_DATA_DIR/secret-key"
    if [ ! -s "$secret_file" ]; then
      (umask 077 && $PY -c 'import secrets; print(secrets.token_urlsafe(50))' >"$secret_file")
      echo "generated a secret key in $secret_file"
    fi
    SECRET_KEY="$(cat "$secret_file")"
    export SECRET_KEY
  fi
  # Served as plain HTTP on this machine: no HTTPS redirect or secure-only cookies here (a real
  # deployment terminates TLS in front of the app and leaves DJANGO_HTTPS on).
  export DJANGO_HTTPS="${DJANGO_HTTPS:-0}"
  # Media comes from the app's own signed-URL view (with Range); behind nginx it would hand the
  # bytes to the proxy instead (MEDIA_ACCEL_REDIRECT, see "Production shape" in the README).
fi

if [ "$MODE" = services ]; then
  $PY scripts/ensure_database.py "$DATABASE_URL"
fi
$PY manage.py migrate --noinput
# The demo has known passwords, so seed_demo refuses to run with DEBUG off; `make run` serves on
# this machine only, and loads it in both modes (SEED_DEMO=0 skips it).
if [ "${SEED_DEMO:-1}" != 0 ]; then
  DJANGO_DEBUG=1 $PY manage.py seed_demo
fi

pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
if [ -n "${CELERY_BROKER_URL:-}" ]; then
  .venv/bin/celery -A labelstudio_ferv worker -l warning --concurrency 2 &
  pids+=($!)
  .venv/bin/celery -A labelstudio_ferv beat -l warning --schedule "$LSF_DATA_DIR/celerybeat-schedule" &
  pids+=($!)
fi
echo
echo "labelstudio-ferv ($MODE mode, DEBUG $([ "$DEBUG" = 1 ] && echo on || echo off), data in $LSF_DATA_DIR)"
echo "is at http://$HOST:$PORT/"
echo "demo logins (password 'demo-password'): admin, reviewer, annotator1, annotator2, annotator3"
echo
if [ "$DEBUG" = 1 ]; then
  $PY manage.py runserver "$HOST:$PORT" --noreload
else
  $PY manage.py collectstatic --noinput >/dev/null
  .venv/bin/gunicorn labelstudio_ferv.wsgi -b "$HOST:$PORT" -w "${WEB_CONCURRENCY:-2}"
fi
