"""Settings come from the environment alone: embedded default, PostgreSQL/Redis, production."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import environment_without_app_settings

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import json, django; from django.conf import settings; django.setup();"
    "from labelstudio_ferv.celery import app;"
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'],"
    " 'name': str(settings.DATABASES['default']['NAME']),"
    " 'eager': app.conf.task_always_eager, 'broker': app.conf.broker_url,"
    " 'debug': settings.DEBUG, 'hosts': settings.ALLOWED_HOSTS,"
    " 'media': str(settings.MEDIA_ROOT), 'serializer': app.conf.task_serializer}))"
)


def run_python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Run Python in a fresh process whose environment holds only ``env`` of the app's variables."""
    clean = environment_without_app_settings()
    clean["LSF_DATA_DIR"] = str(tmp_path / "var")
    clean["DJANGO_SETTINGS_MODULE"] = "labelstudio_ferv.settings"
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def probe(tmp_path: Path, **env: str) -> dict:
    result = run_python(PROBE, tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_an_empty_environment_is_the_embedded_default(tmp_path):
    found = probe(tmp_path)
    assert found["engine"] == "django.db.backends.sqlite3"
    assert found["name"] == str(tmp_path / "var" / "db.sqlite3")
    assert found["eager"] is True
    assert found["media"] == str(tmp_path / "var" / "media")
    assert found["hosts"] == ["127.0.0.1", "localhost"]
    assert found["serializer"] == "json"


def test_database_and_broker_urls_switch_to_postgres_and_redis(tmp_path):
    found = probe(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/somewhere",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/3",
        SECRET_KEY="k" * 50,
    )
    assert found["engine"] == "django.db.backends.postgresql"
    assert found["name"] == "somewhere"
    assert found["eager"] is False
    assert found["broker"] == "redis://127.0.0.1:6379/3"
    assert found["debug"] is False


@pytest.mark.parametrize("secret", [None, "short"])
def test_debug_off_refuses_a_placeholder_or_weak_secret_key(tmp_path, secret):
    env = {"DJANGO_DEBUG": "0"}
    if secret:
        env["SECRET_KEY"] = secret
    result = run_python(PROBE, tmp_path, **env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_a_wildcard_host_is_refused_in_production(tmp_path):
    result = run_python(PROBE, tmp_path, DJANGO_DEBUG="0", SECRET_KEY="k" * 50, ALLOWED_HOSTS="*")
    assert result.returncode != 0
    assert "ALLOWED_HOSTS may not be a wildcard" in result.stderr


def test_check_deploy_reports_nothing_with_production_settings(tmp_path):
    env = environment_without_app_settings()
    env.update(
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1/x"),
        SECRET_KEY="a-real-secret-" + "x9Q" * 20,
        ALLOWED_HOSTS="labels.example.org",
        LSF_DATA_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
