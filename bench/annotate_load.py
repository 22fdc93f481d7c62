"""Load benchmark of the annotation API (make bench-load; BENCH_ARGS="--clips 200000").

Starts the application under gunicorn and one Celery worker (concurrency 1) on PostgreSQL and
Redis, seeds a campaign of --clips ready clips (5% of them gold) with 30 annotators who need 3
votes per clip, and drives it over HTTP on loopback from this process:

* latency: the annotators pace themselves to a combined --rate clips per second (next, then
  answer) for --duration seconds; p50/p95/p99 of each request;
* capacity: the annotators loop (next, then answer) with no pause for --duration seconds;
* the same two with answer-and-next (one request per clip), holding one clip ahead as the
  browser does (`?ahead=1`).

The two capacity runs are compared as a ratio, so they run in halves in the order two-request,
answer-and-next, answer-and-next, two-request (ABBA; --no-abba runs each whole, one after the
other). Run one after the other, the second always met a campaign further on (more clips each
annotator has seen for the claim to step over, more gold seen) and a host that may have drifted;
ABBA cancels any drift that is linear in time.

Each run reports the CPU time per clip of the web processes, PostgreSQL, the worker and this
process. Then the consensus messages the worker has not reached are dropped and the campaign's
consensus is recomputed in bulk, and the database is checked: no duplicate vote or lease, no
clip given a vote it did not need (the trust rule replayed over each clip's votes in order),
the lease and vote counters equal to the rows, and every 2xx answer stored with its label. The
last line printed is one JSON object. See bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from common import ROOT, Worker, children, ensure_database, rss_mb
from floor import CpuMeter, harness_state, run_floor, run_harness, summarise

CAMPAIGN = "bench-load"
RUNS = ("latency", "capacity", "capacity_answer_and_next", "latency_answer_and_next")
COUNTS_CSV = ROOT.parent / "shared" / "data" / "ferv39k_scene_class_counts.csv"
CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
KEYS = [c.lower() for c in CLASSES] + ["pass"]


# --------------------------------------------------------------------------------- set-up


def class_cells() -> tuple[list[tuple[str, int]], list[float]]:
    """Return the (scene folder, class) cells of FERV39k and their clip counts."""
    cells: Counter = Counter()
    if COUNTS_CSV.exists():
        with COUNTS_CSV.open() as handle:
            for row in csv.DictReader(handle):
                for index, name in enumerate(CLASSES):
                    cells[row["scene"], index] += int(row[name])
    else:
        cells.update({(scene, c): 1 for scene in ("Speech", "War", "School") for c in range(7)})
    keys = sorted(cells)
    return keys, [float(cells[k]) for k in keys]


GOLD_SHARE = 0.05  # of the bench's own runs


def seed(*, clips: int, annotators: int, votes: int, tokens_file: Path, rng: random.Random):
    """Replace the benchmark campaign with a fresh one; return it, the truths and the tokens."""
    from django.core.management import call_command
    from django.db import connection

    from annotations.models import Campaign, Task
    from clips.models import Clip, MediaStatus, Scene

    old = Campaign.objects.filter(name=CAMPAIGN).first()
    if old is not None:
        with connection.cursor() as cursor:  # the bulky rows first, in one statement each
            cursor.execute("DELETE FROM annotations_vote WHERE campaign_id = %s", [old.pk])
            cursor.execute("DELETE FROM annotations_assignment WHERE campaign_id = %s", [old.pk])
            cursor.execute("DELETE FROM annotations_goldturn WHERE campaign_id = %s", [old.pk])
            cursor.execute("DELETE FROM annotations_task WHERE campaign_id = %s", [old.pk])
        old.delete()
    Clip.objects.filter(name__startswith=f"{CAMPAIGN}/").delete()
    # Autovacuum is off on the bench VM (production keeps it on): without this, the rows of
    # every earlier run's campaign stayed in the tables as dead space, and the heaps the claim
    # and the answer read grew from run to run (2-3x the live rows after a few runs).
    vacuum(*SEEDED_TABLES, analyze=False)

    # The steady-state loop, as the floor measures it: no qualification round (a newcomer's
    # first clips) and no gold in the stream yet. The floor's harness answers at random, which
    # the gold checks rightly pause (403) and a qualification round rightly refuses; the bench's
    # own runs turn gold on (``GOLD_SHARE``) once the harness has run, so its bookkeeping is
    # measured there. The gold clips themselves are seeded now.
    campaign = Campaign.objects.create(
        name=CAMPAIGN, votes_per_clip=votes, max_votes=max(votes + 2, 5), gold_share=0.0,
        qualification_clips=0,
    )  # fmt: skip
    scenes = {s.folder: s for s in Scene.objects.all()}
    cells, weights = class_cells()
    picks = rng.choices(range(len(cells)), weights=weights, k=clips)
    run = time.time_ns()
    rows = [
        Clip(
            scene=scenes.get(cells[i][0]) or next(iter(scenes.values())),
            name=f"{CAMPAIGN}/{k}", checksum=f"bl{run:020d}{k:042d}", status=MediaStatus.READY,
            video=f"clips/bench-{k}.mp4", poster=f"posters/bench-{k}.jpg",
            duration_s=1.1, fps=25.0, frame_count=28, width=224, height=224,
        )
        for k, i in enumerate(picks)
    ]  # fmt: skip
    created = Clip.objects.bulk_create(rows, batch_size=5000)
    truth = {clip.pk: cells[i][1] for clip, i in zip(created, picks, strict=True)}
    gold = set(rng.sample(range(clips), k=clips // 20))
    Task.objects.bulk_create(
        [
            Task(
                campaign=campaign, clip=clip, votes_needed=votes, is_gold=k in gold,
                gold_label=truth[clip.pk] if k in gold else None,
            )
            for k, clip in enumerate(created)
        ],
        batch_size=5000,
    )  # fmt: skip
    vacuum("annotations_task", "clips_clip")  # as autovacuum would after a bulk load
    call_command(
        "create_annotators", str(campaign.pk), "--count", str(annotators),
        "--prefix", f"{CAMPAIGN}-", "--output", str(tokens_file), verbosity=0,
    )  # fmt: skip
    tokens = [row["token"] for row in json.loads(tokens_file.read_text())]
    return campaign, truth, tokens


class Server:
    """gunicorn serving the application on a loopback port."""

    def __init__(self, *, port: int, workers: int, threads: int, log: Path):
        self.port = port
        cmd = [
            sys.executable, "-m", "gunicorn", "labelstudio_ferv.wsgi:application",
            "-b", f"127.0.0.1:{port}", "-k", "gthread", "-w", str(workers),
            "--threads", str(threads), "--keep-alive", "75", "--graceful-timeout", "5",
            "--log-level", "warning",
        ]  # fmt: skip
        env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "ERROR"}
        self.log = log
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/v1/health/")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
            if self.proc.poll() is not None:
                break
        raise RuntimeError(f"gunicorn did not start: {log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------------- load


class Annotator:
    """One simulated annotator on a keep-alive connection; mostly right, sometimes not."""

    def __init__(self, *, port: int, token: str, campaign_id: int, truth: dict, seed: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
            "Host": "127.0.0.1",
        }
        self.next_path = f"/api/v1/campaigns/{campaign_id}/next/"
        self.truth = truth
        self.rng = random.Random(seed)
        self.offer: dict | None = None  # the clip held between calls of a loop
        self.done = False

    def post(self, path: str, body: dict | None = None) -> tuple[int, dict | None, float]:
        start = time.perf_counter()
        self.conn.request("POST", path, json.dumps(body) if body else b"", self.headers)
        response = self.conn.getresponse()
        raw = response.read()
        elapsed = time.perf_counter() - start
        return response.status, (json.loads(raw) if raw else None), elapsed

    def label(self, clip_id: int) -> str:
        truth, r = self.truth[clip_id], self.rng.random()
        if r < 0.85:
            return KEYS[truth]
        if r < 0.88:
            return "pass"
        return KEYS[self.rng.choice([c for c in range(7) if c != truth])]

    def step(self, rec: Recorder, *, combined: bool) -> bool:
        """Do one clip (next + answer, or answer-and-next); return False when none is left."""
        if self.offer is None or not combined:
            # answer-and-next runs do as the browser does: hold one clip ahead (?ahead=1).
            status, body, seconds = self.post(self.next_path + ("?ahead=1" if combined else ""))
            rec.latency("next", status, seconds)
            if status != 200:
                self.done = status == 204
                return False
            self.offer = body
        assignment = self.offer["assignment"]["id"]
        label = self.label(self.offer["clip"]["id"])
        body = {"label": label, "time_ms": self.rng.randint(600, 4000)}
        action = "answer-and-next/?ahead=1" if combined else "answer/"
        path = f"/api/v1/assignments/{assignment}/{action}"
        status, answer, seconds = self.post(path, body)
        rec.latency("answer_and_next" if combined else "answer", status, seconds)
        if status in (200, 201):
            rec.answered(assignment, label)
            self.offer = answer.get("next") if combined else None
            if combined and self.offer is None:
                self.done = True
                return False
        else:
            self.offer = None
        return True


class Recorder:
    """Latencies per request kind, status counts, loops and every answer the API accepted."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter = Counter()
        self.accepted: list[tuple[int, str]] = []
        self.loops = 0

    def latency(self, kind: str, status: int, seconds: float) -> None:
        with self.lock:
            self.seconds[kind].append(seconds)
            self.statuses[kind, status] += 1

    def answered(self, assignment: int, label: str) -> None:
        with self.lock:
            self.accepted.append((assignment, label))
            self.loops += 1

    @classmethod
    def merged(cls, parts: list[Recorder]) -> Recorder:
        """One recorder for the runs of one kind done in parts (see ``--abba``)."""
        whole = cls()
        whole.elapsed = 0.0
        for part in parts:
            for kind, values in part.seconds.items():
                whole.seconds[kind].extend(values)
            whole.statuses.update(part.statuses)
            whole.accepted.extend(part.accepted)
            whole.loops += part.loops
            whole.elapsed += part.elapsed
        return whole

    def percentiles(self, kind: str) -> dict[str, float]:
        values = sorted(self.seconds.get(kind, []))
        if not values:
            return {}

        def at(q: float) -> float:
            return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 2)

        return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "n": len(values)}


def drive(annotators: list[Annotator], *, seconds: float, combined: bool, rate: float | None):
    """Run every annotator in its own thread for ``seconds``; paced to ``rate`` clips/s total."""
    rec = Recorder()
    start = time.monotonic()
    deadline = start + seconds
    interval = len(annotators) / rate if rate else 0.0

    def loop(index: int, annotator: Annotator) -> None:
        due = start + interval * index / len(annotators)  # spread the annotators' phases
        while time.monotonic() < deadline and not annotator.done:
            if interval:
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                due += interval
                if due > deadline + interval:
                    break
            if not annotator.step(rec, combined=combined) and annotator.done:
                break

    threads = [
        threading.Thread(target=loop, args=(i, a), daemon=True) for i, a in enumerate(annotators)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    rec.elapsed = time.monotonic() - start
    return rec


#: The tables a seed replaces the rows of.
SEEDED_TABLES = (
    "annotations_vote", "annotations_assignment", "annotations_goldturn", "annotations_task",
    "clips_clip",
)  # fmt: skip


def vacuum(*tables: str, analyze: bool = True) -> None:
    """VACUUM (and ANALYZE) these tables: what autovacuum does in production."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM {'(ANALYZE) ' if analyze else ''}{table}")


def vacuum_hot_tables() -> None:
    """Vacuum the tables every loop rewrites, before a run and outside its measures.

    Production keeps autovacuum on; the bench VM runs PostgreSQL with it off, so each run left
    the next one its dead row versions (each vote rewrites its task row three times), and the
    runs measured later in the sequence (answer-and-next) paid for the earlier ones' rows.
    """
    from django.db import connection

    vacuum("annotations_task", "annotations_assignment", "annotations_membership")
    connection.close()


def rss_mb_tree(pid: int) -> float:
    """Return the summed peak resident memory of a process and its children, in MiB."""
    return sum(rss_mb(p) for p in [pid, *children(pid)])


def pss_mb_tree(pid: int) -> float:
    """Return the summed proportional set size of a process and its children, in MiB: the
    memory they use together (pages shared between them, as after a fork, counted once)."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


# --------------------------------------------------------------------------------- checks


def queue_length(queue: str) -> int:
    """Return how many consensus messages wait in the broker for a worker."""
    import redis

    return int(redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).llen(queue))


def check_invariants(
    campaign, accepted: list[tuple[int, str]], *, consensus_done: bool, model=None
) -> dict[str, int]:
    """Count violations of the assignment rules in the database (0 everywhere is a pass).

    The vote counters are compared with the votes only once the consensus is up to date (it
    rewrites them); everything else holds at any moment.
    """
    import numpy as np
    from django.db import connection

    from annotations.agreement import COLLECTING, decide
    from annotations.consensus import confidence_decide
    from annotations.models import Campaign

    # A confidence campaign is replayed with the model its votes were decided with (``model``:
    # the one stored before the bulk recompute; none is fitted during the runs).
    confidence = campaign.aggregation == Campaign.Aggregation.CONFIDENCE

    found: dict[str, int] = {}
    with connection.cursor() as cursor:

        def scalar(sql: str) -> int:
            cursor.execute(sql, {"c": campaign.pk})
            return int(cursor.fetchone()[0])

        found["duplicate_votes"] = scalar(
            "SELECT count(*) FROM (SELECT 1 FROM annotations_vote WHERE campaign_id = %(c)s "
            "GROUP BY task_id, annotator_id HAVING count(*) > 1) d"
        )
        found["duplicate_leases"] = scalar(
            "SELECT count(*) FROM (SELECT 1 FROM annotations_assignment WHERE campaign_id = %(c)s "
            "GROUP BY task_id, annotator_id HAVING count(*) > 1) d"
        )
        found["lease_counter_drift"] = scalar(
            "SELECT count(*) FROM annotations_task t WHERE t.campaign_id = %(c)s AND t.lease_count"
            " <> (SELECT count(*) FROM annotations_assignment a WHERE a.task_id = t.id"
            "     AND a.state = 'active' AND a.holds_slot)"
        )
        if consensus_done:
            found["vote_counter_drift"] = scalar(
                "SELECT count(*) FROM annotations_task t WHERE t.campaign_id = %(c)s"
                " AND t.vote_count <> (SELECT count(*) FROM annotations_vote v"
                "                      WHERE v.task_id = t.id AND v.is_valid)"
            )
        # Votes plus open leases within the need, for the clips still collecting.
        found["collecting_over_need"] = scalar(
            "SELECT count(*) FROM annotations_task t WHERE t.campaign_id = %(c)s AND NOT t.is_gold"
            " AND t.status = 'collecting' AND t.vote_count + t.lease_count > t.votes_needed"
        )
        # Every vote replayed in order: it must have come while the clip still asked for it,
        # counting the votes that were valid then (a vote of a batch found Unacceptable later
        # counted until it was invalidated).
        cursor.execute(
            "SELECT v.task_id, v.answer, v.created_at, v.invalidated_at, v.annotator_id"
            " FROM annotations_vote v JOIN annotations_task t ON t.id = v.task_id"
            " WHERE v.campaign_id = %(c)s AND NOT t.is_gold"
            " ORDER BY v.task_id, v.created_at, v.id",
            {"c": campaign.pk},
        )
        per_task: dict[int, list[tuple]] = defaultdict(list)
        for task_id, *vote in cursor.fetchall():
            per_task[task_id].append(tuple(vote))
        unneeded = 0
        for votes in per_task.values():
            for k, (_answer, at, _gone, _who) in enumerate(votes):
                valid = [(a, w) for a, _, gone, w in votes[:k] if gone is None or gone > at]
                if confidence:
                    status, _, _, needed, _ = confidence_decide(
                        model, np.zeros(len(valid), dtype=np.int64),
                        np.array([w for _, w in valid], dtype=np.int64),
                        np.array([a for a, _ in valid], dtype=np.int64),
                        np.array([len(valid)]), np.array([campaign.votes_per_clip]),
                        np.array([campaign.max_votes]), campaign.target_precision,
                    )  # fmt: skip
                    counts = np.array([[len(valid)]])
                else:
                    counts = np.zeros((1, 8), dtype=np.int64)
                    for answer, _ in valid:
                        counts[0, answer] += 1
                    status, _, _, needed = decide(
                        counts, campaign.votes_per_clip, campaign.max_votes,
                        campaign.min_agreement,
                    )  # fmt: skip
                if status[0] != COLLECTING or counts.sum() >= needed[0]:
                    unneeded += 1
        found["votes_not_needed"] = unneeded
        # Every answer the API accepted is stored, with its label.
        cursor.execute(
            "SELECT assignment_id, answer FROM annotations_vote WHERE campaign_id = %(c)s"
            " AND assignment_id IS NOT NULL",
            {"c": campaign.pk},
        )
        stored = dict(cursor.fetchall())
    final = {}
    for assignment, label in accepted:  # a correction would replace the label: last one wins
        final[assignment] = KEYS.index(label)
    found["accepted_answers_missing"] = sum(
        1 for assignment, answer in final.items() if stored.get(assignment) != answer
    )
    return found


# --------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20_000)
    parser.add_argument("--annotators", type=int, default=30)
    parser.add_argument("--votes", type=int, default=3, help="Votes per clip.")
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds per run.")
    parser.add_argument("--rate", type=float, default=50.0, help="Clips/s of the latency run.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")
    parser.add_argument("--threads", type=int, default=8, help="Threads per gunicorn worker.")
    parser.add_argument(
        "--runs",
        default=",".join(RUNS),
        help="Comma-separated runs, in order (default: all).",
    )
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=1,
        help="Consensus worker processes during the runs (0: none, to see what they cost).",
    )
    parser.add_argument(
        "--worker-pool",
        default="solo",
        choices=["solo", "prefork"],
        help="The consensus worker's pool: solo (one process, as docker-compose's consensus "
        "service) or prefork (a supervisor plus --worker-concurrency children).",
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=0,
        help="Niceness of the consensus worker (10: the web's requests come first).",
    )
    parser.add_argument(
        "--abba",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Run the two capacity runs in halves, two-request, answer-and-next, "
        "answer-and-next, two-request (see above).",
    )
    parser.add_argument("--port", type=int, default=18741)
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Also drive this project and the floor (../shared/floor) with the floor's harness.",
    )
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("DATABASE_URL must name a PostgreSQL database (run it with make bench-load).")

    ensure_database()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True
    )
    import django

    django.setup()
    from django.db import connection

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="lsf-bench-load-"))
    print(f"seeding {args.clips} clips, {args.annotators} annotators ...", flush=True)
    began = time.monotonic()
    campaign, truth, tokens = seed(
        clips=args.clips, annotators=args.annotators, votes=args.votes,
        tokens_file=work / "tokens.json", rng=rng,
    )  # fmt: skip
    print(f"  seeded in {time.monotonic() - began:.1f} s", flush=True)
    connection.close()

    queue = os.environ.get("CELERY_QUEUE", "celery")
    worker = (
        Worker(args.worker_concurrency, work / "worker.log", pool=args.worker_pool)
        if args.worker_concurrency
        else None
    )
    server = None
    accepted: list[tuple[int, str]] = []
    results: dict = {}
    try:
        if worker is not None:
            worker.wait_ready()
            # The worker's whole process group: the main process and its pool children.
            os.setpriority(os.PRIO_PGRP, worker.proc.pid, args.worker_nice)
        server = Server(
            port=args.port, workers=args.workers, threads=args.threads, log=work / "gunicorn.log"
        )
        team = [
            Annotator(port=args.port, token=t, campaign_id=campaign.pk, truth=truth, seed=i)
            for i, t in enumerate(tokens)
        ]

        meter = CpuMeter()
        meter.watch_group("web", server.proc.pid)
        if worker is not None:
            meter.watch_group("worker", worker.proc.pid)
        database = connection.settings_dict["NAME"]
        meter.watch_database("postgres", database)
        meter.start()

        parts: dict[str, list[tuple[Recorder, Counter]]] = defaultdict(list)

        def run(name: str, *, combined: bool, rate: float | None, seconds: float) -> Recorder:
            """Run ``name`` (or one more part of it) and report it, every part so far."""
            vacuum_hot_tables()
            before, load = meter.seconds(), os.times()
            rec = drive(team, seconds=seconds, combined=combined, rate=rate)
            used, done = meter.seconds(), os.times()
            used.subtract(before)
            used["load"] = done.user + done.system - load.user - load.system
            accepted.extend(rec.accepted)
            parts[name].append((rec, used))
            if len(parts[name]) > 1:
                print(f"{name}, part {len(parts[name])}: {rec.loops / rec.elapsed:.1f}/s")
                rec = Recorder.merged([r for r, _ in parts[name]])
                used = sum((u for _, u in parts[name]), Counter())
            loops_per_s = rec.loops / rec.elapsed
            per_clip = {k: round(1000 * v / max(rec.loops, 1), 2) for k, v in sorted(used.items())}
            errors = {f"{k}:{s}": n for (k, s), n in rec.statuses.items() if s >= 300}
            print(f"{name}: {rec.loops} clips in {rec.elapsed:.1f} s = {loops_per_s:.1f}/s")
            for kind in sorted(rec.seconds):
                print(f"  {kind:16s} {rec.percentiles(kind)}")
            print(f"  CPU ms per clip: {per_clip}", flush=True)
            if errors:
                print(f"  non-2xx: {errors}")
            results[name] = {
                "loops_per_s": round(loops_per_s, 1),
                "errors": errors,
                "cpu_ms_per_clip": per_clip,
            }
            results[name].update({k: rec.percentiles(k) for k in rec.seconds})
            return rec

        if args.floor:
            # The floor's load on this project: its harness, a fresh connection per request.
            # Accounts of their own, before gold is on (see ``seed``): the annotators of the
            # runs below start with a clean record.
            from django.core.management import call_command

            call_command(
                "create_annotators", str(campaign.pk), "--count", str(args.annotators),
                "--prefix", f"{CAMPAIGN}-harness-", "--output", str(work / "harness.json"),
                verbosity=0,
            )  # fmt: skip
            connection.close()
            state = harness_state(
                path=work / "ours_state.json", port=args.port, campaign_id=campaign.pk,
                tokens=[row["token"] for row in json.loads((work / "harness.json").read_text())],
                database=database,
            )  # fmt: skip
            before = meter.seconds()
            from floor import floor_dir

            side = run_harness(
                where=floor_dir(), adapter="ours_adapter:OursAdapter", state=state,
                seconds=args.duration, concurrency=args.annotators, out=work / "ours_load.json",
            )  # fmt: skip
            used = meter.seconds()
            used.subtract(before)
            results["floor_harness"] = summarise(side, used)
            print(f"floor harness on this project: {results['floor_harness']}", flush=True)
        campaign.gold_share = GOLD_SHARE
        campaign.save(update_fields=["gold_share"])
        connection.close()
        run("warm-up", combined=False, rate=None, seconds=min(5.0, args.duration))
        names = args.runs.split(",")
        pair = ["capacity", "capacity_answer_and_next"]
        if args.abba and set(pair) <= set(names):
            at = min(names.index(n) for n in pair)
            names = [n for n in names if n not in pair]
            names[at:at] = [(n, 0.5) for n in pair + pair[::-1]]
        for item in names:
            name, share = item if isinstance(item, tuple) else (item, 1.0)
            combined = name.endswith("answer_and_next")
            rate = args.rate if name.startswith("latency") else None
            run(name, combined=combined, rate=rate, seconds=args.duration * share)
        rss = rss_mb_tree(server.proc.pid) + (rss_mb_tree(worker.proc.pid) if worker else 0.0)
        pss = pss_mb_tree(server.proc.pid) + (pss_mb_tree(worker.proc.pid) if worker else 0.0)
        rss_by_process = {
            "gunicorn": [
                round(rss_mb(p), 1) for p in [server.proc.pid, *children(server.proc.pid)]
            ],
            "worker": (
                [round(rss_mb(p), 1) for p in [worker.proc.pid, *children(worker.proc.pid)]]
                if worker
                else []
            ),
        }
        print(f"peak RSS by process (first the parent), MiB: {rss_by_process}", flush=True)
        meter.stop()

        backlog = queue_length(queue)
        # Each message catches up every stale clip, so waiting messages need not mean clips
        # waiting for their consensus: this counts the clips.
        from annotations.models import Task

        stale = Task.objects.filter(campaign=campaign, consensus_stale=True).count()
        print(f"after the runs: {backlog} messages queued, {stale} clips stale", flush=True)
    finally:
        if server is not None:
            server.stop()
        if worker is not None:
            worker.stop()
    # The measurement is over. Rather than wait for one worker to work through the backlog, drop
    # it and recompute every clip's consensus in bulk: the checks below then see exact counters.
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).delete(queue)
    from annotations.consensus import campaign_recompute, model_load

    model = model_load(campaign_id=campaign.pk)  # what the runs decided with
    began = time.monotonic()
    campaign_recompute(campaign_id=campaign.pk)
    print(f"consensus recomputed in bulk in {time.monotonic() - began:.1f} s", flush=True)
    violations = check_invariants(campaign, accepted, consensus_done=True, model=model)
    print(f"invariants: {violations}")
    floor = {}
    if args.floor:
        connection.close()
        floor = run_floor(
            clips=args.clips, seconds=args.duration, concurrency=args.annotators,
            port=args.port + 1, database=f"{connection.settings_dict['NAME']}_floor", work=work,
        )  # fmt: skip
        print(f"floor: {floor}", flush=True)
    for name in RUNS:  # runs left out report nothing
        results.setdefault(name, {"loops_per_s": None, "errors": {}})
    latency = results["latency"]
    blank = {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    for name in ("latency", "latency_answer_and_next"):
        for kind in ("next", "answer", "answer_and_next"):
            results[name].setdefault(kind, blank)
    summary = {
        "clips": args.clips,
        "annotators": args.annotators,
        "gunicorn": f"gthread {args.workers}x{args.threads}",
        "consensus_workers": args.worker_concurrency,
        "consensus_worker_pool": args.worker_pool,
        "consensus_worker_nice": args.worker_nice,
        "capacity_runs": "abba" if args.abba else "one after the other",
        "loops_per_s": results["capacity"]["loops_per_s"],
        "loops_per_s_answer_and_next": results["capacity_answer_and_next"]["loops_per_s"],
        "p50_next_ms": latency["next"]["p50_ms"],
        "p95_next_ms": latency["next"]["p95_ms"],
        "p99_next_ms": latency["next"]["p99_ms"],
        "p50_answer_ms": latency["answer"]["p50_ms"],
        "p95_answer_ms": latency["answer"]["p95_ms"],
        "p99_answer_ms": latency["answer"]["p99_ms"],
        "p99_answer_and_next_ms": results["latency_answer_and_next"]["answer_and_next"]["p99_ms"],
        "latency_run_clips_per_s": latency["loops_per_s"],
        "answers_checked": len(accepted),
        "consensus_backlog": backlog,
        "consensus_stale_clips": stale,
        "non_2xx": sum(
            sum(r["errors"].values()) for r in results.values() if isinstance(r["errors"], dict)
        ),
        "violations": violations,
        "invariant_violations": sum(violations.values()),
        "rss_mb_web_plus_worker": round(rss, 1),
        "rss_mb_by_process": rss_by_process,
        "pss_mb_web_plus_worker": round(pss, 1),
    }
    two_request = results["capacity"]["loops_per_s"]
    one_request = results["capacity_answer_and_next"]["loops_per_s"]
    if two_request and one_request:
        summary["answer_and_next_over_two_request"] = round(one_request / two_request, 2)
    if floor:
        ours = results["floor_harness"]
        summary.update(
            {
                "floor_harness_loops_per_s": ours["loops_per_s"],
                "floor_loops_per_s": floor["loops_per_s"],
                "floor_ratio": round(ours["loops_per_s"] / floor["loops_per_s"], 3),
                "cpu_s_per_loop": ours["cpu_s_per_loop"],
                "cpu_ms_per_loop": ours["cpu_ms_per_loop"],
                "floor_cpu_s_per_loop": floor["cpu_s_per_loop"],
                "floor_cpu_ms_per_loop": floor["cpu_ms_per_loop"],
                "cpu_over_floor": round(ours["cpu_s_per_loop"] / floor["cpu_s_per_loop"], 2),
                "floor_harness_p99_loop_ms": ours["p99_loop_ms"],
                "floor_p99_loop_ms": floor["p99_loop_ms"],
                "floor_harness_errors": ours["errors"],
            }
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
