"""Benchmark: progress over time of an 86,000-clip campaign with 5 votes each (make bench-history).

Seeds (once, then reuses) a campaign of 86,000 ready clips, 430,000 votes by 40 annotators spread
over the last 14 days (half of them in the 7-day window the endpoint reads) and 60% of the clips
trusted, runs ANALYZE, then asks ``GET /api/v1/campaigns/{id}/progress/history/`` as a reviewer
through the whole Django stack ``--repeat`` times: first with every figure read from the votes
(no rollup), then after the per-hour rollup (``votes_roll_up``, what beat runs every 5 minutes;
its own time is reported too) with only the votes after its mark read live. It reports the
median and slowest answer in ms of both. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from common import setup_django

ANNOTATORS = 40


def seed(clips: int, votes_per_clip: int) -> int:
    """Create the benchmark campaign (unless it is there with every vote); return its id."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from annotations.models import Campaign, Vote
    from clips.models import Scene

    name = f"bench-history-{clips}"
    campaign = Campaign.objects.filter(name=name).first()
    if campaign is not None and Vote.objects.filter(campaign=campaign).count() == (
        clips * votes_per_clip
    ):
        return campaign.pk
    users = [
        get_user_model().objects.get_or_create(username=f"bench-annotator-{i}")[0].pk
        for i in range(ANNOTATORS)
    ]
    scene = Scene.objects.order_by("id").values_list("id", flat=True).first()
    with transaction.atomic(), connection.cursor() as cursor:
        if campaign is not None:
            cursor.execute("DELETE FROM annotations_vote WHERE campaign_id = %s", [campaign.pk])
            cursor.execute("DELETE FROM annotations_goldturn WHERE campaign_id = %s", [campaign.pk])
            cursor.execute("DELETE FROM annotations_task WHERE campaign_id = %s", [campaign.pk])
            campaign.delete()
        cursor.execute("DELETE FROM clips_clip WHERE checksum LIKE %s", [f"bh{clips}-%"])
        campaign = Campaign.objects.create(name=name, votes_per_clip=votes_per_clip)
        cursor.execute(
            """
            INSERT INTO clips_clip (scene_id, name, video, poster, status, checksum, duration_s,
                fps, frame_count, width, height, error, original, created_at, updated_at)
            SELECT %s, 'bench/' || g, 'clips/bh-' || g || '.mp4', 'posters/bh-' || g || '.jpg',
                   'ready', %s || g, 1.1, 25, 28, 224, 224, '', '', now(), now()
            FROM generate_series(1, %s) AS g
            """,
            [scene, f"bh{clips}-", clips],
        )
        # Tasks: 60% trusted, decided over the last 14 days; the rest collecting.
        cursor.execute(
            """
            INSERT INTO annotations_task (campaign_id, clip_id, is_gold, gold_retired,
                votes_needed, vote_count, lease_count, counts, status, label, agreement,
                consensus_stale, vote_seq, review_locked, extra_votes, review_version, draw,
                priority, updated_at)
            SELECT %(c)s, id, false, false, %(v)s,
                   CASE WHEN random() < 0.6 THEN %(v)s ELSE 2 END, 0, '[0,0,0,0,0,0,0,0]',
                   'collecting', NULL, 0, false, 0, false, 0, 0, id, 0,
                   now() - random() * interval '14 days'
            FROM clips_clip WHERE checksum LIKE %(p)s
            """,
            {"c": campaign.pk, "v": votes_per_clip, "p": f"bh{clips}-%"},
        )
        cursor.execute(
            "UPDATE annotations_task SET status = 'trusted', label = 3 "
            "WHERE campaign_id = %s AND vote_count = %s",
            [campaign.pk, votes_per_clip],
        )
        cursor.execute(
            """
            INSERT INTO annotations_vote (campaign_id, task_id, annotator_id, answer, is_valid,
                created_at, updated_at)
            SELECT t.campaign_id, t.id, (%(users)s::int[])[1 + (t.id * 7 + k) %% %(n)s], 3, true,
                   now() - random() * interval '14 days', now()
            FROM annotations_task AS t, generate_series(0, %(v)s - 1) AS k
            WHERE t.campaign_id = %(c)s
            """,
            {"users": users, "n": ANNOTATORS, "v": votes_per_clip, "c": campaign.pk},
        )
    # As autovacuum leaves a table in use: visibility map set (index-only scans), statistics.
    with connection.cursor() as cursor:
        for table in ("annotations_task", "annotations_vote", "clips_clip"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return campaign.pk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=86_000)
    parser.add_argument("--votes", type=int, default=5, help="votes per clip")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    setup_django()
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from annotations.models import Membership, Role

    started = time.perf_counter()
    campaign_id = seed(args.clips, args.votes)
    seed_s = round(time.perf_counter() - started, 1)
    user, _ = get_user_model().objects.get_or_create(username="bench-reviewer")
    Membership.objects.get_or_create(
        campaign_id=campaign_id, user=user, defaults={"role": Role.REVIEWER}
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0]}")
    from annotations.history import votes_roll_up
    from annotations.models import VoteHour, VoteHourMark

    url = f"/api/v1/campaigns/{campaign_id}/progress/history/"

    def timed() -> tuple[list[float], dict]:
        times, body = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.content[:500]
            body = response.json()
        # The rate and the estimate slide with the clock between two runs; the rest must not.
        return times, {k: body[k] for k in ("hours", "annotators", "trusted", "votes_left")}

    # Live: no rollup (as a campaign before beat's first run).
    VoteHourMark.objects.filter(campaign_id=campaign_id).delete()
    VoteHour.objects.filter(campaign_id=campaign_id).delete()
    live_times, live_body = timed()
    t0 = time.perf_counter()
    rows = votes_roll_up(campaign_id=campaign_id)
    rollup_s = round(time.perf_counter() - t0, 2)
    rolled_times, rolled_body = timed()
    assert rolled_body == live_body, "the rollup changed the history"
    result = {
        "clips": args.clips,
        "votes": args.clips * args.votes,
        "seed_s": seed_s,
        "live_median_ms": round(statistics.median(live_times), 1),
        "live_max_ms": round(max(live_times), 1),
        "rollup_s": rollup_s,
        "rollup_rows": rows,
        "median_ms": round(statistics.median(rolled_times), 1),
        "max_ms": round(max(rolled_times), 1),
        "hours": len(rolled_body["hours"]),
        "annotators": len(rolled_body["annotators"]),
        "trusted_days": len(rolled_body["trusted"]),
    }
    print(f"progress/history/ on {args.clips} clips x {args.votes} votes: "
          f"read live median {result['live_median_ms']} ms; with the hourly rollup "
          f"median {result['median_ms']} ms, slowest {result['max_ms']} ms "
          f"(rollup of {rows} rows took {rollup_s} s)")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
