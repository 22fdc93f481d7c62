"""Shared set-up for benchmarks: a dedicated PostgreSQL database, Django, worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelstudio_ferv.settings")


def ensure_database() -> None:
    """Create the database DATABASE_URL names when it does not exist yet."""
    import psycopg2

    url = urlparse(os.environ["DATABASE_URL"])
    name = url.path.lstrip("/")
    conn = psycopg2.connect(
        host=url.hostname, port=url.port or 5432, user=url.username or "postgres",
        password=url.password, dbname="postgres",
    )  # fmt: skip
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def setup_django(*, migrate: bool = True) -> None:
    """Create and migrate the benchmark database, then set Django up in this process."""
    ensure_database()
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def rss_mb(pid: int, peak: bool = True) -> float:
    """Return a process's peak (VmHWM) or current (VmRSS) resident memory in MiB."""
    key = "VmHWM:" if peak else "VmRSS:"
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """Return the direct child processes of ``pid``."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text().split()
        found += [int(p) for p in text]
    return found


class Worker:
    """A ``celery worker`` subprocess for the benchmark's queue."""

    def __init__(
        self, concurrency: int, log: Path, extra: list[str] | None = None, pool: str = "prefork"
    ):
        # pool "solo": one process running the tasks itself (docker-compose's consensus worker).
        self.name = f"bench-{time.time_ns()}@{socket.gethostname()}"
        cmd = [
            sys.executable, "-m", "celery", "-A", "labelstudio_ferv", "worker",
            "-l", os.environ.get("BENCH_WORKER_LOGLEVEL", "warning"),
            "-P", pool, "-c", str(concurrency), "--without-mingle", "--without-gossip",
            "-Q", os.environ.get("CELERY_QUEUE", "celery"), "-n", self.name,
            *(extra or []),
        ]  # fmt: skip
        self.pool = pool
        env = {**os.environ, "CELERY_TASK_ALWAYS_EAGER": "0"}
        self.log = log
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.concurrency = concurrency

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        if self.pool == "solo":
            from celery import Celery

            control = Celery(broker=os.environ["CELERY_BROKER_URL"]).control
            while time.monotonic() < deadline and self.proc.poll() is None:
                if control.ping(destination=[self.name], timeout=0.5):
                    return
            raise RuntimeError(f"worker did not start: {self.log.read_text()[-2000:]}")
        while time.monotonic() < deadline:
            if len(children(self.proc.pid)) >= self.concurrency:
                time.sleep(1.0)  # let the pool children finish importing the app
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"worker did not start: {self.log.read_text()[-2000:]}")

    def peak_rss_mb(self) -> float:
        """Return the largest peak resident memory among the worker's processes."""
        pids = [self.proc.pid, *children(self.proc.pid)]
        return max(rss_mb(pid) for pid in pids)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
