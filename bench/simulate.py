"""Simulation benchmark of trusted labels (make bench-trust).

Part A, quality: a campaign of --clips clips whose true labels follow the real FERV39k class
balance per scene (shared/data/ferv39k_scene_class_counts.csv), 5% of them gold, and 30
simulated annotators (good ones with realistic confusions, careless ones, spammers) who label it
through the real HTTP API under gunicorn, with a real Celery worker keeping the consensus. It
then compares, on the same votes: the campaign's default rule (as the workers left it), Dawid-
Skene, and a fixed 3 votes with plain majority; and counts the careless annotators the gold
batches caught.

Part B, speed: a FERV39k-scale campaign (86,000 clips, 5 votes each) is bulk-loaded, then the
full consensus recompute and the per-scene alpha are timed.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import http.client
import io
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np
from common import ROOT, Worker, setup_django

COUNTS_CSV = ROOT.parent / "shared" / "data" / "ferv39k_scene_class_counts.csv"
CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
KEYS = [c.lower() for c in CLASSES] + ["pass"]
# Pairs people confuse on faces (index pairs into CLASSES).
CONFUSED = {2: 6, 6: 2, 1: 0, 0: 1, 5: 4, 4: 5}


def cell_weights() -> list[tuple[str, int, int]]:
    """Return (scene folder, class index, clip count) for every scene x class cell."""
    cells: dict[tuple[str, int], int] = {}
    if COUNTS_CSV.exists():
        with COUNTS_CSV.open() as handle:
            for row in csv.DictReader(handle):
                for i, name in enumerate(CLASSES):
                    key = (row["scene"], i)
                    cells[key] = cells.get(key, 0) + int(row[name])
    else:  # without the shared data: uniform over a few scenes
        for scene in ["Speech", "War", "Interview", "DailyLife"]:
            for i in range(7):
                cells[(scene, i)] = 100
    return [(scene, cls, n) for (scene, cls), n in sorted(cells.items())]


class Annotator:
    """A simulated annotator: how often it is right, and what it says when it is not.

    Kinds: ``good`` (60 to 85 % on an ordinary clip, with the usual FER confusions),
    ``biased`` (says neutral when unsure), ``tiring`` (good at first, worse with every answer),
    ``colluding`` (a pair sharing one wrong answer per clip on a third of the clips),
    ``careless`` (30 %) and ``spammer`` (uniform over the 8 answers).
    """

    def __init__(self, kind: str, rng: random.Random):
        self.kind = kind
        self.rng = rng
        self.answers = 0
        self.accuracy = {
            "good": rng.uniform(0.6, 0.85), "biased": 0.65, "tiring": 0.85,
            "colluding": 0.75, "careless": 0.3, "spammer": 0.0,
        }[kind]  # fmt: skip

    def answer(self, truth: int, clip_id: int, difficulty: float) -> int:
        self.answers += 1
        r = self.rng.random()
        if self.kind == "spammer":
            return self.rng.randrange(8)
        if self.kind == "colluding" and (clip_id * 2654435761) % 3 == 0:
            return (truth + 1 + clip_id % 6) % 7  # the pair's shared wrong answer
        accuracy = self.accuracy - difficulty
        if self.kind == "tiring":
            accuracy -= min(0.45, self.answers / 1000)
        if r < 0.02:
            return 7  # PASS
        if r < 0.02 + accuracy:
            return truth
        if self.kind == "biased" and self.rng.random() < 0.7:
            return 4  # neutral
        if truth in CONFUSED and self.rng.random() < 0.6:
            return CONFUSED[truth]
        return self.rng.choice([c for c in range(7) if c != truth])


class Client:
    """A keep-alive HTTP client for one annotator."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        for attempt in (1, 2):
            try:
                self.conn.request("POST", path, json.dumps(body or {}), self.headers)
                response = self.conn.getresponse()
                raw = response.read()
                return response.status, (json.loads(raw) if raw else None)
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # The server closed an idle keep-alive connection: open a new one and send
                # again (an answer sent twice to one assignment is stored once).
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def start_server(port: int, log: Path):
    import subprocess

    env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "labelstudio_ferv.wsgi", "-b", f"127.0.0.1:{port}",
         "-w", "3", "-k", "gthread", "--threads", "4", "--graceful-timeout", "2"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/health/")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(log.read_text()[-2000:])


def part_a(args, rng: random.Random) -> dict:
    """Label a simulated campaign through the API; compare the three aggregations."""
    from django.db import connection

    from annotations.consensus import aggregate
    from annotations.loading import load_campaign
    from annotations.models import Campaign, GoldBatch, Task, Vote
    from annotations.services import annotators_create
    from clips.models import Clip, MediaStatus, Scene

    Campaign.objects.filter(name="bench-trust").delete()
    Clip.objects.filter(name__startswith="bench-trust/").delete()
    campaign = Campaign.objects.create(
        name="bench-trust", batch_size=100, aggregation=args.aggregation
    )
    cells = cell_weights()
    scenes = {s.folder: s for s in Scene.objects.all()}
    weights = np.array([n for *_, n in cells], dtype=float)
    picks = np.random.default_rng(args.seed).choice(
        len(cells), size=args.clips, p=weights / weights.sum()
    )
    truths = {}
    clips = [
        Clip(
            scene=scenes[cells[i][0]], name=f"bench-trust/{k}", checksum=f"bt{k:062d}",
            status=MediaStatus.READY, video=f"clips/bench-{k}.mp4", poster=f"posters/bench-{k}.jpg",
            duration_s=1.2, fps=25, frame_count=30, width=224, height=224,
        )
        for k, i in enumerate(picks.tolist())
    ]  # fmt: skip
    Clip.objects.bulk_create(clips, batch_size=2000)
    tasks = []
    for clip, i in zip(clips, picks.tolist(), strict=True):
        gold = rng.random() < 0.05
        truth = cells[i][1]
        tasks.append(
            Task(campaign=campaign, clip=clip, votes_needed=3, is_gold=gold,
                 gold_label=truth if gold else None)
        )  # fmt: skip
    Task.objects.bulk_create(tasks, batch_size=2000)
    for task, i in zip(
        Task.objects.filter(campaign=campaign).order_by("id"), picks.tolist(), strict=True
    ):
        truths[task.clip_id] = cells[i][1]
    kinds = (
        ["good"] * 20 + ["biased"] * 2 + ["tiring"] * 2 + ["colluding"] * 2 + ["careless"]
        + ["spammer"] * 3
    )  # fmt: skip
    # Some scenes are harder: every annotator is less accurate there.
    difficulty = {scene: (0.15 if n % 4 == 0 else 0.0) for n, scene in enumerate(sorted(scenes))}
    clip_scene = {clip.pk: cells[i][0] for clip, i in zip(clips, picks.tolist(), strict=True)}
    creds = annotators_create(
        campaign=campaign, usernames=[f"sim-{k}-{n:02d}" for n, k in enumerate(kinds)]
    )
    people = [
        (c, Annotator(kind, random.Random(args.seed + n)))
        for n, (c, kind) in enumerate(zip(creds, kinds, strict=True))
    ]
    connection.close()

    port = 8731
    work = ROOT / "var" / "bench" / "trust"
    work.mkdir(parents=True, exist_ok=True)
    server = start_server(port, work / "server.log")
    worker = Worker(1, work / "worker.log", extra=["-B", "--schedule", str(work / "beat")])
    answered = [0]
    paused_at_answer: dict[str, int] = {}
    lock = threading.Lock()

    def campaign_settled() -> bool:
        """Return whether no clip waits for its consensus (it may still ask for more votes)."""
        return not Task.objects.filter(campaign=campaign, consensus_stale=True).exists()

    def loop(cred, person: Annotator) -> None:
        client = Client(port, cred.token)
        mine = 0
        idle = 0
        try:
            while idle < 3:
                status, offer = client.post(f"/api/v1/campaigns/{campaign.pk}/next/")
                while status == 200:
                    idle = 0
                    clip_id = offer["clip"]["id"]
                    answer = person.answer(
                        truths[clip_id], clip_id, difficulty[clip_scene[clip_id]]
                    )
                    status, body = client.post(
                        f"/api/v1/assignments/{offer['assignment']['id']}/answer-and-next/",
                        {"label": KEYS[answer], "time_ms": 1500},
                    )
                    if status == 403 and body["error"]["code"] == "annotator_paused":
                        paused_at_answer[cred.username] = mine + 1
                        return  # a paused annotator stops (the answer was stored)
                    if status not in (200, 201):
                        raise RuntimeError(f"answer failed: {status} {body}")
                    mine += 1
                    with lock:
                        answered[0] += 1
                    offer = body.get("next")
                    status = 200 if offer else 204
                if status == 403:
                    paused_at_answer[cred.username] = mine
                    return
                # Nothing for me now: clips may still be waiting for their consensus to ask
                # for another vote, as a real annotator would find on coming back.
                idle += 1 if campaign_settled() else 0
                time.sleep(1.0)
        finally:
            connection.close()

    try:
        worker.wait_ready()
        started = time.monotonic()
        threads = [threading.Thread(target=loop, args=(c, p)) for c, p in people]
        sampler = LagSampler(campaign.pk)
        models = ModelSnapshots(campaign.pk)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        label_s = time.monotonic() - started
        lags = sampler.stop()
        snapshots = models.stop()
        deadline = time.monotonic() + 120
        while Task.objects.filter(campaign=campaign, consensus_stale=True).exists():
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        server.terminate()
        worker.stop()

    # As beat would: the idle annotators' last partial batches are scored, then the campaign is
    # recomputed (twice: the second shows what a recompute changes with nothing new).
    from annotations.batches import batches_close_idle
    from annotations.consensus import campaign_recompute
    from annotations.models import AnnotatorPause, TrustModel

    batches_close_idle(idle_minutes=0)
    campaign_recompute(campaign_id=campaign.pk)
    campaign_recompute(campaign_id=campaign.pk)
    trust = TrustModel.objects.filter(campaign=campaign).first()
    data = load_campaign(campaign_id=campaign.pk)
    plain = ~data.is_gold
    truth = np.array(
        [
            truths[c]
            for c in Task.objects.filter(campaign=campaign)
            .order_by("id")
            .values_list("clip_id", flat=True)
        ]
    )
    rule = {"status": data.status, "label": data.label}
    kind_of = {c.username: p.kind for c, p in people}
    pauses = dict(
        AnnotatorPause.objects.filter(campaign=campaign, action="pause")
        .order_by("-id")
        .values_list("annotator__username", "created_at")
    )
    spammers = [name for name, kind in kind_of.items() if kind == "spammer"]
    after_pause = sum(
        Vote.objects.filter(
            campaign=campaign, annotator__username=name, created_at__gt=pauses[name]
        ).count()
        for name in spammers
        if name in pauses
    )
    before_pause = {
        name: Vote.objects.filter(
            campaign=campaign, annotator__username=name, created_at__lte=pauses[name]
        ).count()
        for name in spammers
        if name in pauses
    }
    # Counted with the campaign's own rule, before the comparison below switches it to DS (it
    # was counted after, so with the 2/3 share rule: 1,418 "unsettleable" votes of which the
    # confidence rule's own test found 613).
    wasted = unsettleable_votes(campaign, data)
    wasted_then = unsettleable_votes(campaign, data, snapshots=snapshots)
    campaign.aggregation = Campaign.Aggregation.DAWID_SKENE
    ds = aggregate(campaign=campaign, data=data)
    three = fixed_three_majority(campaign.pk, data)
    careless_ids = {c.username for c, p in people if p.kind != "good"}
    flagged = {
        verdict: set(
            GoldBatch.objects.filter(campaign=campaign, verdict=verdict).values_list(
                "annotator__username", flat=True
            )
        )
        for verdict in ("unacceptable", "improper")
    }
    caught = flagged["unacceptable"] | flagged["improper"]
    good_ids = {c.username for c, p in people if p.kind == "good"}
    votes_all = Vote.objects.filter(campaign=campaign, task__is_gold=False).count()
    rule_summary = summarise(rule["status"], rule["label"], truth, plain, votes_all)
    return {
        "trusted_precision": rule_summary["trusted_accuracy"],
        "trusted_share": rule_summary["trusted_share"],
        "votes_per_trusted_clip": rule_summary["votes_per_trusted_clip"],
        "unsettleable_votes": wasted_then,
        "unsettleable_votes_final_model": wasted,
        "model_snapshots": len(snapshots),
        "spammer_answers_after_pause_signal": after_pause,
        "spammers_paused": len(before_pause),
        "spammers_total": len(spammers),
        "spammer_answers_before_pause": sorted(before_pause.values()),
        "good_annotators_paused": len(good_ids & set(pauses)),
        "paused_by_kind": {name: kind_of[name] for name in pauses},
        "stopped_at_answer": paused_at_answer,
        "decision_flips_per_recompute": (
            round(trust.total_changes / trust.recomputes, 1) if trust and trust.recomputes else None
        ),
        "decision_flips_last_recompute": trust.last_changes if trust else None,
        "audit": audit(rule["status"], rule["label"], truth, plain, rng),
        "clips": args.clips,
        "answers": answered[0],
        "label_s": round(label_s, 1),
        "answers_per_s": round(answered[0] / label_s, 1),
        "consensus_lag_samples": len(lags),
        "consensus_lag_p50_s": round(float(np.percentile(lags, 50)), 3) if lags else None,
        "consensus_lag_p95_s": round(float(np.percentile(lags, 95)), 3) if lags else None,
        "consensus_lag_max_s": round(float(np.max(lags)), 3) if lags else None,
        "rule": rule_summary,
        "dawid_skene": summarise(ds.status, ds.label, truth, plain, votes_all),
        "fixed3_majority": summarise(three[0], three[1], truth, plain, three[2]),
        "careless_total": len(careless_ids),
        "careless_caught": len(careless_ids & caught),
        "careless_unacceptable": len(careless_ids & flagged["unacceptable"]),
        "good_total": len(good_ids),
        # A good annotator's batch scored Improper goes to a reviewer; Unacceptable drops it.
        "good_flagged_improper": len(good_ids & flagged["improper"]),
        "good_flagged_unacceptable": len(good_ids & flagged["unacceptable"]),
        "best_label_accuracy": {
            "majority": best_label_accuracy(plurality_labels(data), truth, plain),
            "dawid_skene": best_label_accuracy(ds.ds_label, truth, plain),
        },
        "dawid_skene_at_rule_accuracy": ds_share_at_accuracy(
            ds.ds_label,
            ds.ds_confidence,
            truth,
            plain,
            summarise(rule["status"], rule["label"], truth, plain, votes_all)["trusted_accuracy"],
        ),  # fmt: skip
    }


class ModelSnapshots:
    """Keeps, while the crowd labels, every model the campaign decided with: polls the stored
    model's ``fitted_at`` every half second and loads each new fit (a thread of its own)."""

    def __init__(self, campaign_id: int):
        self.campaign_id = campaign_id
        self.snapshots: list[tuple[float, object]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from django.db import connection

        from annotations.consensus import model_load
        from annotations.models import TrustModel

        seen = object()
        try:
            while not self.done.wait(0.5 if self.snapshots else 0.0):
                fitted = (
                    TrustModel.objects.filter(campaign_id=self.campaign_id)
                    .values_list("fitted_at", flat=True)
                    .first()
                )
                if fitted != seen:
                    seen = fitted
                    at = fitted.timestamp() if fitted else 0.0
                    self.snapshots.append((at, model_load(campaign_id=self.campaign_id)))
        finally:
            connection.close()

    def stop(self) -> list[tuple[float, object]]:
        self.done.set()
        self.thread.join(timeout=30)
        return self.snapshots


def unsettleable_votes(campaign, data, snapshots=None) -> int:
    """Count the votes given to clips that could no longer become trusted when they got them.

    With ``snapshots`` (``ModelSnapshots``: each model the campaign decided with, from when it
    was fitted), each vote is judged with the model in force when its clip was handed out (its
    lease's start): a vote the rule asked for although it knew the clip could not settle. Without
    them, with the campaign's final model: also the votes a later fit found hopeless.

    Replays each non-gold clip's valid votes in order. Once a clip holds at least
    ``votes_per_clip`` votes, the next vote is unsettleable if the clip could not settle any
    more under the campaign's rule, and so is every later vote on it. Under the confidence
    rule that is the unsettleable stop's own test (``consensus.clip_settleable``: no state
    reaches the target even if every vote left up to ``max_votes`` named it, from a newcomer),
    with the campaign's final model and each clip's scene; under the share rule, every vote
    left going to the leading answer. The rule asked for each vote with the model of its time
    (refitted as votes came), so a vote asked rightly can count here when a later fit made its
    clip hopeless.
    """
    from annotations import agreement
    from annotations.consensus import clip_settleable, model_load
    from annotations.models import Campaign, Vote

    rows = list(
        Vote.objects.filter(campaign=campaign, is_valid=True, task__is_gold=False)
        .order_by("task_id", "created_at", "id")
        .values_list(
            "task_id", "annotator_id", "answer", "task__clip__scene_id",
            "assignment__created_at", "created_at",
        )
    )  # fmt: skip
    by_task: dict[int, list[tuple[int, int]]] = {}
    asked: dict[int, list[float]] = {}
    scene_of: dict[int, int] = {}
    for task_id, annotator, answer, scene, leased, created in rows:
        by_task.setdefault(task_id, []).append((annotator, answer))
        asked.setdefault(task_id, []).append((leased or created).timestamp())
        scene_of[task_id] = scene
    final = model_load(campaign_id=campaign.pk)
    fitted_at = [at for at, _ in snapshots or []]

    def model_at(when: float):
        if not snapshots:
            return final
        k = bisect.bisect_right(fitted_at, when) - 1
        return snapshots[max(k, 0)][1]

    lo, hi = campaign.votes_per_clip, campaign.max_votes
    confident = campaign.aggregation == Campaign.Aggregation.CONFIDENCE
    wasted = 0

    def can_settle(votes: list[tuple[int, int]], scene: int, model) -> bool:
        if confident:
            return clip_settleable(
                model, annotators=[w for w, _ in votes], answers=[a for _, a in votes],
                scene=scene, cap=hi, target=campaign.target_precision,
            )  # fmt: skip
        counts = np.bincount([a for _, a in votes], minlength=8)
        counts[int(counts.argmax())] += hi - len(votes)
        status, *_ = agreement.decide(counts[None], lo, hi, campaign.min_agreement)
        return int(status[0]) in (agreement.TRUSTED, agreement.DISCARDED)

    for task_id, votes in by_task.items():
        for n in range(lo, len(votes)):
            if not can_settle(votes[:n], scene_of[task_id], model_at(asked[task_id][n])):
                wasted += len(votes) - n
                break
    return wasted


def audit(status, label, truth, plain, rng: random.Random, share: float = 0.02) -> dict:
    """A blind audit: a reviewer (95 % accurate, not shown the votes) labels ``share`` of the
    trusted clips; the share agreeing estimates precision, with a 95 % Wilson interval."""
    trusted = np.flatnonzero((status == 1) & plain)
    if not len(trusted):
        return {"audited": 0}
    n = max(1, round(share * len(trusted)))
    sample = rng.sample(trusted.tolist(), n)
    agree = 0
    for i in sample:
        reviewer = truth[i] if rng.random() < 0.95 else rng.randrange(7)
        agree += int(reviewer == label[i])
    p, z = agree / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return {
        "audited": n,
        "audit_precision_estimate": round(p, 4),
        "interval_95": [round(centre - half, 4), round(centre + half, 4)],
    }


class LagSampler:
    """Times, in a process of its own, how long after each 10th vote its clip's consensus shows.

    A vote's lag runs from its ``created_at`` (stamped by the web process as it stores the
    vote) to the first poll that finds its clip's consensus counting it: the clip is no longer
    stale, or its counts hold at least as many votes as the clip had up to this one (a clip
    often gets its next vote within a second, which marks it stale again). Polls every 20 ms,
    so lags are over-stated by up to that much. In a separate process, the annotator threads'
    GIL cannot delay the polls.
    """

    def __init__(self, campaign_id: int):
        import multiprocessing

        from django.db import connection

        connection.close()  # the child opens its own
        context = multiprocessing.get_context("fork")
        self.stop_event = context.Event()
        self.reader, writer = context.Pipe(duplex=False)
        self.proc = context.Process(target=self._run, args=(campaign_id, writer), daemon=True)
        self.proc.start()

    def stop(self) -> list[float]:
        self.stop_event.set()
        lags = self.reader.recv()
        self.proc.join(timeout=60)
        return lags

    def _run(self, campaign_id: int, writer) -> None:
        from django.db import connection

        lags: list[float] = []
        pending: dict[int, tuple[int, float]] = {}  # vote id -> (task id, created at)
        with connection.cursor() as cursor:
            cursor.execute("SELECT COALESCE(max(id), 0) FROM annotations_vote")
            last = cursor.fetchone()[0]
            while not self.stop_event.is_set() or pending:
                time.sleep(0.02)
                cursor.execute(
                    "SELECT id, task_id, extract(epoch FROM created_at) FROM annotations_vote "
                    "WHERE campaign_id = %s AND id > %s ORDER BY id",
                    [campaign_id, last],
                )
                for vote_id, task_id, created in cursor.fetchall():
                    last = vote_id
                    if vote_id % 10 == 0:
                        pending[vote_id] = (task_id, float(created))
                if not pending:
                    continue
                cursor.execute(
                    """
                    SELECT v.id FROM annotations_vote v JOIN annotations_task t ON t.id = v.task_id
                    WHERE v.id = ANY(%s) AND (NOT t.consensus_stale OR (
                        SELECT sum(n::int) FROM jsonb_array_elements_text(t.counts) AS n
                    ) >= (SELECT count(*) FROM annotations_vote w
                          WHERE w.task_id = v.task_id AND w.id <= v.id AND w.is_valid))
                    """,
                    [list(pending)],
                )
                shown = {row[0] for row in cursor.fetchall()}
                now = time.time()
                for vote_id, (_task_id, created) in list(pending.items()):
                    if vote_id in shown or now - created > 60:
                        lags.append(now - created)
                        del pending[vote_id]
        writer.send(lags)


def fixed_three_majority(campaign_id: int, data) -> tuple[np.ndarray, np.ndarray, int]:
    """Label each clip from its first 3 votes (valid or not): 2 of 3 wins, else untrusted."""
    from annotations.models import Vote

    rows = np.array(
        list(
            Vote.objects.filter(campaign_id=campaign_id)
            .order_by("task_id", "created_at", "id")
            .values_list("task_id", "answer")
        )
    )
    idx = np.searchsorted(data.task_id, rows[:, 0])
    first = np.r_[True, idx[1:] != idx[:-1]]
    rank = np.arange(len(idx)) - np.maximum.accumulate(np.where(first, np.arange(len(idx)), 0))
    keep = rank < 3
    counts = np.zeros((data.n_tasks, 8), dtype=int)
    np.add.at(counts, (idx[keep], rows[keep, 1]), 1)
    top = counts.max(axis=1)
    leader = counts.argmax(axis=1)
    status = np.where((counts.sum(axis=1) >= 3) & (top >= 2), np.where(leader == 7, 3, 1), 2)
    label = np.where(status == 1, leader, -1)
    return status, label, int(keep[~data.is_gold[idx]].sum())


def plurality_labels(data) -> np.ndarray:
    """Each clip's most voted class over its valid votes (PASS aside); -1 on a tie or none."""
    counts = data.counts()[:, :7]
    top = counts.max(axis=1)
    unique = (counts == top[:, None]).sum(axis=1) == 1
    return np.where((top > 0) & unique, counts.argmax(axis=1), -1)


def best_label_accuracy(label, truth, plain) -> float:
    """Share of the non-gold clips whose best label (whatever its confidence) is right."""
    return round(float((label[plain] == truth[plain]).mean()), 4)


def ds_share_at_accuracy(label, confidence, truth, plain, accuracy: float) -> dict:
    """Trust Dawid-Skene's most confident clips until their accuracy would fall below
    ``accuracy``; return the share trusted and the posterior threshold that gives it."""
    label, confidence, truth = label[plain], confidence[plain], truth[plain]
    order = np.argsort(-confidence, kind="stable")
    right = np.cumsum(label[order] == truth[order])
    running = right / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(running >= accuracy)
    if not len(ok):
        return {"trusted_share": 0.0, "threshold": None, "correct_labels": 0}
    k = int(ok[-1])
    return {
        "trusted_share": round((k + 1) / len(order), 4),
        "threshold": round(float(confidence[order][k]), 4),
        "correct_labels": int(right[k]),
    }


def summarise(status, label, truth, plain, votes_spent: int) -> dict:
    status, label, truth = status[plain], label[plain], truth[plain]
    trusted = status == 1
    correct = trusted & (label == truth)
    per_class = {}
    for c, key in enumerate(KEYS[:7]):
        in_class = truth == c
        per_class[key] = {
            "recall": round(float((correct & in_class).sum() / max(1, in_class.sum())), 3),
            "precision": round(
                float((correct & (label == c)).sum() / max(1, (trusted & (label == c)).sum())), 3
            ),
        }
    n = len(status)
    return {
        "trusted_accuracy": round(float(correct.sum() / max(1, trusted.sum())), 4),
        "trusted_share": round(float(trusted.mean()), 4),
        "correct_labels": int(correct.sum()),
        "disputed_share": round(float((status == 2).sum() / n), 4),
        "discarded_share": round(float((status == 3).sum() / n), 4),
        "collecting_share": round(float((status == 0).sum() / n), 4),
        "votes_per_trusted_clip": round(votes_spent / max(1, trusted.sum()), 3),
        "per_class": per_class,
    }


def part_b(args) -> dict:
    """Time the full recompute and the per-scene alpha on a FERV39k-scale campaign."""
    from annotations import statistics
    from annotations.consensus import campaign_recompute
    from annotations.loading import load_campaign
    from annotations.models import Campaign, Task

    name = f"bench-recompute-{args.scale_clips}"
    campaign = Campaign.objects.filter(name=name).first()
    if campaign is None or Task.objects.filter(campaign=campaign).count() != args.scale_clips:
        campaign = seed_scale(name, args.scale_clips, 5)
    # From a blank consensus every row is written, as on a campaign's first recompute.
    Task.objects.filter(campaign=campaign).update(
        vote_count=0, status="collecting", label=None, agreement=0.0
    )
    # As autovacuum would between runs (it is off on the bench VM): every run of this bench
    # left 172,000 dead task rows, and each one made the recompute's UPDATE slower (9.2 s
    # measured on a table holding 750,000 dead rows).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) annotations_task")
    started = time.perf_counter()
    changed = campaign_recompute(campaign_id=campaign.pk)
    recompute_s = time.perf_counter() - started
    started = time.perf_counter()
    data = load_campaign(campaign_id=campaign.pk)
    statistics.alpha_per_group(data, data.counts(), data.scene_id)
    alpha_s = time.perf_counter() - started
    started = time.perf_counter()
    statistics.statistics_refresh(campaign_id=campaign.pk)
    stats_s = time.perf_counter() - started
    return {
        "scale_clips": args.scale_clips,
        "scale_votes": int(len(data.vote_answer)),
        "recompute_s": round(recompute_s, 2),
        "recompute_rows_changed": changed,
        "alpha_per_scene_s": round(alpha_s, 2),
        "statistics_s": round(stats_s, 2),
    }


def seed_scale(name: str, n_clips: int, per_clip: int):
    """Bulk-load a campaign of n_clips ready clips with per_clip votes each."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from annotations.models import Campaign, Task
    from clips.models import Clip, MediaStatus, Scene

    Task.objects.filter(campaign__name=name).delete()
    Campaign.objects.filter(name=name).delete()
    Clip.objects.filter(name__startswith=f"{name}/").delete()
    campaign = Campaign.objects.create(name=name)
    user_model = get_user_model()
    users = [user_model.objects.get_or_create(username=f"scale-{i:02d}")[0] for i in range(30)]
    scenes = list(Scene.objects.all())
    rng = np.random.default_rng(5)
    for start in range(0, n_clips, 5000):
        chunk = range(start, min(n_clips, start + 5000))
        clips = Clip.objects.bulk_create(
            [
                Clip(
                    scene=scenes[k % len(scenes)], name=f"{name}/{k}", status=MediaStatus.READY,
                    checksum=f"{name}-{k:040d}", video=f"clips/{name}-{k}.mp4",
                    poster=f"posters/{name}-{k}.jpg",
                )
                for k in chunk
            ]
        )  # fmt: skip
        Task.objects.bulk_create([Task(campaign=campaign, clip=c) for c in clips])
    task_ids = list(
        Task.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True)
    )
    truth = rng.integers(0, 7, size=n_clips)
    user_ids = np.array([u.pk for u in users])
    buf = io.StringIO()
    for k, tid in enumerate(task_ids):
        voters = rng.choice(user_ids, size=per_clip, replace=False)
        noise = rng.integers(0, 8, size=per_clip)
        answers = np.where(rng.random(per_clip) < 0.7, truth[k], noise)
        for uid, ans in zip(voters.tolist(), answers.tolist(), strict=True):
            buf.write(f"{campaign.pk}\t{tid}\t{uid}\t{ans}\t1500\tt\tnow\tnow\n")
    buf.seek(0)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.copy_expert(
            "COPY annotations_vote (campaign_id, task_id, annotator_id, answer, time_ms, "
            "is_valid, created_at, updated_at) FROM STDIN",
            buf,
        )
    return campaign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=3000)
    parser.add_argument("--scale-clips", type=int, default=86000)
    parser.add_argument("--seed", type=int, default=39)
    parser.add_argument(
        "--aggregation", default="confidence", choices=["confidence", "majority", "dawid_skene"]
    )
    parser.add_argument("--skip-simulation", action="store_true")
    args = parser.parse_args()
    setup_django()
    rng = random.Random(args.seed)
    result: dict = {"bench": "trust"}
    if not args.skip_simulation:
        result["simulation"] = part_a(args, rng)
    result.update(part_b(args))
    sim = result.get("simulation", {})
    rule = sim.get("rule", {})
    result.update(
        {
            "trusted_accuracy": rule.get("trusted_accuracy"),
            "trusted_precision": sim.get("trusted_precision"),
            "trusted_share": rule.get("trusted_share"),
            "votes_per_trusted_clip": rule.get("votes_per_trusted_clip"),
            "unsettleable_votes": sim.get("unsettleable_votes"),
            "spammer_answers_after_pause_signal": sim.get("spammer_answers_after_pause_signal"),
            "good_annotators_paused": sim.get("good_annotators_paused"),
            "decision_flips_per_recompute": sim.get("decision_flips_per_recompute"),
            "audit_precision_estimate": sim.get("audit", {}).get("audit_precision_estimate"),
            "careless_caught": sim.get("careless_caught"),
            "careless_total": sim.get("careless_total"),
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
