"""docker-compose.yml describes the production shape; no Docker engine runs here, so parse it."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = (ROOT / "labelstudio_ferv" / "settings.py").read_text()


def load():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_production_services():
    services = load()["services"]
    assert set(services) == {"web", "worker", "beat", "postgres", "redis"}
    assert "gunicorn labelstudio_ferv.wsgi" in services["web"]["command"]
    assert services["worker"]["command"].startswith("celery -A labelstudio_ferv worker")
    assert services["beat"]["command"].startswith("celery -A labelstudio_ferv beat")
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"


def test_app_services_share_one_environment_that_settings_read():
    services = load()["services"]
    envs = [services[name]["environment"] for name in ("web", "worker", "beat")]
    assert envs[0] == envs[1] == envs[2]
    env = envs[0]
    assert env["DJANGO_DEBUG"] == "0"
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379")
    assert "@postgres:5432/" in env["DATABASE_URL"]
    for variable in env:
        # every variable the compose file sets is one settings.py reads
        assert re.search(rf"[\"']{variable}[\"']", SETTINGS), variable


def test_database_credentials_line_up_between_web_and_postgres():
    services = load()["services"]
    url = services["web"]["environment"]["DATABASE_URL"]
    pg = services["postgres"]["environment"]
    user, rest = url.removeprefix("postgres://").split(":", 1)
    assert user == pg["POSTGRES_USER"]
    assert url.endswith("/" + pg["POSTGRES_DB"])
    assert pg["POSTGRES_PASSWORD"] in rest
    assert (ROOT / "Dockerfile").exists()
