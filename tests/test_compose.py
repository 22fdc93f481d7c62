"""docker-compose.yml describes the production shape; no Docker engine runs here, so parse it."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from tests.processes import django_snippet

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = (ROOT / "labelstudio_ferv" / "settings.py").read_text()


def load():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_production_services():
    services = load()["services"]
    assert set(services) == {"proxy", "web", "worker", "consensus", "beat", "postgres", "redis"}
    assert "gunicorn labelstudio_ferv.wsgi" in services["web"]["command"]
    assert services["worker"]["command"].startswith("celery -A labelstudio_ferv worker")
    assert services["consensus"]["command"].startswith("celery -A labelstudio_ferv worker")
    assert services["beat"]["command"].startswith("celery -A labelstudio_ferv beat")
    for name in ("web", "worker", "consensus", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"


def test_app_services_share_one_environment_that_settings_read():
    services = load()["services"]
    envs = [services[name]["environment"] for name in ("web", "worker", "consensus", "beat")]
    assert envs[0] == envs[1] == envs[2] == envs[3]
    env = envs[0]
    assert env["DJANGO_DEBUG"] == "0"
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379")
    assert "@postgres:5432/" in env["DATABASE_URL"]
    for variable in env:
        # every variable the compose file sets is one settings.py reads
        assert re.search(rf"[\"']{variable}[\"']", SETTINGS), variable


def _queues(command: str) -> set[str]:
    return set(command.split(" -Q ", 1)[1].split()[0].split(","))


def test_every_task_has_a_worker_and_consensus_has_its_own_single_process_one():
    """With compose's environment, the consensus tasks go to the queue the `consensus` service
    reads (one process, `-P solo`), every other task to the queue the `worker` service reads."""
    services = load()["services"]
    env = services["web"]["environment"]
    out = django_snippet(
        "from labelstudio_ferv.celery import app; import annotations.tasks, clips.tasks\n"
        "print(app.conf.task_default_queue)\n"
        "for n in sorted(app.tasks):\n"
        "    if not n.startswith('celery.'): print(n, app.amqp.router.route({}, n)['queue'].name)",
        CELERY_CONSENSUS_QUEUE=env["CELERY_CONSENSUS_QUEUE"],
        CELERY_QUEUE="celery",
    )
    default, routes = out[0], dict(line.split() for line in out[1:] if line)
    consensus = {name for name, queue in routes.items() if queue != default}
    assert consensus == {
        "annotations.update_consensus",
        "annotations.update_consensus_stale",
        "annotations.sweep_consensus",
    }
    assert _queues(services["consensus"]["command"]) == {env["CELERY_CONSENSUS_QUEUE"]}
    assert "-P solo" in services["consensus"]["command"]
    assert _queues(services["worker"]["command"]) == {default}


def test_database_credentials_line_up_between_web_and_postgres():
    services = load()["services"]
    url = services["web"]["environment"]["DATABASE_URL"]
    pg = services["postgres"]["environment"]
    user, rest = url.removeprefix("postgres://").split(":", 1)
    assert user == pg["POSTGRES_USER"]
    assert url.endswith("/" + pg["POSTGRES_DB"])
    assert pg["POSTGRES_PASSWORD"] in rest
    assert (ROOT / "Dockerfile").exists()


def volume_paths(service: dict) -> dict[str, tuple[str, bool]]:
    """Return each named volume's mount point in a service, and whether it is read-only."""
    mounts = {}
    for spec in service.get("volumes", []):
        name, target, *mode = spec.split(":")
        mounts[name] = (target, mode == ["ro"])
    return mounts


def test_only_the_proxy_is_published_and_it_reaches_the_web_service():
    services = load()["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}
    assert services["proxy"]["ports"] == ["${HTTP_PORT:-80}:80", "${HTTPS_PORT:-443}:443"]
    assert services["web"]["expose"] == ["8000"]
    assert "-b 0.0.0.0:8000" in services["web"]["command"]
    proxy_env = services["proxy"]["environment"]
    assert proxy_env["LSF_UPSTREAM"] == "web:8000"
    assert services["proxy"]["depends_on"] == ["web"]


def test_the_proxy_reads_the_media_the_app_writes_read_only_and_where_the_app_points():
    services = load()["services"]
    web_env, proxy_env = services["web"]["environment"], services["proxy"]["environment"]
    app_target, app_ro = volume_paths(services["web"])["media"]
    proxy_target, proxy_ro = volume_paths(services["proxy"])["media"]
    assert not app_ro and proxy_ro
    # The same file in both containers: MEDIA_ROOT under the app's mount, LSF_MEDIA_ROOT under
    # the proxy's.
    relative = Path(web_env["MEDIA_ROOT"]).relative_to(app_target)
    assert Path(proxy_env["LSF_MEDIA_ROOT"]) == Path(proxy_target) / relative
    # The app hands files over with X-Accel-Redirect to the prefix the proxy keeps internal.
    assert web_env["MEDIA_ACCEL_REDIRECT"] == "1"
    prefix = web_env.get("MEDIA_ACCEL_PREFIX", settings.MEDIA_ACCEL_PREFIX)
    assert proxy_env["LSF_ACCEL_PREFIX"] == prefix
    template = (ROOT / "deploy" / "nginx.conf.template").read_text()
    internal = re.search(r"location \$\{LSF_ACCEL_PREFIX\} \{(.*?)\n\s*\}", template, re.S).group(1)
    assert "internal;" in internal and "alias ${LSF_MEDIA_ROOT}/;" in internal


def test_the_proxy_image_is_built_from_the_repository_files():
    proxy = load()["services"]["proxy"]
    dockerfile = (ROOT / proxy["build"]["context"] / proxy["build"]["dockerfile"]).read_text()
    assert "nginx-light" in dockerfile and "openssl" in dockerfile
    for name in ("nginx.conf.template", "proxy-entrypoint.sh"):
        assert f"deploy/{name}" in dockerfile
    entrypoint = (ROOT / "deploy" / "proxy-entrypoint.sh").read_text()
    for variable in proxy["environment"]:
        assert f"${{{variable}" in entrypoint, variable  # every variable set is one it reads
    # TLS: a certificate volume (self-signed on first start), or a real one by configuration.
    assert "${TLS_CERT_DIR:-certs}:/certs" in proxy["volumes"]
    assert "certs" in load()["volumes"]


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                    reason="nginx is installed by scripts/system-deps.sh")  # fmt: skip
def test_the_proxy_config_as_compose_sets_it_passes_nginx_t(tmp_path):
    proxy_env = load()["services"]["proxy"]["environment"]
    env = {
        **os.environ,
        "PATH": os.environ.get("PATH", "") + ":/usr/sbin",
        **{k: str(v) for k, v in proxy_env.items() if "${" not in str(v)},
        # Paths and ports of the container, moved into a temporary folder for this check.
        "NGINX_CONF_DIR": str(tmp_path), "NGINX_RUN_DIR": str(tmp_path / "run"),
        "LSF_TLS_CERT": str(tmp_path / "tls.crt"), "LSF_TLS_KEY": str(tmp_path / "tls.key"),
        "LSF_MEDIA_ROOT": str(tmp_path / "media"), "LSF_UPSTREAM": "127.0.0.1:9",
    }  # fmt: skip
    done = subprocess.run(
        [str(ROOT / "deploy" / "proxy-entrypoint.sh"), "-t"], env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr
    assert (tmp_path / "tls.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    conf = (tmp_path / "nginx.conf").read_text()
    assert "${" not in conf.replace("${UPPER_CASE}", "")
    assert "listen 443 ssl;" in conf and "return 301 https://$host:443$request_uri;" in conf
