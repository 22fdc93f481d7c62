"""The scripts behind `make run`, `make worker` and `make services`, run as a newcomer runs them."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import dj_database_url
import psycopg2
import pytest

from tests.conftest import environment_without_app_settings, free_port

ROOT = Path(__file__).resolve().parent.parent


def server_url() -> str:
    """The test database's URL with the database name left out (the server to talk to)."""
    return os.environ["DATABASE_URL"].rsplit("/", 1)[0]


def admin_connection():
    config = dj_database_url.parse(server_url() + "/postgres")
    connection = psycopg2.connect(
        dbname="postgres", user=config["USER"] or None, password=config["PASSWORD"] or None,
        host=config["HOST"] or None, port=config["PORT"] or None,
    )  # fmt: skip
    connection.autocommit = True
    return connection


def database_exists(name: str) -> bool:
    with admin_connection() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None


def drop_database(name: str) -> None:
    connection = admin_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        connection.close()


@pytest.fixture
def fresh_database_name():
    name = f"lsf_script_{uuid.uuid4().hex[:10]}"
    yield name
    drop_database(name)


def get(url: str) -> tuple[int, dict, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


class RunScript:
    """`scripts/run.sh` in its own process group, stopped at the end."""

    def __init__(self, tmp_path: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "run.log"
        clean = environment_without_app_settings()
        clean.update({"PORT": str(self.port), **env})
        self.proc = subprocess.Popen(
            ["scripts/run.sh"], cwd=ROOT, env=clean, stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if get(self.url + "/login/")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError("make run did not serve:\n" + self.log.read_text()[-4000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def test_make_worker_refuses_to_start_without_a_broker():
    env = environment_without_app_settings()
    env.pop("TEST_CELERY_BROKER_URL", None)
    result = subprocess.run(
        ["scripts/worker.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "CELERY_BROKER_URL" in result.stderr


def test_services_creates_the_database_that_test_database_url_names(fresh_database_name):
    env = environment_without_app_settings()
    env["TEST_DATABASE_URL"] = f"{server_url()}/{fresh_database_name}"
    assert not database_exists(fresh_database_name)
    result = subprocess.run(
        ["scripts/services.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert database_exists(fresh_database_name)
    again = subprocess.run(
        ["scripts/services.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stdout + again.stderr


def test_make_run_with_a_database_url_creates_it_and_serves_with_debug_off(
    tmp_path, fresh_database_name
):
    data = tmp_path / "services"
    run = RunScript(
        tmp_path, DATABASE_URL=f"{server_url()}/{fresh_database_name}", LSF_DATA_DIR=str(data)
    )
    try:
        run.wait_until_serving()
        assert database_exists(fresh_database_name)
        status, headers, body = get(run.url + "/no-such-page/")
        assert status == 404
        assert "<code>DEBUG = True</code>" not in body  # no debug page in the production shape
        assert "gunicorn" in headers.get("Server", "")
        # A secret of its own, readable by its owner only, kept for the next run.
        secret = data / "secret-key"
        assert len(secret.read_text().strip()) >= 50
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert (data / "media").is_dir()
        assert get(run.url + "/static/frontend/app.css")[0] == 200
    finally:
        run.stop()


def test_make_run_without_a_database_url_is_the_embedded_development_server(tmp_path):
    data = tmp_path / "embedded"
    run = RunScript(tmp_path, LSF_DATA_DIR=str(data))
    try:
        run.wait_until_serving()
        status, headers, body = get(run.url + "/no-such-page/")
        assert status == 404
        assert "<code>DEBUG = True</code>" in body  # the development server's debug page
        assert "gunicorn" not in headers.get("Server", "")
        assert (data / "db.sqlite3").exists()
        assert not (data / "secret-key").exists()
    finally:
        run.stop()
