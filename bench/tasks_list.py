"""Benchmark: listing the tasks of a 200,000-clip campaign with each filter (make bench-tasks).

Seeds (once, then reuses) a campaign of 200,000 ready clips across the scenes, with consensus
states drawn like a campaign half-way through (most clips trusted, some collecting, disputed,
discarded or adjudicated; 5% gold), runs ANALYZE, then asks ``GET /api/v1/campaigns/{id}/tasks/``
as a reviewer, through the whole Django stack, for each filter: the first page and then
``--pages`` pages further by cursor. It reports each filter's median and slowest page in ms
(target: under 100 ms). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time

from common import setup_django

CHUNK = 5000
STATUSES = ["trusted", "collecting", "disputed", "discarded", "adjudicated"]
STATUS_P = [0.6, 0.25, 0.08, 0.05, 0.02]


def _digest(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()[:50]


def seed(clips: int) -> int:
    """Create the benchmark campaign (unless it is there with every task); return its id."""
    import numpy as np
    from django.db import connection, transaction

    from annotations.models import Campaign, Task
    from clips.models import Clip, MediaStatus, Scene

    name = f"bench-tasks-{clips}"
    campaign = Campaign.objects.filter(name=name).first()
    if campaign is not None and Task.objects.filter(campaign=campaign).count() == clips:
        return campaign.pk
    if campaign is not None:
        Task.objects.filter(campaign=campaign).delete()
        campaign.delete()
    Clip.objects.filter(checksum__startswith=f"bt{clips}-").delete()
    rng = np.random.default_rng(15)
    scenes = list(Scene.objects.values_list("id", flat=True))
    with transaction.atomic():
        campaign = Campaign.objects.create(name=name)
        for start in range(0, clips, CHUNK):
            stop = min(start + CHUNK, clips)
            n = stop - start
            scene = rng.choice(scenes, size=n)
            status = rng.choice(len(STATUSES), size=n, p=STATUS_P)
            label = rng.integers(0, 7, size=n)
            share = rng.choice([1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.8, 1.0], size=n)
            gold = rng.random(n) < 0.05
            made = Clip.objects.bulk_create(
                Clip(
                    scene_id=int(scene[i]), name=f"bench/{start + i:06d}.mp4",
                    video=f"clips/bt-{start + i}.mp4", poster=f"posters/bt-{start + i}.jpg",
                    status=MediaStatus.READY,
                    checksum=f"bt{clips}-{_digest(start + i)}",
                    duration_s=1.1, fps=25.0, frame_count=28, width=224, height=224,
                )
                for i in range(n)
            )  # fmt: skip
            rows = []
            for i, clip in enumerate(made):
                key = STATUSES[status[i]]
                final = key in ("trusted", "adjudicated")
                rows.append(
                    Task(
                        campaign=campaign,
                        clip=clip,
                        is_gold=bool(gold[i]),
                        gold_label=int(label[i]) if gold[i] else None,
                        status="collecting" if gold[i] else key,
                        label=int(label[i]) if final and not gold[i] else None,
                        vote_count=3,
                        agreement=float(share[i]),
                    )  # fmt: skip
                )
            Task.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotations_task")
        cursor.execute("ANALYZE clips_clip")
    return campaign.pk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=200_000)
    parser.add_argument("--pages", type=int, default=10, help="pages walked after the first")
    parser.add_argument("--repeat", type=int, default=3, help="walks per filter")
    args = parser.parse_args()
    os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from annotations.models import Membership, Role, Task
    from clips.models import Scene

    started = time.perf_counter()
    campaign_id = seed(args.clips)
    seed_s = round(time.perf_counter() - started, 1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotations_task")
        cursor.execute("ANALYZE clips_clip")
    user, _ = get_user_model().objects.get_or_create(username="bench-reviewer")
    Membership.objects.get_or_create(
        campaign_id=campaign_id, user=user, defaults={"role": Role.REVIEWER}
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0]}")
    scene = Scene.objects.select_related("scenario").order_by("id").first()
    sample = (
        Task.objects.filter(campaign_id=campaign_id)
        .order_by("-id")
        .values("clip_id", "clip__name")[1000]
    )
    filters = {
        "none": {},
        "status=trusted": {"status": "trusted"},
        "status=adjudicated": {"status": "adjudicated"},
        "label=fear": {"label": "fear"},
        "gold=true": {"gold": "true"},
        "scene": {"scene": scene.name},
        "scenario": {"scenario": scene.scenario.name},
        "clip=id": {"clip": str(sample["clip_id"])},
        "clip=name": {"clip": sample["clip__name"]},
        "agreement 0.45-0.55": {"agreement_min": 0.45, "agreement_max": 0.55},
        "agreement>=0.99": {"agreement_min": 0.99},
        "status+scene": {"status": "disputed", "scene": scene.name},
        "rare status+scene": {"status": "adjudicated", "scene": scene.name},
        "label+agreement": {"label": "sad", "agreement_max": 0.7},
    }
    url = f"/api/v1/campaigns/{campaign_id}/tasks/"
    client.get(url)  # warm the connection and the prepared plans
    report = {}
    for name, params in filters.items():
        times = []
        rows = 0
        for _ in range(args.repeat):
            after = None
            for _page in range(args.pages + 1):
                query = {**params, "limit": 50, **({"after": after} if after else {})}
                t0 = time.perf_counter()
                response = client.get(url, query)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, response.content
                body = response.json()
                rows += len(body["items"])
                after = body["next_after"]
                if after is None:
                    break
        report[name] = {
            "p50_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1),
            "pages": len(times),
        }
    worst = max(v["max_ms"] for v in report.values())
    print(
        json.dumps(
            {
                "benchmark": "tasks_list",
                "tasks": args.clips,
                "seed_s": seed_s,
                "page_size": 50,
                "filters": report,
                "worst_page_ms": worst,
                "target_ms": 100,
            }
        )
    )


if __name__ == "__main__":
    main()
