"""Benchmark: the three exports of a FERV39k-scale campaign (make bench-export).

Seeds (once, then reuses) a campaign of 86,000 ready clips with 5 votes each from 30 annotators,
scenes and classes drawn like the released dataset's (shared/data/ferv39k_scene_class_counts.csv
when present), and recomputes its consensus. Then runs each export (labels CSV, votes CSV, the
release split without media) through the export job service, each in a fresh process, and
reports its time and that process's peak resident memory. ``baseline_rss_mb`` is the peak of a
process that only sets Django up: the difference is what an export adds. The last line printed
is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import time

from common import ROOT, rss_mb, setup_django

COUNTS_CSV = ROOT.parent / "shared" / "data" / "ferv39k_scene_class_counts.csv"
N_ANNOTATORS = 30
VOTES_PER_CLIP = 5
CHUNK = 5000
KINDS = {"labels": "labels_csv", "votes": "votes_csv", "release": "release_split"}


def campaign_name(clips: int) -> str:
    return f"bench-export-{clips}"


def cell_weights(scene_ids: dict[str, int]):
    """Return (scene id, class) cells and their probabilities."""
    import numpy as np

    cells, weights = [], []
    if COUNTS_CSV.exists():
        with COUNTS_CSV.open() as fh:
            for row in csv.DictReader(fh):
                for label, name in enumerate(
                    ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
                ):
                    cells.append((scene_ids[row["scene"]], label))
                    weights.append(float(row[name]))
    else:
        cells = [(s, label) for s in scene_ids.values() for label in range(7)]
        weights = [1.0] * len(cells)
    w = np.array(weights)
    return cells, w / w.sum()


def seed(clips: int) -> int:
    """Create the benchmark campaign (unless it is there with every vote); return its id."""
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from annotations.consensus import campaign_recompute
    from annotations.models import Campaign, Membership, Role, Task, Vote
    from clips.models import Clip, MediaStatus, Scene

    name = campaign_name(clips)
    campaign = Campaign.objects.filter(name=name).first()
    if campaign is not None:
        if (
            Task.objects.filter(campaign=campaign).count() == clips
            and Vote.objects.filter(campaign=campaign).count() == clips * VOTES_PER_CLIP
        ):
            return campaign.pk
        Vote.objects.filter(campaign=campaign).delete()
        Task.objects.filter(campaign=campaign).delete()
        campaign.delete()
    Clip.objects.filter(checksum__startswith=f"bx{clips}-").delete()

    rng = np.random.default_rng(39)
    cells, p = cell_weights(dict(Scene.objects.values_list("folder", "id")))
    drawn = rng.choice(len(cells), size=clips, p=p)
    truth = np.array([cells[i][1] for i in drawn])
    scenes = [cells[i][0] for i in drawn]
    users = get_user_model()
    annotators = []
    for i in range(N_ANNOTATORS):
        user, _ = users.objects.get_or_create(username=f"bench-annotator-{i:02d}")
        annotators.append(user.pk)
    with transaction.atomic():
        campaign = Campaign.objects.create(name=name, votes_per_clip=3, max_votes=5)
        Membership.objects.bulk_create(
            Membership(campaign=campaign, user_id=u, role=Role.ANNOTATOR) for u in annotators
        )
        for start in range(0, clips, CHUNK):
            batch = [
                Clip(
                    scene_id=scenes[i], name=f"bench/{i:06d}.mp4", video=f"clips/bench-{i}.mp4",
                    poster=f"posters/bench-{i}.jpg", status=MediaStatus.READY,
                    checksum=f"bx{clips}-" + hashlib.sha256(str(i).encode()).hexdigest()[:50],
                    duration_s=1.1, fps=25.0, frame_count=28, width=224, height=224,
                )
                for i in range(start, min(start + CHUNK, clips))
            ]  # fmt: skip
            made = Clip.objects.bulk_create(batch)
            Task.objects.bulk_create(Task(campaign=campaign, clip=c) for c in made)
        task_ids = np.array(
            Task.objects.filter(campaign=campaign).order_by("clip_id").values_list("pk", flat=True)
        )
        # Each clip: 5 distinct annotators; 70% answer the true class, 5% PASS, the rest another.
        voters = np.argsort(rng.random((clips, N_ANNOTATORS)), axis=1)[:, :VOTES_PER_CLIP]
        roll = rng.random((clips, VOTES_PER_CLIP))
        other = rng.integers(0, 7, size=(clips, VOTES_PER_CLIP))
        answers = np.where(roll < 0.70, truth[:, None], np.where(roll < 0.75, 7, other))
        times = rng.integers(800, 6000, size=(clips, VOTES_PER_CLIP))
        ann = np.array(annotators)
        for start in range(0, clips, CHUNK // VOTES_PER_CLIP * 4):
            stop = min(start + CHUNK // VOTES_PER_CLIP * 4, clips)
            Vote.objects.bulk_create(
                Vote(
                    campaign=campaign, task_id=int(task_ids[i]),
                    annotator_id=int(ann[voters[i, j]]), answer=int(answers[i, j]),
                    time_ms=int(times[i, j]),
                )
                for i in range(start, stop)
                for j in range(VOTES_PER_CLIP)
            )  # fmt: skip
    campaign_recompute(campaign_id=campaign.pk)
    return campaign.pk


def run_one(kind: str, campaign_id: int) -> None:
    """Run one export in this process; print its time, rows and this process's peak RSS."""
    setup_django(migrate=False)
    result: dict = {"kind": kind}
    if kind != "none":
        from annotations import exports
        from annotations.models import ExportJob, Role

        params = {"include_media": False} if kind == "release" else {}
        job = ExportJob.objects.create(
            campaign_id=campaign_id,
            kind=kind,
            params=exports.check_params(kind=kind, params=params, role=Role.ADMIN),
        )
        started = time.perf_counter()
        exports.export_run(job_id=job.pk)
        result["seconds"] = round(time.perf_counter() - started, 2)
        job.refresh_from_db()
        assert job.status == "done", job.error
        result["rows"] = job.rows_done
        result["bytes"] = job.file.size
        job.file.delete(save=False)  # the benchmark keeps no exports around
        job.delete()
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec.
    result["peak_rss_mb"] = round(rss_mb(os.getpid()), 1)
    print(json.dumps(result))


def measure(kind: str, campaign_id: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--run-one", kind, "--campaign", str(campaign_id)],
        check=True, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=86_000)
    parser.add_argument("--run-one", choices=[*KINDS, "none"], help=argparse.SUPPRESS)
    parser.add_argument("--campaign", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        run_one(args.run_one, args.campaign)
        return

    setup_django()
    from django.db.models import Count

    from annotations.models import Task, Vote

    started = time.perf_counter()
    campaign_id = seed(args.clips)
    seed_s = time.perf_counter() - started
    by_status = dict(
        Task.objects.filter(campaign_id=campaign_id).values_list("status").annotate(n=Count("id"))
    )
    result: dict = {
        "bench": "export",
        "clips": args.clips,
        "votes": Vote.objects.filter(campaign_id=campaign_id).count(),
        "statuses": by_status,
        "seed_s": round(seed_s, 1),
    }
    baseline = measure("none", campaign_id)
    result["baseline_rss_mb"] = baseline["peak_rss_mb"]
    peaks = []
    for kind, key in KINDS.items():
        one = measure(kind, campaign_id)
        print(f"{kind}: {one}", flush=True)
        result[f"{key}_s"] = one["seconds"]
        result[f"{key}_rows"] = one["rows"]
        result[f"{key}_rss_mb"] = one["peak_rss_mb"]
        peaks.append(one["peak_rss_mb"])
    result["peak_rss_mb"] = max(peaks)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
