# Environment shared by the test suite and the benchmarks: real PostgreSQL and Redis on loopback.
# Sourced, not run. Values already set in the environment win.
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/labelstudio_ferv}"
export CELERY_BROKER_URL="${TEST_CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}"
# Each run gets its own queue, so a worker left from another run never takes its tasks.
export CELERY_QUEUE="${CELERY_QUEUE:-lsf-$(hostname)-$$}"
export SECRET_KEY="${SECRET_KEY:-test-only-secret-key-0123456789abcdefghijklmnop}"
export DJANGO_DEBUG=0
export DJANGO_HTTPS=0
export STATIC_MANIFEST=0
export LSF_DATA_DIR="${LSF_DATA_DIR:-$(mktemp -d /tmp/lsf-test.XXXXXX)}"
