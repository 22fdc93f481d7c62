"""Writes for clips: create a clip from a file, and turn it into a browser-ready video."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.fields.files import FieldFile

from labelstudio_ferv.errors import ValidationError

from . import media
from .models import Clip, MediaStatus, Scene

logger = logging.getLogger(__name__)


def clip_create(
    *,
    path: Path,
    scene: Scene,
    name: str = "",
    reference_label: int | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
) -> tuple[Clip, bool]:
    """Store a video file as a new pending clip and enqueue its transcode after commit.

    Return ``(clip, created)``; a file whose content is already stored returns the existing clip,
    so importing the same file twice creates nothing.
    """
    kind = media.sniff_kind(path)
    if kind != "video":
        raise ValidationError(f"{name or path.name}: not a video file ({kind})")
    checksum = media.file_sha256(path)
    existing = Clip.objects.filter(checksum=checksum).first()
    if existing is not None:
        return existing, False
    with path.open("rb") as handle:
        stored = default_storage.save(f"originals/{checksum[:2]}/{checksum}", File(handle))
    with transaction.atomic():
        clip, created = Clip.objects.get_or_create(
            checksum=checksum,
            defaults={
                "scene": scene,
                "name": name or path.name,
                "original": stored,
                "reference_label": reference_label,
                "start_s": start_s,
                "end_s": end_s,
            },
        )
        if created:
            clip_enqueue_processing(clip_id=clip.pk)
    if not created:
        # Another importer stored the same content between our check and our insert.
        default_storage.delete(stored)
    return clip, created


def clip_enqueue_processing(*, clip_id: int) -> None:
    """Enqueue the transcode of a clip once the current transaction commits."""
    from .tasks import process_clip

    transaction.on_commit(lambda: process_clip.delay(clip_id))


@contextlib.contextmanager
def _local_path(field: FieldFile) -> Iterator[Path]:
    """Yield a local path to a stored file, downloading it when the storage is remote."""
    try:
        yield Path(field.path)
        return
    except NotImplementedError:
        pass
    with tempfile.TemporaryDirectory(prefix="lsf-in-") as tmp:
        target = Path(tmp) / "original"
        with field.open("rb") as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        yield target


def _replace_stored(name: str, local: Path) -> str:
    """Store ``local`` under exactly ``name``, replacing an earlier partial or stale copy."""
    if default_storage.exists(name):
        default_storage.delete(name)
    with local.open("rb") as handle:
        return default_storage.save(name, File(handle))


def clip_process(*, clip_id: int) -> None:
    """Transcode a clip's original into the browser MP4 and poster, then mark it ready.

    Idempotent: a ready or failed clip is left alone, so a task delivered twice does the work
    once. Output names are fixed per clip, so a retry after a crash overwrites what a dead worker
    may have left behind, and the clip turns ready only after both files are stored.
    """
    claimed = Clip.objects.filter(
        pk=clip_id, status__in=[MediaStatus.PENDING, MediaStatus.PROCESSING]
    ).update(status=MediaStatus.PROCESSING)
    if not claimed:
        return  # gone, ready or failed: nothing to do
    clip = Clip.objects.get(pk=clip_id)
    try:
        with tempfile.TemporaryDirectory(prefix="lsf-out-") as tmp, _local_path(clip.original) as src:
            out_mp4 = Path(tmp) / "video.mp4"
            out_jpg = Path(tmp) / "poster.jpg"
            probe = media.transcode(src, out_mp4, out_jpg, max_side=settings.CLIP_MAX_SIDE)
            video_name = _replace_stored(f"clips/{clip_id}.mp4", out_mp4)
            poster_name = _replace_stored(f"posters/{clip_id}.jpg", out_jpg)
    except media.CorruptMediaError as exc:
        Clip.objects.filter(pk=clip_id).update(status=MediaStatus.FAILED, error=exc.reason)
        logger.warning("clip %s failed: %s", clip_id, exc.reason)
        return
    Clip.objects.filter(pk=clip_id, status=MediaStatus.PROCESSING).update(
        status=MediaStatus.READY,
        video=video_name,
        poster=poster_name,
        duration_s=probe.duration_s,
        fps=probe.fps,
        frame_count=probe.frame_count,
        width=probe.width,
        height=probe.height,
        error="",
    )
