"""The floor (../shared/floor/): a bare Django + DRF annotation loop, run beside bench-load.

``make bench-load`` measures this project and the floor in the same run, under the same load:
the floor's own harness (``harness/harness.py``: 30 loops, next then answer, a fresh connection
per request, no think time) drives first this project (``harness/ours_adapter.py``), then the
floor on a fresh database of the same number of clips. Nothing of the floor is copied here: it
is laid out from ``../shared/floor`` (beside the checkout) by its own ``install.sh``.

CPU is counted the same way for both: the web server's process group, the consensus worker's
(this project only) and the PostgreSQL backends connected to the benchmark's own databases
(the machine's PostgreSQL serves others too; their sessions are not counted). ``CpuMeter``
samples every process's CPU ticks a few times a second, so a backend that ends mid-run (a
connection past its CONN_MAX_AGE) still counts up to its last sample.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from common import ROOT

SHARED_FLOOR = ROOT.parent / "shared" / "floor"


def _stat(pid: str) -> tuple[int, int] | None:
    """Return a process's (process group, CPU ticks), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[2]), int(fields[11]) + int(fields[12])


class CpuMeter(threading.Thread):
    """CPU seconds used by named process groups and by the PostgreSQL sessions of named
    databases, summed over every process seen since the meter started."""

    def __init__(self, interval: float = 0.25):
        super().__init__(daemon=True)
        self.interval = interval
        self.groups: dict[int, str] = {}
        self.databases: dict[str, str] = {}
        self.first: dict[int, int] = {}  # pid -> ticks at first sight (0 when born since)
        self.last: dict[int, tuple[str, int]] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")
        self.started_at = None

    def watch_group(self, name: str, pgrp: int) -> None:
        with self.lock:
            self.groups[pgrp] = name

    def watch_database(self, name: str, database: str) -> None:
        with self.lock:
            self.databases[database] = name

    def _sample(self, initial: bool = False) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            got = _stat(entry.name)
            if got is None:
                continue
            pgrp, ticks = got
            pid = int(entry.name)
            name = self.groups.get(pgrp)
            if name is None and self.databases:
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if cmd.startswith(b"postgres: "):
                    words = cmd.decode(errors="replace").split()
                    # "postgres: 15/main: USER DATABASE HOST(PORT) STATE"
                    if len(words) > 3:
                        name = self.databases.get(words[3])
            with self.lock:
                if pid not in self.first:
                    self.first[pid] = ticks if initial else 0
                if name is not None:
                    self.last[pid] = (name, ticks)

    def run(self) -> None:
        self._sample(initial=True)
        while not self.done.wait(self.interval):
            self._sample()

    def seconds(self) -> Counter:
        """CPU seconds per name since the meter started (sampled a moment ago)."""
        self._sample()
        used: Counter = Counter()
        with self.lock:
            for pid, (name, ticks) in self.last.items():
                used[name] += (ticks - self.first.get(pid, 0)) / self.tick
        return used

    def stop(self) -> None:
        self.done.set()


def floor_dir() -> Path:
    """Return the floor's laid-out folder (BENCH_FLOOR_DIR, else var/bench-floor), laying it
    out with ../shared/floor/install.sh the first time."""
    target = Path(os.environ.get("BENCH_FLOOR_DIR", str(ROOT / "var" / "bench-floor")))
    if not (target / "floor" / "venv" / "bin" / "python").exists():
        if not (SHARED_FLOOR / "install.sh").exists():
            raise RuntimeError(f"the floor is not beside the checkout: {SHARED_FLOOR}")
        print(f"laying the floor out in {target} ...", flush=True)
        subprocess.run([str(SHARED_FLOOR / "install.sh"), str(target)], check=True)
    return target


def run_harness(
    *, where: Path, adapter: str, state: Path, seconds: float, concurrency: int, out: Path
) -> dict:
    """Run the floor's harness (its own venv) and return its JSON result."""
    python = where / "floor" / "venv" / "bin" / "python"
    env = {**os.environ, "PYTHONPATH": f"{where / 'harness'}:{where / 'floor'}"}
    cmd = [
        str(python), str(where / "harness" / "harness.py"), "--adapter", adapter,
        "--state", str(state), "-c", str(concurrency), "-d", str(seconds), "--out", str(out),
    ]  # fmt: skip
    log = out.with_suffix(".log")
    subprocess.run(cmd, cwd=where / "floor", env=env, check=True, stdout=log.open("wb"),
                   stderr=subprocess.STDOUT)  # fmt: skip
    return json.loads(out.read_text())


def harness_state(
    *, path: Path, port: int, campaign_id: int, tokens: list[str], database: str
) -> Path:
    """Write the harness's state file for this project (harness/ours_adapter.py)."""
    path.write_text(
        json.dumps(
            {
                "base": f"http://127.0.0.1:{port}",
                "project_id": campaign_id,
                "users": [{"email": f"u{i}", "token": t} for i, t in enumerate(tokens)],
                "db": {"dbname": database, "user": "postgres", "host": "127.0.0.1", "port": 5432},
            }
        )
    )
    return path


def run_floor(
    *, clips: int, seconds: float, concurrency: int, port: int, database: str, work: Path
) -> dict:
    """Seed the floor with ``clips`` clips in its own database, serve it as its README says
    (gunicorn sync x4, persistent connections) and drive it with the harness; return the
    figures."""
    where = floor_dir()
    floor = where / "floor"
    python = str(floor / "venv" / "bin" / "python")
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "floorsite.settings", "FLOOR_DB_NAME": database,
        "FLOOR_DB_USER": "postgres", "FLOOR_DB_PASSWORD": "", "FLOOR_CONN_MAX_AGE": "60",
    }  # fmt: skip
    for key in ("DATABASE_URL", "PYTHONPATH"):
        env.pop(key, None)
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{database}"')
    conn.close()
    state = work / "floor_state.json"
    quiet = {"cwd": floor, "env": env, "check": True, "stdout": subprocess.DEVNULL}
    subprocess.run([python, "manage.py", "migrate", "-v0"], **quiet)
    subprocess.run(
        [python, "manage.py", "seed", "--clips", str(clips), "--users", str(concurrency),
         "--state", str(state), "--base", f"http://127.0.0.1:{port}"], **quiet,
    )  # fmt: skip
    # As for this project's campaign (annotate_load.seed): autovacuum is off on the bench VM,
    # and the floor's seed replaces the rows of the run before.
    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=database)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    conn.close()
    # start_server.sh's "sync4" on our own port (its script has a fixed one).
    server = subprocess.Popen(
        [str(floor / "venv" / "bin" / "gunicorn"), "floorsite.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "-k", "sync", "-w", "4", "--log-level", "warning"],
        cwd=floor, env=env, stdout=(work / "floor_gunicorn.log").open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    meter = CpuMeter()
    try:
        _wait_http(port, "/health/", server)
        meter.watch_group("web", server.pid)
        meter.watch_database("postgres", database)
        meter.start()
        time.sleep(1.0)
        before = meter.seconds()
        result = run_harness(
            where=where, adapter="floor_adapter:FloorAdapter", state=state, seconds=seconds,
            concurrency=concurrency, out=work / "floor_load.json",
        )  # fmt: skip
        used = meter.seconds()
        used.subtract(before)
    finally:
        meter.stop()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return summarise(result, used)


def summarise(result: dict, used: Counter) -> dict:
    """The harness's figures with the CPU per loop of each part."""
    loops = max(result.get("completed_loops") or 0, 1)
    verify = result.get("verify", {})
    return {
        "loops_per_s": result.get("loops_per_s"),
        "loops": result.get("completed_loops"),
        "errors": result.get("errors"),
        "p50_loop_ms": result.get("loop", {}).get("p50_ms"),
        "p99_loop_ms": result.get("loop", {}).get("p99_ms"),
        "p99_next_ms": result.get("next", {}).get("p99_ms"),
        "p99_answer_ms": result.get("submit", {}).get("p99_ms"),
        "cpu_s_per_loop": round(sum(used.values()) / loops, 5),
        "cpu_ms_per_loop": {k: round(1000 * v / loops, 2) for k, v in sorted(used.items())},
        "duplicate_votes": verify.get("dup_user_task_pairs"),
        "clips_over_max": verify.get("tasks_over_max"),
    }


def _wait_http(port: int, path: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
        if proc.poll() is not None:
            break
    sys.exit(f"server on port {port} did not start")
