"""Chaos run (make chaos): annotators answer through the API while faults hit the real processes.

Starts its own redis-server, gunicorn (2 workers) and a Celery worker with beat on PostgreSQL
(CHAOS_DATABASE_URL, default database lsf_chaos), with the media folder on a small tmpfs when
this runs as root. A driver of --annotators threads loops next/answer and records every
acknowledged vote (a 2xx answer). One after another it injects:

* broker_down: redis-server stopped for --fault-seconds, then started again on its port;
* broker_frozen: redis-server stopped with SIGSTOP for --fault-seconds;
* worker_killed: clips uploaded, the Celery worker SIGKILLed mid-transcode, a new one started;
* web_worker_killed: a gunicorn worker SIGKILLed while it answers;
* database_connections: every session of the app terminated (pg_terminate_backend), and one
  backend frozen with SIGSTOP for a few seconds;
* media_disk_full: the media tmpfs filled: an upload must answer 507, a transcode must wait for
  room, both finish once room is made.

After each fault it measures how long until nothing is stuck: every clip ready or failed, no
vote older than the fault's end left out of its clip's consensus. At the end it checks every
acknowledged vote is stored once, with its label, and counted in its clip's consensus.
The last line is JSON: faults, acknowledged, lost, duplicated, server_errors (5xx other than a
deliberate 507, outside the instant of the database fault), max_stuck_s, and details.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from common import ROOT, children, setup_django

from tests.processes import RedisProcess, free_port

KEYS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise", "pass"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------- processes


class Process:
    """A process group started with the run's environment, its log in the run's folder."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.cmd, self.env = name, cmd, env
        self.log = logs / f"{name}-{time.time_ns()}.log"
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class Supervised:
    """A process restarted whenever it exits, as ``restart: unless-stopped`` does in
    docker-compose.yml (a Celery worker exits when it loses its broker at a bad moment)."""

    def __init__(self, start) -> None:
        self.start = start
        self.current: Process = start()
        self.restarts = 0
        self.stopping = threading.Event()
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()

    def _watch(self) -> None:
        while not self.stopping.wait(0.5):
            if self.current.proc.poll() is not None:
                log(f"{self.current.name} exited ({self.current.proc.returncode}): restarting")
                with contextlib.suppress(Exception):
                    self.current = self.start()
                    self.restarts += 1

    def kill(self) -> None:
        self.current.kill()  # the watcher starts the next one

    def stop(self) -> None:
        self.stopping.set()
        self.watcher.join(timeout=5)
        self.current.stop()


def start_worker(env: dict[str, str], logs: Path) -> Process:
    cmd = [
        sys.executable, "-m", "celery", "-A", "labelstudio_ferv", "worker", "-l", "info",
        "-P", "prefork", "-c", "2", "--without-mingle", "--without-gossip",
        "-Q", env["CELERY_QUEUE"], "-n", f"chaos-{time.time_ns()}@%h",
    ]  # fmt: skip
    worker = Process("worker", cmd, env, logs)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if b"ready." in worker.log.read_bytes():
            return worker
        if worker.proc.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"worker did not start: {worker.log.read_text()[-2000:]}")


def start_beat(env: dict[str, str], logs: Path) -> Process:
    cmd = [
        sys.executable, "-m", "celery", "-A", "labelstudio_ferv", "beat", "-l", "info",
        "--schedule", str(logs / "beat-schedule"),
    ]  # fmt: skip
    return Process("beat", cmd, env, logs)


def start_server(env: dict[str, str], logs: Path, port: int) -> Process:
    cmd = [
        sys.executable, "-m", "gunicorn", "labelstudio_ferv.wsgi:application",
        "-b", f"127.0.0.1:{port}", "-k", "gthread", "-w", "2", "--threads", "4",
        "--graceful-timeout", "5", "--timeout", "60", "--log-level", "warning",
    ]  # fmt: skip
    server = Process("gunicorn", cmd, {**env, "ALLOWED_HOSTS": "127.0.0.1"}, logs)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/health/")
            if conn.getresponse().status == 200:
                return server
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not start: {server.log.read_text()[-2000:]}")


# --------------------------------------------------------------------------------- the driver


class Record:
    """What the clients saw: acknowledged votes, server errors, dropped connections."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: dict[int, tuple[int, str]] = {}  # assignment id -> (clip id, label)
        self.server_errors: list[tuple[float, int, str]] = []
        self.dropped = 0
        self.requests = 0

    def error(self, status: int, path: str) -> None:
        with self.lock:
            self.server_errors.append((time.monotonic(), status, path))


class Client:
    def __init__(self, port: int, token: str, record: Record) -> None:
        self.port, self.record = port, record
        self.headers = {"Authorization": f"Token {token}", "Host": "127.0.0.1"}
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes = b"", content_type: str = ""):
        """Return (status, json body) or (None, None) when the connection failed."""
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.conn.request(method, path, body, headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None
            with self.record.lock:
                self.record.dropped += 1
            return None, None
        with self.record.lock:
            self.record.requests += 1
        if response.status >= 500 and response.status != 507:
            self.record.error(response.status, path)
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, None


def annotate(client: Client, campaign_id: int, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        status, offer = client.request("POST", f"/api/v1/campaigns/{campaign_id}/next/")
        if status != 200 or not offer or not offer.get("assignment"):
            time.sleep(0.5 if status in (None, 204) or (status or 0) >= 500 else 0.2)
            continue
        assignment, clip = offer["assignment"]["id"], offer["clip"]["id"]
        label = rng.choice(KEYS[:7]) if rng.random() < 0.3 else KEYS[clip % 7]
        body = json.dumps({"label": label}).encode()
        status, _ = client.request(
            "POST", f"/api/v1/assignments/{assignment}/answer/", body, "application/json"
        )
        if status is not None and 200 <= status < 300:
            with client.record.lock:
                client.record.acked[assignment] = (clip, label)
        time.sleep(rng.uniform(0.05, 0.2))


def multipart(files: list[tuple[str, bytes]], fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        )
    body = "".join(parts).encode()
    for filename, data in files:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{filename}"\r\nContent-Type: video/mp4\r\n\r\n'
        ).encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


# --------------------------------------------------------------------------------- the run


class Chaos:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="lsf-chaos-"))
        self.logs = self.work / "logs"
        self.logs.mkdir()
        self.disk = self.work / "media"
        self.disk.mkdir()
        self.mounted = (
            os.geteuid() == 0
            and subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={args.disk_mb}m", "tmpfs", str(self.disk)],
                capture_output=True,
                check=False,
            ).returncode  # fmt: skip
            == 0
        )
        self.redis = RedisProcess()
        self.record = Record()
        self.faults: list[dict] = []
        self.uploaded: list[int] = []
        self.stop = threading.Event()

    # ----------------------------------------------------------------- set-up

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "CELERY_BROKER_URL": self.redis.url,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "CELERY_QUEUE": f"chaos-{os.getpid()}",
            "LSF_DATA_DIR": str(self.work),
            "MEDIA_ROOT": str(self.disk / "files"),
            "LSF_WORK_DIR": str(self.disk / "work"),
            "LOG_LEVEL": "WARNING",
        }

    def seed(self) -> tuple[int, list[str], str]:
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from rest_framework.authtoken.models import Token

        from annotations.models import Campaign, Membership, Role, Task
        from clips.models import Clip, MediaStatus, Scene

        scene = Scene.objects.order_by("pk").first()
        run = time.time_ns()
        campaign = Campaign.objects.create(
            name=f"chaos-{run}", votes_per_clip=3, max_votes=5, gold_share=0.0
        )
        clips = Clip.objects.bulk_create(
            [
                Clip(
                    scene=scene, name=f"chaos/{run}/{k}", checksum=f"ch{run:020d}{k:042d}",
                    status=MediaStatus.READY, video=f"clips/chaos-{k}.mp4",
                    poster=f"posters/chaos-{k}.jpg", duration_s=1.1, fps=25.0, frame_count=28,
                    width=224, height=224,
                )
                for k in range(self.args.clips)
            ]
        )  # fmt: skip
        Task.objects.bulk_create(
            [Task(campaign=campaign, clip=clip, votes_needed=3) for clip in clips]
        )
        tokens_file = self.work / "tokens.json"
        call_command(
            "create_annotators", str(campaign.pk), "--count", str(self.args.annotators),
            "--prefix", f"chaos{run % 100000}-", "--output", str(tokens_file), verbosity=0,
        )  # fmt: skip
        tokens = [row["token"] for row in json.loads(tokens_file.read_text())]
        admin = get_user_model().objects.create_user(username=f"chaos-admin-{run}")
        Membership.objects.create(campaign=campaign, user=admin, role=Role.ADMIN)
        return campaign.pk, tokens, Token.objects.create(user=admin).key

    def run(self) -> dict:
        self.redis.start()
        env = self.environment()
        os.environ.update({k: env[k] for k in ("CELERY_BROKER_URL", "MEDIA_ROOT", "LSF_WORK_DIR")})
        setup_django()
        from clips import synthetic

        self.campaign_id, tokens, admin_token = self.seed()
        self.videos = [
            synthetic.make_test_video(
                self.work / f"clip-{k}.mp4", seconds=self.args.clip_seconds, size=(640, 480)
            ).read_bytes()
            for k in range(3)
        ]
        port = free_port()
        self.server = start_server(env, self.logs, port)
        self.worker = Supervised(lambda: start_worker(env, self.logs))
        self.beat = Supervised(lambda: start_beat(env, self.logs))
        self.env, self.port = env, port
        self.admin = Client(port, admin_token, self.record)
        threads = [
            threading.Thread(
                target=annotate,
                args=(Client(port, token, self.record), self.campaign_id, self.stop, i),
                daemon=True,
            )
            for i, token in enumerate(tokens)
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(5)
            for fault in (
                self.broker_down,
                self.broker_frozen,
                self.worker_killed,
                self.web_worker_killed,
                self.database_connections,
                self.media_disk_full,
            ):
                fault()
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=40)
        settled = self.wait_unstuck("end", time.monotonic())
        result = self.check()
        result["settle_s"] = settled
        result["restarts"] = {"worker": self.worker.restarts, "beat": self.beat.restarts}
        return result

    def close(self) -> None:
        for name in ("beat", "worker", "server"):
            with contextlib.suppress(Exception):
                getattr(self, name).stop()
        self.redis.stop()
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.disk)], check=False)
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    # ----------------------------------------------------------------- faults

    def fault(self, name: str, started: float, ended: float, **extra) -> None:
        stuck = self.wait_unstuck(name, ended)
        errors = [e for e in self.record.server_errors if started - 1 <= e[0] <= ended + 1]
        entry = {
            "name": name,
            "seconds": round(ended - started, 1),
            "stuck_s": stuck,
            "server_errors": len(errors),
            **extra,
        }
        self.faults.append(entry)
        log(f"fault {name}: {entry}")

    def broker_down(self) -> None:
        started = time.monotonic()
        self.redis.stop()
        time.sleep(self.args.fault_seconds)
        self.redis.start()
        self.fault("broker_down", started, time.monotonic())

    def broker_frozen(self) -> None:
        started = time.monotonic()
        self.redis.proc.send_signal(signal.SIGSTOP)
        time.sleep(self.args.fault_seconds)
        self.redis.proc.send_signal(signal.SIGCONT)
        self.fault("broker_frozen", started, time.monotonic())

    def upload(self, data: bytes, name: str) -> tuple[int | None, dict | None]:
        body, content_type = multipart([(name, data)], {"scene": "Terror"})
        self.admin.conn = None  # the admin was idle: its kept-alive connection may be gone
        return self.admin.request(
            "POST", f"/api/v1/campaigns/{self.campaign_id}/clips/", body, content_type
        )

    def fresh_video(self, k: int) -> bytes:
        """A clip's bytes made unique (a different checksum) by a trailing comment box."""
        return self.videos[k % len(self.videos)] + (
            (16).to_bytes(4, "big") + b"free" + uuid.uuid4().bytes[:8]
        )

    def _accepted(self, body: dict | None) -> list[int]:
        return [r["clip_id"] for r in (body or {}).get("results", []) if r.get("clip_id")]

    def worker_killed(self) -> None:
        from clips.models import Clip, MediaStatus

        started = time.monotonic()
        for k in range(3):
            status, body = self.upload(self.fresh_video(k), f"kill-{k}.mp4")
            self.uploaded += self._accepted(body)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if Clip.objects.filter(pk__in=self.uploaded, status=MediaStatus.PROCESSING).exists():
                break
            time.sleep(0.2)
        time.sleep(0.5)
        in_flight = Clip.objects.filter(pk__in=self.uploaded, status=MediaStatus.PROCESSING).count()
        self.worker.kill()  # restarted by its supervisor, as in production
        self.fault("worker_killed", started, time.monotonic(), clips_in_flight=in_flight)

    def web_worker_killed(self) -> None:
        started = time.monotonic()
        killed = 0
        for _ in range(2):
            pids = children(self.server.proc.pid)
            if pids:
                os.kill(random.choice(pids), signal.SIGKILL)
                killed += 1
            time.sleep(3)
        self.fault("web_worker_killed", started, time.monotonic(), killed=killed)

    def database_connections(self) -> None:
        from django.db import connection

        started = time.monotonic()
        name = connection.settings_dict["NAME"]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            pids = [row[0] for row in cursor.fetchall()]
        frozen = None
        for pid in pids:  # one backend frozen for a few seconds (root only: same host)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
                frozen = pid
                break
        time.sleep(self.args.fault_seconds / 4)
        if frozen:
            os.kill(frozen, signal.SIGCONT)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            terminated = cursor.fetchone()[0]
        ended = time.monotonic()
        # The instant of the fault: requests whose connection was cut may answer 500 once.
        self.db_window = (started - 1, ended + 2)
        self.fault("database_connections", started, ended, terminated=terminated)

    def media_disk_full(self) -> None:
        from clips.models import Clip, MediaStatus

        if not self.mounted:
            self.faults.append({"name": "media_disk_full", "skipped": "needs root for tmpfs"})
            return
        started = time.monotonic()
        data = self.fresh_video(0)
        # Room for the original only: its transcode meets the full disk.
        filler = self.fill(leave=len(data) + 65536)
        first, body = self.upload(data, "full-transcode.mp4")
        waiting = self._accepted(body)
        self.uploaded += waiting
        deadline = time.monotonic() + 30
        while waiting and time.monotonic() < deadline:
            if Clip.objects.filter(pk__in=waiting, status=MediaStatus.PENDING).exclude(error=""):
                break
            time.sleep(0.5)
        transcode_waited = bool(
            waiting
            and Clip.objects.filter(pk__in=waiting, status=MediaStatus.PENDING)
            .exclude(error="")
            .exists()
        )
        self.fill(leave=0)
        refused, _ = self.upload(self.fresh_video(1), "full-upload.mp4")
        filler.unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.disk / "filler2").unlink()
        status, body = self.upload(self.fresh_video(2), "after-full.mp4")
        self.uploaded += self._accepted(body)
        self.fault(
            "media_disk_full",
            started,
            time.monotonic(),
            upload_status=refused,
            first_upload_status=first,
            transcode_waited=transcode_waited,
        )

    def fill(self, *, leave: int) -> Path:
        filler = self.disk / ("filler" if leave else "filler2")
        with filler.open("ab") as handle, contextlib.suppress(OSError):
            while True:
                stat = os.statvfs(self.disk)
                free = stat.f_bavail * stat.f_frsize - leave
                if free <= 0:
                    break
                handle.write(b"\0" * min(free, 1 << 16))
                handle.flush()
        return self.disk / "filler"

    # ----------------------------------------------------------------- checks

    def wait_unstuck(self, name: str, ended: float) -> float:
        """Seconds from ``ended`` until every clip is ready or failed and every vote cast
        before it is counted in its clip's consensus (capped at --stuck-limit)."""
        from django.db import close_old_connections

        from annotations.models import Task
        from clips.models import Clip, MediaStatus
        from labelstudio_ferv.leases import db_now

        limit = self.args.stuck_limit
        since = None
        while time.monotonic() - ended < limit:
            try:
                close_old_connections()
                if since is None:
                    since = db_now()
                busy = Clip.objects.filter(
                    pk__in=self.uploaded, status__in=(MediaStatus.PENDING, MediaStatus.PROCESSING)
                ).exists()
                stale = Task.objects.filter(
                    campaign_id=self.campaign_id, consensus_stale=True, updated_at__lt=since
                ).exists()
                if not busy and not stale:
                    return round(max(0.0, time.monotonic() - ended), 1)
            except Exception as exc:  # the database fault cuts this process's session too
                log(f"{name}: checking: {exc}")
                from django.db import connection

                connection.close()
            time.sleep(0.5)
        return float(limit)

    def check(self) -> dict:
        from django.db import close_old_connections
        from django.db.models import Count

        from annotations.models import Task, Vote
        from clips.models import Clip
        from labelstudio_ferv.expressions import Answer

        close_old_connections()
        acked = dict(self.record.acked)
        votes = {
            v.assignment_id: v
            for v in Vote.objects.filter(campaign_id=self.campaign_id).select_related(None)
        }
        lost = [a for a in acked if a not in votes]
        wrong = [a for a, (_, label) in acked.items() if a in votes and
                 Answer(votes[a].answer).key != label]  # fmt: skip
        duplicated = (
            Vote.objects.filter(campaign_id=self.campaign_id)
            .values("task_id", "annotator_id")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .count()
        )
        uncounted = 0
        for task in Task.objects.filter(campaign_id=self.campaign_id).annotate(
            n=Count("votes", distinct=True)
        ):
            valid = sum(task.counts)
            if task.consensus_stale or task.vote_count != task.n or valid != task.n:
                uncounted += 1
        window = getattr(self, "db_window", (0, 0))
        outside = [e for e in self.record.server_errors if not window[0] <= e[0] <= window[1]]
        stuck_clips = Clip.objects.filter(
            pk__in=self.uploaded, status__in=("pending", "processing")
        ).count()
        failed_clips = list(
            Clip.objects.filter(pk__in=self.uploaded, status="failed").values_list(
                "error", flat=True
            )
        )
        return {
            "faults": self.faults,
            "acknowledged": len(acked),
            "lost": len(lost),
            "duplicated": duplicated,
            "wrong_label": len(wrong),
            "uncounted_in_consensus": uncounted,
            "server_errors": len(outside),
            "server_errors_db_fault": len(self.record.server_errors) - len(outside),
            "dropped_connections": self.record.dropped,
            "requests": self.record.requests,
            "uploaded_clips": len(self.uploaded),
            "stuck_clips": stuck_clips,
            "failed_clips": failed_clips,
            "max_stuck_s": max([f.get("stuck_s", 0) for f in self.faults] or [0]),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--clips", type=int, default=1500)
    parser.add_argument("--fault-seconds", type=float, default=20.0)
    parser.add_argument("--clip-seconds", type=int, default=8)
    parser.add_argument("--disk-mb", type=int, default=24)
    parser.add_argument("--stuck-limit", type=float, default=120.0)
    parser.add_argument("--keep", action="store_true", help="keep the run's folder and logs")
    args = parser.parse_args()
    chaos = Chaos(args)
    try:
        result = chaos.run()
    finally:
        chaos.close()
    ok = (
        result["lost"] == 0
        and result["duplicated"] == 0
        and result["server_errors"] == 0
        and result["max_stuck_s"] < 60
    )
    print(json.dumps(result))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
