#!/usr/bin/env bash
# Start PostgreSQL and Redis on this machine when they are down (tests need both).
set -euo pipefail
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "starting PostgreSQL ..."
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis ..."
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    break
  fi
  sleep 0.5
done
if ! pg_isready -q -h 127.0.0.1 -p 5432 || ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "PostgreSQL or Redis did not come up on 127.0.0.1" >&2
  exit 1
fi
# The database the suite's settings name, from TEST_DATABASE_URL (or DATABASE_URL) as
# scripts/test-env.sh reads it; pytest creates its own test_ copy beside it.
url="${TEST_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/labelstudio_ferv}}"
"$(dirname "$0")/../.venv/bin/python" "$(dirname "$0")/ensure_database.py" "$url"
