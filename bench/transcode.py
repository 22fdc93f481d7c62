"""Benchmark: import N short clips through the real worker path (make bench-transcode).

Makes N distinct 224x224 clips of 1 to 2 s (like FERV39k's), imports them into a fresh campaign
with the ``import_clips`` command while one Celery worker with two pool processes transcodes
them, and measures clips per second from the start of the import until the last clip is ready,
and the peak resident memory of the worker processes. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import time
from pathlib import Path

from common import ROOT, Worker, setup_django

PATTERNS = ["testsrc2", "smptebars", "mandelbrot", "rgbtestsrc"]


def make_inputs(folder: Path, n: int) -> None:
    """Write n distinct clips (a cached base set, made unique by a metadata tag)."""
    from clips import media, synthetic

    folder.mkdir(parents=True, exist_ok=True)
    base_dir = folder.parent / "base"
    base_dir.mkdir(exist_ok=True)
    rng = random.Random(7)
    bases = []
    for i in range(24):
        base = base_dir / f"base-{i}.mp4"
        if not base.exists():
            seconds = 1.0 + (i % 6) * 0.2
            synthetic.make_test_video(base, seconds=seconds, pattern=PATTERNS[i % len(PATTERNS)])
        bases.append(base)
    ffmpeg = media.ffmpeg_binary()
    for i in range(n):
        target = folder / f"clip-{i:06d}.mp4"
        if target.exists():
            continue
        subprocess.run(
            [ffmpeg, "-v", "error", "-y", "-i", str(rng.choice(bases)), "-c", "copy",
             "-metadata", f"comment=bench-{i}", str(target)],
            check=True,
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()

    setup_django()
    from django.core.management import call_command

    from annotations.models import Campaign, Task
    from clips.models import Clip, MediaStatus

    work = ROOT / "var" / "bench" / "transcode"
    inputs = work / f"inputs-{args.clips}"
    make_inputs(inputs, args.clips)
    (inputs / "manifest.csv").write_text(
        "path,scene\n" + "".join(f"{p.name},Speech\n" for p in sorted(inputs.glob("clip-*.mp4")))
    )
    # A fresh start: earlier benchmark clips would be found by checksum and skipped.
    Task.objects.all().delete()
    Clip.objects.all().delete()
    Campaign.objects.filter(name="bench-transcode").delete()
    from django.conf import settings

    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)
    campaign = Campaign.objects.create(name="bench-transcode")

    worker = Worker(args.concurrency, work / "worker.log")
    try:
        worker.wait_ready()
        started = time.monotonic()
        call_command(
            "import_clips", campaign=str(campaign.pk), manifest=inputs / "manifest.csv",
            verbosity=0,
        )  # fmt: skip
        imported_s = time.monotonic() - started
        deadline = started + 3600
        done = 0
        while time.monotonic() < deadline:
            done = Clip.objects.filter(status__in=[MediaStatus.READY, MediaStatus.FAILED]).count()
            if done >= args.clips:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        peak = worker.peak_rss_mb()
    finally:
        worker.stop()
    ready = Clip.objects.filter(status=MediaStatus.READY).count()
    failed = Clip.objects.filter(status=MediaStatus.FAILED).count()
    result = {
        "bench": "transcode",
        "clips": args.clips,
        "ready": ready,
        "failed": failed,
        "worker_processes": args.concurrency,
        "import_s": round(imported_s, 2),
        "total_s": round(elapsed, 2),
        "clips_per_s": round(ready / elapsed, 2),
        "peak_worker_rss_mb": round(peak, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
