"""A full media disk (issue 16 item 7): refused uploads leave nothing, transcodes wait for room.

The disk is a real 3 MiB tmpfs mounted for the test (root only: skipped elsewhere).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotations.models import Task
from clips import synthetic
from clips.models import Clip, MediaStatus
from tests.conftest import WorkerProcess, wait_for
from tests.factories import ClipFactory


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "3m"):
    """Mount a tmpfs of ``size`` on ``folder`` for the duration."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(disk: Path, *, leave: int = 0) -> Path:
    """Fill ``disk`` up to ``leave`` free bytes; return the filler file (delete it for room)."""
    filler = disk / "filler"
    with filler.open("ab") as handle:
        try:
            while os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize > leave:
                chunk = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - leave
                handle.write(b"\0" * min(chunk, 1 << 16))
                handle.flush()
        except OSError:
            pass
    return filler


@pytest.fixture
def media_disk(tmp_path, settings):
    with small_disk(tmp_path / "disk") as disk:
        settings.MEDIA_ROOT = str(disk / "media")
        settings.WORK_DIR = disk / "work"
        yield disk


def _clip_file(tmp_path: Path, name: str = "clip.mp4") -> SimpleUploadedFile:
    path = synthetic.make_test_video(tmp_path / name, seconds=4, size=(320, 240))
    return SimpleUploadedFile(name, path.read_bytes(), content_type="video/mp4")


def _stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.django_db
def test_an_upload_to_a_full_disk_is_refused_and_leaves_nothing(
    api, adam, campaign, media_disk, tmp_path
):
    """Before: a 500, a 0-byte original, and the next upload stored under another name."""
    url = f"/api/v1/campaigns/{campaign.pk}/clips/"
    upload = _clip_file(tmp_path)
    filler = fill(media_disk)
    response = api(adam).post(url, {"files": [upload], "scene": "Terror"}, format="multipart")
    assert response.status_code == 507, response.content
    assert response.json()["error"]["code"] == "storage_full"
    assert "full" in response.json()["error"]["message"]
    assert not Clip.objects.exists()
    assert _stored_files(media_disk / "media") == []  # no 0-byte or partial original

    filler.unlink()  # an administrator makes room; the same upload now works
    upload.seek(0)
    response = api(adam).post(url, {"files": [upload], "scene": "Terror"}, format="multipart")
    assert response.status_code == 201, response.content
    clip = Clip.objects.get()
    assert clip.original.name == f"originals/{clip.checksum[:2]}/{clip.checksum}"


@pytest.mark.worker
def test_a_transcode_on_a_full_disk_waits_for_room_and_leaves_no_truncated_file(
    real_broker, api, adam, campaign, media_disk, tmp_path
):
    """Before: the task failed for good, the clip stayed "processing" with no error and a
    truncated MP4, and a retry retried nothing."""
    url = f"/api/v1/campaigns/{campaign.pk}/clips/"
    response = api(adam).post(
        url, {"files": [_clip_file(tmp_path)], "scene": "Terror"}, format="multipart"
    )
    assert response.status_code == 201, response.content
    clip = Clip.objects.get()
    filler = fill(media_disk, leave=4096)
    worker = WorkerProcess(
        MEDIA_ROOT=str(media_disk / "media"), LSF_WORK_DIR=str(media_disk / "work")
    ).start()
    try:
        waiting = wait_for(
            lambda: (
                Clip.objects.filter(pk=clip.pk, status=MediaStatus.PENDING)
                .exclude(error="")
                .first()
            ),
            timeout=60,
        )
        assert "No space left on device" in waiting.error  # pending again, saying why
        assert not waiting.video
        assert not (media_disk / "media" / "clips").exists() or not _stored_files(
            media_disk / "media" / "clips"
        )
        assert not list(media_disk.rglob("*.part"))
        filler.unlink()  # room again: the retry (with backoff) finishes it
        wait_for(lambda: Clip.objects.get(pk=clip.pk).status == MediaStatus.READY, timeout=90)
    finally:
        worker.stop()
    clip.refresh_from_db()
    assert clip.error == ""
    assert clip.video.name == f"clips/{clip.pk}.mp4"
    assert clip.video.size > 1000


@pytest.mark.django_db
def test_retry_takes_clips_whose_worker_died(
    api, adam, campaign, django_capture_on_commit_callbacks
):
    """Before: ``ingestion/retry/`` retried only failed clips, 0 of those stuck in processing."""
    from datetime import timedelta

    from django.utils import timezone

    stuck = ClipFactory(status=MediaStatus.PROCESSING, video="", poster="")
    running = ClipFactory(status=MediaStatus.PROCESSING, video="", poster="")
    for clip in (stuck, running):
        Task.objects.create(campaign=campaign, clip=clip)
    Clip.objects.filter(pk=stuck.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=False):
        response = api(adam).post(
            f"/api/v1/campaigns/{campaign.pk}/ingestion/retry/", {}, format="json"
        )
    assert response.json() == {"retried": 1}
    assert Clip.objects.get(pk=stuck.pk).status == MediaStatus.PENDING
    assert Clip.objects.get(pk=running.pk).status == MediaStatus.PROCESSING  # a live worker
