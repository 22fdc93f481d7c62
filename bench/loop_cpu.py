"""CPU per loop of the two loops side by side, in one process: this process (the whole Django
stack and the test client) and its PostgreSQL backend (/proc), in alternating blocks.

Usage: bench.sh bench/loop_cpu.py BLOCKS LOOPS_PER_BLOCK (e.g. 6 150). Clients 0-14 run the
two-request loop (next/, answer/), clients 15-29 answer-and-next/?ahead=1. Both loops share the
process, the database and the moment, so their ratio holds on a machine shared with other work
(bench-load's throughput ratio does not).
"""

import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ["DATABASE_URL"] = os.environ["DATABASE_URL"].rstrip("/") + "_cpu"
os.environ.setdefault("CELERY_QUEUE", f"cpu-{os.getpid()}")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"
from common import ensure_database


def pgcpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    blocks, per = int(sys.argv[1]), int(sys.argv[2])
    ensure_database()
    import django

    django.setup()
    import annotate_load
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from annotations import tasks

    call_command("migrate", verbosity=0, interactive=False)
    campaign, truth, tokens = annotate_load.seed(
        clips=8000,
        annotators=30,
        votes=3,
        tokens_file=Path(tempfile.mkdtemp()) / "t.json",
        rng=random.Random(4),
    )
    campaign.gold_share = annotate_load.GOLD_SHARE
    campaign.save(update_fields=["gold_share"])
    clients = [Client(HTTP_AUTHORIZATION=f"Token {t}", HTTP_HOST="127.0.0.1") for t in tokens]
    nxt = f"/api/v1/campaigns/{campaign.pk}/next/"
    offers = {}

    def two(i):
        c = clients[i % 15]
        o = c.post(nxt, content_type="application/json").json()
        c.post(
            f"/api/v1/assignments/{o['assignment']['id']}/answer/",
            {"label": "happy"},
            content_type="application/json",
        )

    def aan(i):
        c = clients[15 + i % 15]
        o = offers.get(i % 15)
        if o is None:
            o = c.post(nxt + "?ahead=1", content_type="application/json").json()
        b = c.post(
            f"/api/v1/assignments/{o['assignment']['id']}/answer-and-next/?ahead=1",
            {"label": "happy"},
            content_type="application/json",
        ).json()
        offers[i % 15] = b["next"]

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    # Warm both: statements prepared, modules imported.
    i = 0
    for f in (two, aan):
        for _ in range(90):
            f(i)
            i += 1
    res = {"two": [0, 0, 0], "aan": [0, 0, 0]}
    import redis

    r = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    for b in range(blocks):
        for name, f in (("aan", aan), ("two", two)) if b % 2 else (("two", two), ("aan", aan)):
            w, p = time.process_time(), pgcpu(pid)
            for _ in range(per):
                f(i)
                i += 1
            res[name][0] += time.process_time() - w
            res[name][1] += pgcpu(pid) - p
            res[name][2] += per
        tasks.update_consensus_stale.run()
        r.delete(os.environ["CELERY_QUEUE"])
    for k, (w, p, n) in res.items():
        print(
            f"{k}: web+client {1000 * w / n:.2f} ms, postgres {1000 * p / n:.2f} ms, "
            f"total {1000 * (w + p) / n:.2f} ms per loop ({n} loops)"
        )
    t, a = res["two"], res["aan"]
    print(f"cpu ratio two/aan: {((t[0] + t[1]) / t[2]) / ((a[0] + a[1]) / a[2]):.3f}")
    r.delete(os.environ["CELERY_QUEUE"])


if __name__ == "__main__":
    main()
