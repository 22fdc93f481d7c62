"""Shared fixtures: named actors, API clients and a real Celery worker."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.models import Role
from tests.factories import CampaignFactory, MembershipFactory, UserFactory
from tests.processes import RedisProcess, free_port  # noqa: F401 (tests import them from here)

ROOT = Path(__file__).resolve().parent.parent
# Variables settings.py reads: subprocess tests start from an environment without them.
APP_VARIABLES = (
    "DATABASE_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", "SECRET_KEY", "DJANGO_DEBUG",
    "DJANGO_HTTPS", "STATIC_MANIFEST", "ALLOWED_HOSTS", "LSF_DATA_DIR", "MEDIA_ROOT",
    "DJANGO_SETTINGS_MODULE", "CELERY_QUEUE",
)  # fmt: skip


def environment_without_app_settings() -> dict[str, str]:
    """Return this process's environment less every variable the app's settings read."""
    return {k: v for k, v in os.environ.items() if k not in APP_VARIABLES}


def pytest_collection_modifyitems(config, items):
    """Skip the tests that need PostgreSQL when the suite runs on SQLite (the embedded default).

    A worker process cannot see the in-memory test database, so ``worker`` tests need it too.
    """
    from django.conf import settings

    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL; this run is on SQLite")
    for item in items:
        if item.get_closest_marker("postgres") or item.get_closest_marker("worker"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _forget_failed_logins(settings):
    """Start each test with no failed login counted (in-process cache only: never flush Redis)."""
    from django.core.cache import cache

    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        cache.clear()


@pytest.fixture
def campaign(db):
    return CampaignFactory(name="Scenes of daily life")


def _member(campaign, username: str, role: str):
    user = UserFactory(username=username)
    MembershipFactory(campaign=campaign, user=user, role=role)
    return user


@pytest.fixture
def alice(campaign):
    """An annotator in ``campaign``."""
    return _member(campaign, "alice", Role.ANNOTATOR)


@pytest.fixture
def bob(campaign):
    """A second annotator in ``campaign``."""
    return _member(campaign, "bob", Role.ANNOTATOR)


@pytest.fixture
def rita(campaign):
    """A reviewer in ``campaign``."""
    return _member(campaign, "rita", Role.REVIEWER)


@pytest.fixture
def adam(campaign):
    """An admin of ``campaign``."""
    return _member(campaign, "adam", Role.ADMIN)


@pytest.fixture
def stranger(db):
    """A user with no role in any campaign."""
    return UserFactory(username="stranger")


@pytest.fixture
def api():
    """Return a function that builds an API client authenticated by token as a user."""

    def client_for(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return client_for


def _worker_env() -> dict[str, str]:
    """Return the environment a worker needs to reach this test run's database and queue."""
    env = dict(os.environ)
    settings_dict = connection.settings_dict
    env["DATABASE_URL"] = (
        f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}"
        f"/{settings_dict['NAME']}"
    )
    env["CELERY_TASK_ALWAYS_EAGER"] = "0"
    return env


class WorkerProcess:
    """A real ``celery worker`` subprocess bound to this run's queue and test database."""

    def __init__(self, concurrency: int = 1, args: tuple[str, ...] = (), **env: str):
        self.concurrency = concurrency
        self.args = args
        self.extra_env = env
        self.proc: subprocess.Popen | None = None
        self.log = Path(os.environ.get("LSF_DATA_DIR", "/tmp")) / f"worker-{time.time_ns()}.log"

    def start(self) -> WorkerProcess:
        cmd = [
            sys.executable, "-m", "celery", "-A", "labelstudio_ferv", "worker",
            "-l", "info", "-P", "prefork", "-c", str(self.concurrency),
            "--without-mingle", "--without-gossip", "--without-heartbeat",
            "-Q", os.environ.get("CELERY_QUEUE", "celery"), "-n", f"test-{time.time_ns()}@%h",
            *self.args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**_worker_env(), **self.extra_env}, stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if b"ready." in self.log.read_bytes():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"celery worker did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole worker process group (main process and its pool children)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def ensure_hierarchy() -> None:
    """Re-seed scenarios and scenes after a transactional test's flush emptied them."""
    from django.apps import apps

    from clips.models import Scene

    if not Scene.objects.exists():
        seed = importlib.import_module("clips.migrations.0002_seed_scenes")
        seed.seed(apps, None)


@pytest.fixture
def live_db(transactional_db):
    """A committed-data database (other processes see it), with the scene hierarchy present."""
    ensure_hierarchy()


@pytest.fixture
def real_broker(live_db):
    """Send tasks to Redis instead of running them in-process; start workers with WorkerProcess."""
    from labelstudio_ferv.celery import app
    from labelstudio_ferv.queue import reset_breaker

    app.conf.task_always_eager = False
    reset_breaker()  # a broker outage of an earlier test does not silence this one's messages
    try:
        yield app
    finally:
        app.conf.task_always_eager = True
        reset_breaker()


@pytest.fixture
def celery_worker(real_broker):
    """A real worker process taking this run's tasks from Redis, against the test database."""
    worker = WorkerProcess().start()
    try:
        yield worker
    finally:
        worker.stop()


class ServerProcess:
    """The app under gunicorn on loopback, against the test database; it can be stopped and
    started again on the same port (for tests of what browsers and clients do meanwhile)."""

    def __init__(self, port: int | None = None, workers: int = 2, **env: str):
        self.port = port or free_port()
        self.workers = workers
        self.extra_env = env
        self.proc: subprocess.Popen | None = None
        self.log = Path(os.environ.get("LSF_DATA_DIR", "/tmp")) / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        env = {**_worker_env(), "ALLOWED_HOSTS": "127.0.0.1,localhost", **self.extra_env}
        cmd = [
            sys.executable, "-m", "gunicorn", "labelstudio_ferv.wsgi", "-b",
            f"127.0.0.1:{self.port}", "-w", str(self.workers), "--threads", "4",
            "-k", "gthread", "--graceful-timeout", "2",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/api/v1/health/", timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"server did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


@pytest.fixture
def fast_password_hasher(settings):
    """Hash passwords with a cheap hasher: tests that create many accounts stay fast."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
