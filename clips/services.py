"""Writes for clips: ingest files and frame folders, transcode them, retry failures.

Every import path (API upload, ``import_clips`` command, candidate generation, demo data) ends in
``clip_create``; every transcode goes through ``clip_process``. Campaigns are not known here:
``annotations.intake`` adds what was ingested to a campaign.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
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
from django.utils import timezone

from labelstudio_ferv import leases
from labelstudio_ferv.errors import PayloadTooLarge, ValidationError
from labelstudio_ferv.queue import enqueue_on_commit

from . import media
from .models import Clip, MediaStatus, Scene, SourceVideo

logger = logging.getLogger(__name__)

ORIGINAL_FRAMES_SUFFIX = ".frames.zip"


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
            clip_enqueue_processing(clip_id=clip.pk)
    if not created and clip.original.name != stored:
        # Another importer stored the same content between our check and our insert.
        default_storage.delete(stored)
    return clip, created


def _store_original(path: Path, kind: str, checksum: str) -> str:
    """Keep the original input in storage (a frame folder as one uncompressed zip)."""
    base = f"originals/{checksum[:2]}/{checksum}"
    if kind == "video":
        with path.open("rb") as handle:
            return default_storage.save(base, File(handle))
    with tempfile.TemporaryDirectory(prefix="lsf-zip-") as tmp:
        archive = Path(tmp) / "frames.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:
            for frame in sorted(p for p in path.iterdir() if p.is_file()):
                bundle.write(frame, frame.name)
        with archive.open("rb") as handle:
            return default_storage.save(base + ORIGINAL_FRAMES_SUFFIX, File(handle))


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

    If the broker cannot be reached, the clip stays pending and ``clips_requeue_stale`` (run
    periodically by beat) sends it again later: the import itself never fails for it.
    """
    enqueue_on_commit("clips.process_clip", clip_id)


@contextlib.contextmanager
def _local_original(clip: Clip) -> Iterator[Path]:
    """Yield a local path to the clip's original: a video file, or an unpacked frame folder."""
    with contextlib.ExitStack() as stack:
        path = stack.enter_context(_local_path(clip.original))
        if clip.original.name.endswith(ORIGINAL_FRAMES_SUFFIX):
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lsf-frames-")))
            with zipfile.ZipFile(path) as bundle:
                for member in bundle.namelist():
                    # Frame names only: an archive we wrote has no folders, never trust paths.
                    target = folder / Path(member).name
                    with bundle.open(member) as src, target.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
            path = folder
        yield path


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
    """Store ``local`` under exactly ``name``, replacing an earlier copy a dead worker left."""
    if default_storage.exists(name):
        default_storage.delete(name)
    with local.open("rb") as handle:
        return default_storage.save(name, File(handle))


def clip_process(*, clip_id: int) -> None:
    """Transcode a clip's original into the browser MP4 and poster, then mark it ready.

    Idempotent: a ready or failed clip is left alone, so a task delivered twice does the work
    once. A clip found ``processing`` is one whose worker died (or a duplicate delivery): it is
    done again; output names are fixed per clip and replaced whole, and the clip turns ready
    only after both files are stored (the database refuses ready without them).
    Raise TransientMediaError for failures worth retrying; a corrupt input marks the clip
    failed with ffmpeg's reason and keeps the original.
    """
    # A transcode is short and idempotent: a processing clip is taken over at once (a lease of
    # 0 s on ``updated_at``), and whichever run finishes writes the same files.
    lease = leases.claim(
        Clip,
        pk=clip_id,
        free=Q(status=MediaStatus.PENDING),
        held=Q(status=MediaStatus.PROCESSING),
        fields={"status": MediaStatus.PROCESSING},
        beat_field="updated_at",
        lease_s=0,
    )
    if lease is None:
        return  # gone, ready or failed: nothing to do
    clip = Clip.objects.get(pk=clip_id)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="lsf-out-") as tmp,
            _local_original(clip) as src,
        ):
            out_mp4, out_jpg = Path(tmp) / "video.mp4", Path(tmp) / "poster.jpg"
            probe = media.transcode(src, out_mp4, out_jpg, max_side=settings.CLIP_MAX_SIDE)
            video_name = _replace_stored(f"clips/{clip_id}.mp4", out_mp4)
            poster_name = _replace_stored(f"posters/{clip_id}.jpg", out_jpg)
    except media.CorruptMediaError as exc:
        clip_mark_failed(clip_id=clip_id, reason=exc.reason)
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
        updated_at=timezone.now(),
    )


def clip_mark_failed(*, clip_id: int, reason: str) -> None:
    """Mark a clip failed with a reason in plain words; its original is kept for a retry."""
    logger.warning("clip %s failed: %s", clip_id, reason)
    Clip.objects.filter(pk=clip_id).exclude(status=MediaStatus.READY).update(
        status=MediaStatus.FAILED, error=reason[:2000], updated_at=timezone.now()
    )


def clips_retry_failed(*, clips: QuerySet[Clip]) -> int:
    """Send failed clips back to be processed again; return how many."""
    with transaction.atomic():
        ids = list(clips.filter(status=MediaStatus.FAILED).values_list("pk", flat=True))
        Clip.objects.filter(pk__in=ids, status=MediaStatus.FAILED).update(
            status=MediaStatus.PENDING, error="", updated_at=timezone.now()
        )
        for clip_id in ids:
            clip_enqueue_processing(clip_id=clip_id)
    return len(ids)


def clips_requeue_stale(*, older_than_s: int = 900) -> int:
    """Enqueue again clips left pending or processing for longer than ``older_than_s``.

    This covers what acks_late cannot: a message lost while the broker was down, or a worker
    that died before it received its task. Processing is idempotent, so a clip still being
    worked on at worst is converted twice.
    """
    stale = Clip.objects.filter(
        Q(status=MediaStatus.PENDING) | Q(status=MediaStatus.PROCESSING),
        leases.expired(beat_field="updated_at", lease_s=older_than_s),
    )
    with transaction.atomic():
        ids = list(stale.values_list("pk", flat=True)[:10000])
        # Touch them, so the next sweep leaves them alone while they wait in the queue.
        Clip.objects.filter(pk__in=ids).update(updated_at=timezone.now())
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
