"""Writes for clips: ingest files and frame folders, transcode them, retry failures.

Every import path (API upload, ``import_clips`` command, candidate generation, demo data) ends in
``clip_create``; every transcode goes through ``clip_process``. Campaigns are not known here:
``annotations.intake`` adds what was ingested to a campaign.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.fields.files import FieldFile
from django.db.models.functions import Now

from labelstudio_ferv import leases
from labelstudio_ferv.errors import InsufficientStorage, PayloadTooLarge, ValidationError
from labelstudio_ferv.queue import enqueue_on_commit

from . import media
from .models import Clip, MediaStatus, Scene, SourceVideo

logger = logging.getLogger(__name__)

ORIGINAL_FRAMES_SUFFIX = ".frames.zip"
# A transcode renews its lease (the clip's ``updated_at``) every HEARTBEAT_S while ffmpeg runs;
# a clip whose heartbeat is older than this has lost its worker and is sent again by the sweep.
CLIP_LEASE_S = 30
# Pending clips wait in the queue; they are sent again only after this long (longer than the
# longest retry countdown, so a clip in backoff is not sent twice).
PENDING_STALE_S = 900


@dataclass(frozen=True)
class IngestResult:
    """What happened to one input of an import: created, existing or rejected."""

    name: str
    status: str
    clip_id: int | None = None
    message: str = ""


def clip_create(
    *,
    path: Path,
    scene: Scene,
    name: str = "",
    reference_label: int | None = None,
    source_video: SourceVideo | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
) -> tuple[Clip, bool]:
    """Store a video file or a frame folder as a pending clip; transcode it after commit.

    Return ``(clip, created)``. The input is checked by content, not by its name; content that
    is already stored returns the existing clip, so importing the same input twice creates
    nothing. Raise ValidationError for an input that is not a video or a frame folder.
    """
    name = name or path.name
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise ValidationError(f"{name}: the time span ends ({end_s}) before it starts ({start_s})")
    try:
        kind = media.sniff_kind(path)
    except media.MediaError as exc:
        raise ValidationError(f"{name}: {exc.reason}")
    if kind not in ("video", "frames"):
        raise ValidationError(f"{name}: not a video file or a folder of frames (found {kind})")
    checksum = media.dir_sha256(path) if kind == "frames" else media.file_sha256(path)
    existing = Clip.objects.filter(checksum=checksum).first()
    if existing is not None:
        return existing, False
    stored = _store_original(path, kind, checksum)
    with transaction.atomic():
        clip, created = Clip.objects.get_or_create(
            checksum=checksum,
            defaults={
                "scene": scene,
                "name": name[:255],
                "original": stored,
                "reference_label": reference_label,
                "source_video": source_video,
                "start_s": start_s,
                "end_s": end_s,
            },
        )
        if created:
            # The heartbeat field: on the database's clock, like every later stamp.
            Clip.objects.filter(pk=clip.pk).update(updated_at=Now())
            clip_enqueue_processing(clip_id=clip.pk)
    if not created and clip.original.name != stored:
        # Another importer stored the same content between our check and our insert.
        default_storage.delete(stored)
    return clip, created


def _store_original(path: Path, kind: str, checksum: str) -> str:
    """Keep the original input in storage (a frame folder as one uncompressed zip)."""
    base = f"originals/{checksum[:2]}/{checksum}"
    if kind == "video":
        return store_content_addressed(base, path)
    with tempfile.TemporaryDirectory(prefix="lsf-zip-") as tmp:
        archive = Path(tmp) / "frames.zip"
        try:
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:
                for frame in sorted(p for p in path.iterdir() if p.is_file()):
                    bundle.write(frame, frame.name)
        except OSError as exc:
            raise _storage_error(exc) from exc
        return store_content_addressed(base + ORIGINAL_FRAMES_SUFFIX, archive)


def _storage_error(exc: OSError) -> Exception:
    if exc.errno in media.TRANSIENT_ERRNOS:
        return InsufficientStorage(
            "The media storage is full: the file was not stored. Try again once an "
            "administrator has made room."
        )
    return exc


def store_content_addressed(name: str, local: Path) -> str:
    """Store ``local`` under ``name`` (named by its content), all of it or nothing.

    A complete copy already there is reused; a partial one (a full disk, a killed process) is
    replaced, so the same content never ends up under a second name. Raise
    InsufficientStorage when the storage is full (nothing is left behind).
    """
    size = local.stat().st_size
    if default_storage.exists(name):
        if default_storage.size(name) == size:
            return name
        default_storage.delete(name)
    try:
        with local.open("rb") as handle:
            return default_storage.save(name, File(handle))
    except OSError as exc:
        _delete_partial(name, size)
        raise _storage_error(exc) from exc


def _delete_partial(name: str, size: int) -> None:
    with contextlib.suppress(OSError):
        if default_storage.exists(name) and default_storage.size(name) != size:
            default_storage.delete(name)


def clip_create_from_upload(
    *, upload: UploadedFile, scene: Scene, reference_label: int | None = None
) -> tuple[Clip, bool]:
    """Check an uploaded file's size, then ingest it like a file on disk."""
    limit = settings.CLIP_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise PayloadTooLarge(
            f"{upload.name}: {upload.size / 2**20:.1f} MiB is over the "
            f"{limit / 2**20:.1f} MiB limit for one clip"
        )
    with upload_path(upload) as path:
        return clip_create(
            path=path, scene=scene, name=upload.name or "", reference_label=reference_label
        )


@contextlib.contextmanager
def upload_path(upload: UploadedFile) -> Iterator[Path]:
    """Yield a path to the uploaded bytes (large uploads already sit in a temporary file)."""
    if hasattr(upload, "temporary_file_path"):
        yield Path(upload.temporary_file_path())
        return
    with tempfile.NamedTemporaryFile(prefix="lsf-upload-") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)
        handle.flush()
        yield Path(handle.name)


def clip_enqueue_processing(*, clip_id: int) -> None:
    """Enqueue the transcode of a clip once the current transaction commits.

    If the broker cannot be reached, the clip stays pending, marked as never sent (its
    ``updated_at`` set back past PENDING_STALE_S), so the next ``clips_requeue_stale`` (beat,
    every REQUEUE_STALE_SECONDS) sends it: the import itself never fails for it.
    """
    enqueue_on_commit(
        "clips.process_clip", clip_id, on_unavailable=lambda: _mark_unsent(clip_id=clip_id)
    )


def _mark_unsent(*, clip_id: int) -> None:
    Clip.objects.filter(pk=clip_id, status=MediaStatus.PENDING).update(
        updated_at=leases.cutoff(PENDING_STALE_S + 1)
    )


@contextlib.contextmanager
def _local_original(clip: Clip, scratch: Path) -> Iterator[Path]:
    """Yield a local path to the clip's original: a video file, or a frame folder unpacked
    under ``scratch``."""
    with _local_path(clip.original) as path:
        if not clip.original.name.endswith(ORIGINAL_FRAMES_SUFFIX):
            yield path
            return
        folder = scratch / "frames"
        folder.mkdir()
        with zipfile.ZipFile(path) as bundle:
            for member in bundle.namelist():
                # Frame names only: an archive we wrote has no folders, never trust paths.
                target = folder / Path(member).name
                with bundle.open(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        yield folder


@contextlib.contextmanager
def _local_path(field: FieldFile) -> Iterator[Path]:
    """Yield a local path to a stored file, downloading it when the storage is remote."""
    try:
        local = Path(field.path)
    except NotImplementedError:
        local = None
    if local is not None:
        if not local.exists():
            raise media.CorruptMediaError("the original file is missing from storage")
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="lsf-in-") as tmp:
        target = Path(tmp) / "original"
        with field.open("rb") as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        yield target


def _replace_stored(name: str, local: Path) -> str:
    """Store ``local`` under exactly ``name``, replacing an earlier copy a dead worker left.

    Raise TransientMediaError when the storage is full; no partial file is left in place.
    """
    if default_storage.exists(name):
        default_storage.delete(name)
    try:
        with local.open("rb") as handle:
            return default_storage.save(name, File(handle))
    except OSError as exc:
        _delete_partial(name, local.stat().st_size)
        if exc.errno in media.TRANSIENT_ERRNOS:
            raise media.TransientMediaError(f"could not store the clip: {exc.strerror}") from exc
        raise


def work_dir(kind: str, pk: int) -> Path:
    """Return the one scratch folder of a piece of work (``clip-12``); a new attempt empties
    it first, so what a killed worker left there goes with the next attempt (or the sweep)."""
    return Path(settings.WORK_DIR) / f"{kind}-{pk}"


@contextlib.contextmanager
def scratch_folder(kind: str, pk: int) -> Iterator[Path]:
    """Yield an empty work folder for ``kind``/``pk``, removed afterwards."""
    folder = work_dir(kind, pk)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def work_dirs_sweep(*, older_than_s: float = 600) -> int:
    """Remove work folders no running clip transcode owns (their worker died); return how many.

    A folder is left alone while its clip is processing or it changed recently.
    """
    root = Path(settings.WORK_DIR)
    if not root.is_dir():
        return 0
    removed = 0
    limit = time.time() - older_than_s
    for entry in os.scandir(root):
        kind, _, number = entry.name.partition("-")
        if not entry.is_dir(follow_symlinks=False) or not number.isdigit():
            continue
        if (
            kind == "clip"
            and Clip.objects.filter(pk=int(number), status=MediaStatus.PROCESSING).exists()
        ):
            continue
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_mtime < limit:
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
    return removed


def clip_process(*, clip_id: int) -> None:
    """Transcode a clip's original into the browser MP4 and poster, then mark it ready.

    Idempotent: a ready or failed clip is left alone, so a task delivered twice does the work
    once. The transcode holds a lease on the clip (``updated_at`` is its heartbeat, renewed
    while ffmpeg runs); a clip whose worker died is sent again by ``clips_requeue_stale`` once
    the lease ran out, and its work folder is emptied by the next attempt. Output names are
    fixed per clip and replaced whole, and the clip turns ready only after both files are
    stored (the database refuses ready without them).
    Raise TransientMediaError for failures worth retrying (the clip is pending again, with
    the reason); a corrupt input marks the clip failed with ffmpeg's reason and keeps the
    original.
    """
    lease = leases.claim(
        Clip,
        pk=clip_id,
        free=Q(status=MediaStatus.PENDING),
        held=Q(status=MediaStatus.PROCESSING),
        fields={"status": MediaStatus.PROCESSING},
        keep=("status",),
        beat_field="updated_at",
        lease_s=CLIP_LEASE_S,
    )
    if lease is None:
        return  # gone, ready, failed, or a live worker has it
    clip = Clip.objects.get(pk=clip_id)
    try:
        with scratch_folder("clip", clip_id) as scratch, _local_original(clip, scratch) as src:
            out_mp4, out_jpg = scratch / "video.mp4", scratch / "poster.jpg"
            probe = media.transcode(
                src,
                out_mp4,
                out_jpg,
                max_side=settings.CLIP_MAX_SIDE,
                max_pixels=settings.CLIP_MAX_SOURCE_PIXELS,
                scratch=scratch,
                tick=lease.beat,
            )
            lease.beat(force=True)
            video_name = _replace_stored(f"clips/{clip_id}.mp4", out_mp4)
            poster_name = _replace_stored(f"posters/{clip_id}.jpg", out_jpg)
    except leases.LeaseLost:
        logger.warning("clip %s: taken over by another worker", clip_id)
        return
    except media.CorruptMediaError as exc:
        lease.update(status=MediaStatus.FAILED, error=exc.reason[:2000], updated_at=Now())
        logger.warning("clip %s failed: %s", clip_id, exc.reason)
        return
    except OSError as exc:
        if exc.errno not in media.TRANSIENT_ERRNOS:
            raise
        exc = media.TransientMediaError(f"could not write the clip: {exc.strerror}")
        lease.update(status=MediaStatus.PENDING, error=exc.reason, updated_at=Now())
        raise exc
    except media.TransientMediaError as exc:
        # Pending again, saying why: the task retries with backoff, then fails it for good.
        lease.update(status=MediaStatus.PENDING, error=exc.reason[:2000], updated_at=Now())
        raise
    lease.update(
        status=MediaStatus.READY,
        video=video_name,
        poster=poster_name,
        duration_s=probe.duration_s,
        fps=probe.fps,
        frame_count=probe.frame_count,
        width=probe.width,
        height=probe.height,
        error="",
        updated_at=Now(),
    )


def clip_mark_failed(*, clip_id: int, reason: str) -> None:
    """Mark a clip failed with a reason in plain words; its original is kept for a retry."""
    logger.warning("clip %s failed: %s", clip_id, reason)
    Clip.objects.filter(pk=clip_id).exclude(status=MediaStatus.READY).update(
        status=MediaStatus.FAILED, error=reason[:2000], updated_at=Now()
    )


def clips_retry_failed(*, clips: QuerySet[Clip]) -> int:
    """Send failed clips, and clips whose worker stopped beating, to be processed again;
    return how many."""
    with transaction.atomic():
        retry = Q(status=MediaStatus.FAILED) | Q(status=MediaStatus.PROCESSING) & leases.expired(
            beat_field="updated_at", lease_s=CLIP_LEASE_S
        )
        ids = list(clips.filter(retry).values_list("pk", flat=True))
        Clip.objects.filter(retry, pk__in=ids).update(
            status=MediaStatus.PENDING, error="", updated_at=Now()
        )
        for clip_id in ids:
            clip_enqueue_processing(clip_id=clip_id)
    return len(ids)


def clips_requeue_stale(
    *, older_than_s: int = PENDING_STALE_S, lease_s: float = CLIP_LEASE_S
) -> int:
    """Enqueue again clips left pending for longer than ``older_than_s``, and clips whose
    worker stopped beating for ``lease_s`` (it died: they are pending again).

    This covers what acks_late cannot: a message lost while the broker was down, a worker that
    died before it received its task, or one killed mid-transcode (its message only returns
    after the broker's visibility timeout). Processing is idempotent and claimed, so a
    duplicate message is harmless. Times are the database's clock.
    """
    stale = Q(status=MediaStatus.PENDING) & leases.expired(
        beat_field="updated_at", lease_s=older_than_s
    ) | Q(status=MediaStatus.PROCESSING) & leases.expired(beat_field="updated_at", lease_s=lease_s)
    with transaction.atomic():
        # Locked: a worker renewing its lease meanwhile waits, then finds it lost.
        rows = Clip.objects.filter(stale).select_for_update(skip_locked=True)
        ids = list(rows.values_list("pk", flat=True)[:10000])
        # Pending (a dead worker's clip is free to claim) and touched, so the next sweep
        # leaves them alone while they wait in the queue.
        Clip.objects.filter(pk__in=ids).update(status=MediaStatus.PENDING, updated_at=Now())
        for clip_id in ids:
            clip_enqueue_processing(clip_id=clip_id)
    return len(ids)


def clips_ingest(*, items: list[tuple], reference_labels: bool = False) -> list[IngestResult]:
    """Ingest several inputs; one bad input never stops the others.

    ``items`` holds ``(name, scene, source)`` or ``(name, scene, source, extra)``: ``source`` is
    an UploadedFile or a Path, ``scene`` None means no scene was given (the input is rejected)
    and ``extra`` may hold ``start_s``, ``end_s`` and ``source_video`` (an id or title). With
    ``reference_labels`` the expression named by a release-style path is kept as the clip's
    reference label. Each accepted input's result carries its clip id.
    """
    results: list[IngestResult] = []
    for name, scene, source, *rest in items:
        extra = dict(rest[0]) if rest else {}
        try:
            if scene is None:
                raise ValidationError(f"{name}: no scene given, or no scene by that name")
            label = release_label(name) if reference_labels else None
            if isinstance(source, UploadedFile):
                clip, created = clip_create_from_upload(
                    upload=source, scene=scene, reference_label=label
                )
            else:
                if "source_video" in extra:
                    extra["source_video"] = _source_video_lookup(name, extra["source_video"])
                clip, created = clip_create(
                    path=Path(source), scene=scene, name=name, reference_label=label, **extra
                )
        except (ValidationError, PayloadTooLarge) as exc:
            results.append(IngestResult(name=name, status="rejected", message=exc.message))
            continue
        except media.TransientMediaError as exc:
            results.append(IngestResult(name=name, status="rejected", message=exc.reason))
            continue
        status = "created" if created else "existing"
        results.append(IngestResult(name=name, status=status, clip_id=clip.pk))
    return results


def _source_video_lookup(name: str, value: str) -> SourceVideo:
    query = Q(title=value) | (Q(pk=int(value)) if value.isdigit() else Q())
    video = SourceVideo.objects.filter(query).first()
    if video is None:
        raise ValidationError(f"{name}: unknown source video {value!r} (import it first)")
    return video


def release_label(name: str) -> int | None:
    """Return the class a release-style path names (``Scene/Emotion/0001``), or None."""
    from labelstudio_ferv.expressions import CLASS_NAMES

    parts = Path(name).parts
    for part in parts[1:-1] if len(parts) > 2 else parts[:-1]:
        if part in CLASS_NAMES:
            return CLASS_NAMES.index(part)
    return None


def scene_lookup(value: str | int | None) -> Scene | None:
    """Find a scene by id, release folder name or display name (case-insensitive)."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    if text.isdigit():
        return Scene.objects.filter(pk=int(text)).first()
    return Scene.objects.filter(Q(folder__iexact=text) | Q(name__iexact=text)).first()
