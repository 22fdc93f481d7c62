"""Where the CPU of one annotation loop goes, in one process (make bench-profile).

Seeds a small bench-load campaign in its own database (BENCH_DATABASE_URL + "_profile"), then
runs --loops loops through the whole Django stack (WSGI handler, middleware, token
authentication, the views, the serializers) with a real broker publish per vote, under
cProfile; then the consensus worker's task for each voted clip, under cProfile too. Prints the
top functions of each, the queries per request and the CPU milliseconds per loop and per vote.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ["DATABASE_URL"] = os.environ["DATABASE_URL"].rstrip("/") + "_profile"
os.environ.setdefault("CELERY_QUEUE", f"profile-{os.getpid()}")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"

from common import ensure_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=3000)
    parser.add_argument("--loops", type=int, default=600)
    parser.add_argument("--combined", action="store_true", help="answer-and-next/?ahead=1")
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args()
    ensure_database()
    import django

    django.setup()
    import annotate_load
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from annotations import tasks

    call_command("migrate", verbosity=0, interactive=False)
    campaign, truth, tokens = annotate_load.seed(
        clips=args.clips, annotators=30, votes=3,
        tokens_file=Path(tempfile.mkdtemp()) / "tokens.json", rng=random.Random(4),
    )  # fmt: skip
    campaign.gold_share = annotate_load.GOLD_SHARE  # the gold bookkeeping is profiled too
    campaign.save(update_fields=["gold_share"])
    clients = [Client(HTTP_AUTHORIZATION=f"Token {t}", HTTP_HOST="127.0.0.1") for t in tokens]
    nxt = f"/api/v1/campaigns/{campaign.pk}/next/"
    voted: list[int] = []
    offers: dict[int, dict] = {}

    def loop(i: int) -> None:
        client = clients[i % len(clients)]
        if args.combined:
            offer = offers.get(i % len(clients))
            if offer is None:
                offer = client.post(nxt + "?ahead=1", content_type="application/json").json()
            path = f"/api/v1/assignments/{offer['assignment']['id']}/answer-and-next/?ahead=1"
            body = client.post(path, {"label": "happy"}, content_type="application/json").json()
            offers[i % len(clients)] = body["next"]
        else:
            offer = client.post(nxt, content_type="application/json").json()
            path = f"/api/v1/assignments/{offer['assignment']['id']}/answer/"
            client.post(path, {"label": "happy"}, content_type="application/json")
        voted.append(offer["clip"]["id"])

    for i in range(60):  # warm: statements prepared, modules imported
        loop(i)
    with CaptureQueriesContext(connection) as captured:
        loop(60)
    print(f"queries in one loop: {len(captured.captured_queries)}")
    for q in captured.captured_queries:
        print("  ", q["sql"][:150].replace("\n", " "))

    tasks.update_consensus_stale.run()  # the warm-up's votes
    began, cpu = time.perf_counter(), time.process_time()
    for i in range(61, 61 + args.loops):
        loop(i)
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - began
    print(f"web+client, unprofiled: {1000 * cpu / args.loops:.2f} ms CPU per loop")
    print(f"  ({1000 * wall / args.loops:.2f} ms wall)")
    cpu = time.process_time()
    changed = tasks.update_consensus_stale.run()
    cpu = time.process_time() - cpu
    print(f"worker, unprofiled: {1000 * cpu / args.loops:.2f} ms CPU per vote")
    print(f"  (one message for {args.loops} votes on {changed} tasks)")
    profile = cProfile.Profile(time.process_time)  # CPU only: not the waits for PostgreSQL
    profile.enable()
    for i in range(61 + args.loops, 61 + 2 * args.loops):
        loop(i)
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())
    # The worker, as it was: one consensus message per vote, for the votes just given.
    from annotations.models import Task

    task_ids = list(
        Task.objects.filter(campaign=campaign, consensus_stale=True).values_list("pk", flat=True)
    )
    profile = cProfile.Profile(time.process_time)
    cpu = time.process_time()
    profile.enable()
    for task_id in task_ids:
        tasks.update_consensus.run(task_id)
    profile.disable()
    cpu = time.process_time() - cpu
    print(
        f"worker, one message per task: {1000 * cpu / max(len(task_ids), 1):.2f} ms CPU per "
        f"task ({len(task_ids)} tasks; profiled)"
    )
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).delete(os.environ["CELERY_QUEUE"])


if __name__ == "__main__":
    sys.exit(main())
