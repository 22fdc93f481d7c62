"""Benchmark: one raw video through the candidate pipeline on one worker (make bench-candidates).

Makes (once, cached under var/bench/candidates/) a 640x360, 25 fps video of --seconds seconds:
the astronaut photo shipped by scikit-image moving and growing over noisy backgrounds, with a hard
cut every --shot-seconds, and one shot without a face. It imports the video into a fresh campaign
through the service every import path uses, while one Celery worker with one pool process runs
the stages, and measures the time until the pipeline is done (every stage finished, every
candidate clip cut and ingested) as a multiple of the video's length; then the time until the
clips are transcoded too. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
from common import ROOT, Worker, setup_django

W, H, FPS = 640, 360, 25
HEAD = (140, 30, 170, 170)  # the astronaut's head in the 512x512 photo


def _backgrounds() -> list[np.ndarray]:
    """Photos shipped by scikit-image (none with a human face), a bit larger than the frame so
    the camera can pan across them."""
    import cv2
    from skimage import data

    photos = [data.rocket(), data.hubble_deep_field(), data.immunohistochemistry()]
    photos += [np.dstack([data.grass()] * 3), np.dstack([data.brick()] * 3)]
    size = (W + 80, H + 45)
    return [
        cv2.resize(np.ascontiguousarray(p[..., ::-1]), size, interpolation=cv2.INTER_AREA)
        for p in photos
    ]


def make_video(path: Path, seconds: int, shot_seconds: int, noise: int, kbps: int) -> None:
    """Write the benchmark video with ffmpeg (libx264 at ``kbps``, about what a 360p web video
    has) from numpy frames.

    Each shot pans slowly across a photo, with ``noise`` grey levels of sensor noise, while the
    astronaut's head drifts across it and grows; the middle shot is a coffee cup and no face.
    """
    import cv2
    from skimage import data

    astronaut = np.ascontiguousarray(data.astronaut()[..., ::-1])
    hx, hy, hw, hh = HEAD
    head = astronaut[hy : hy + hh, hx : hx + hw]
    coffee = cv2.resize(
        np.ascontiguousarray(data.coffee()[..., ::-1]),
        (W + 80, H + 45),
        interpolation=cv2.INTER_AREA,
    )
    backgrounds = _backgrounds()
    rng = np.random.default_rng(2024)
    shot_frames = shot_seconds * FPS
    shots = max(1, seconds // shot_seconds)
    tmp = path.with_suffix(".part.mp4")
    proc = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
         "-s", f"{W}x{H}", "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "medium",
         "-b:v", f"{kbps}k", "-maxrate", f"{kbps * 3 // 2}k", "-bufsize", f"{kbps * 2}k",
         "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(tmp)],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    for i in range(seconds * FPS):
        shot, k = divmod(i, shot_frames)
        t = k / shot_frames
        photo = coffee if shot == shots // 2 else backgrounds[shot % len(backgrounds)]
        px, py = int(80 * t), int(45 * t)  # the camera pans
        frame = photo[py : py + H, px : px + W].astype(np.int16)
        if noise:
            frame += rng.integers(-noise, noise + 1, frame.shape, dtype=np.int16)
        frame = np.clip(frame, 0, 255).astype(np.uint8)
        if shot != shots // 2:
            # The face drifts across the frame and grows from 0.8 to 1.2 times its size.
            side = int(hw * (0.8 + 0.4 * t))
            x = int((40 + 17 * shot) % 60 + (W - side - 100) * t)
            y = int(20 + (H - side - 40) * (0.5 + 0.4 * np.sin(2 * np.pi * t + shot)))
            y = min(max(0, y), H - side)
            face = head if shot % 2 == 0 else head[:, ::-1]
            frame[y : y + side, x : x + side] = cv2.resize(
                face, (side, side), interpolation=cv2.INTER_AREA
            )
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("ffmpeg could not write the benchmark video")
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--shot-seconds", type=int, default=10)
    parser.add_argument("--noise", type=int, default=4, help="sensor noise, grey levels")
    parser.add_argument("--kbps", type=int, default=1000, help="bit rate of the source")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    work = ROOT / "var" / "bench" / "candidates"
    work.mkdir(parents=True, exist_ok=True)
    name = (
        f"source-{args.seconds}s-shots{args.shot_seconds}s-noise{args.noise}-{args.kbps}k-"
        f"{W}x{H}.mp4"
    )
    video_path = work / name
    if not video_path.exists():
        make_video(video_path, args.seconds, args.shot_seconds, args.noise, args.kbps)

    setup_django()
    from annotations.intake import campaign_source_video_import
    from annotations.models import Campaign
    from clips import media
    from clips.models import Clip, MediaStatus, Scene, SourceVideo

    # A fresh start: the same video (or its clips) would be found by content and skipped.
    checksum = media.file_sha256(video_path)
    Campaign.objects.filter(name="bench-candidates").delete()  # and its tasks
    Clip.objects.filter(source_video__checksum=checksum).delete()
    SourceVideo.objects.filter(checksum=checksum).delete()
    campaign = Campaign.objects.create(name="bench-candidates")
    scene = Scene.objects.get(folder="Interview")

    worker = Worker(1, work / "worker.log")
    try:
        worker.wait_ready()
        started = time.monotonic()
        video, _ = campaign_source_video_import(campaign=campaign, path=video_path, scene=scene)
        imported_s = time.monotonic() - started
        deadline = started + args.timeout
        while time.monotonic() < deadline:
            video.refresh_from_db()
            if video.status in (MediaStatus.READY, MediaStatus.FAILED):
                break
            time.sleep(0.05)
        pipeline_s = time.monotonic() - started
        clips = Clip.objects.filter(source_video=video)
        while time.monotonic() < deadline and video.status == MediaStatus.READY:
            if not clips.filter(status__in=[MediaStatus.PENDING, MediaStatus.PROCESSING]).exists():
                break
            time.sleep(0.05)
        transcoded_s = time.monotonic() - started
        peak = worker.peak_rss_mb()
    finally:
        worker.stop()
    if video.status != MediaStatus.READY:
        raise SystemExit(f"pipeline failed at {video.failed_stage}: {video.error}")
    duration = video.frame_count / video.fps
    stage_s = {stage: entry.get("seconds") for stage, entry in video.progress.items()}
    result = {
        "bench": "candidates",
        "video_s": round(duration, 2),
        "size": f"{video.width}x{video.height}",
        "bitrate_kbps": round(video_path.stat().st_size * 8 / duration / 1000),
        "fps": video.fps,
        "worker_processes": 1,
        "shots": video.shot_count,
        "tracks": video.track_count,
        "clips_found": video.clips_found,
        "clips_ready": clips.filter(status=MediaStatus.READY).count(),
        "import_s": round(imported_s, 3),
        "stage_s": stage_s,
        "queue_overhead_s": round(pipeline_s - imported_s - sum(stage_s.values()), 3),
        "pipeline_s": round(pipeline_s, 2),
        "realtime_factor": round(duration / pipeline_s, 2),
        "transcoded_s": round(transcoded_s, 2),
        "realtime_factor_with_transcode": round(duration / transcoded_s, 2),
        "peak_worker_rss_mb": round(peak, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
