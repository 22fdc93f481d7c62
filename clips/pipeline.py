"""Writes for source videos: import a raw video, run its candidate pipeline stage by stage, retry.

The pure work is in ``candidates/``; this module stores every stage's output on the
``SourceVideo`` row, hands the cut clips to ``services.clip_create`` (the one ingestion path) and
announces them (``signals.source_clips_cut``): the campaign a video feeds is the business of
``annotations.intake``. The design is described in CANDIDATES.md, "In the application".
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import OperationalError, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.module_loading import import_string

from labelstudio_ferv import leases
from labelstudio_ferv.errors import Conflict, PayloadTooLarge, ValidationError
from labelstudio_ferv.queue import enqueue_on_commit

from . import candidates, media, services
from .models import PIPELINE_STAGES, Candidate, Clip, MediaStatus, Scene, SourceVideo, Stage
from .signals import source_clips_cut

logger = logging.getLogger(__name__)

# A processing stage whose heartbeat is older than the lease (labelstudio_ferv.leases) belongs
# to a worker that died: another delivery may claim it.
LEASE_S = leases.LEASE_S
# A pending stage is sent again after this long (a lost message); at once when its send failed.
PENDING_STALE_S = 900
# Broker priorities (Redis: 0 is served first). The decode of a new video waits behind the later
# stages of videos already started and behind clip transcodes, so each video runs to its end
# and its clips reach annotators before the next video is decoded; previews come last.
SCAN_PRIORITY = 6
PREVIEW_PRIORITY = 9


def source_max_upload_bytes() -> int:
    """The largest source video an upload may send (``settings.SOURCE_MAX_UPLOAD_BYTES``)."""
    return getattr(settings, "SOURCE_MAX_UPLOAD_BYTES", 4 * 1024**3)


def default_detector() -> str:
    """The face detector new videos are scanned with (``settings.CANDIDATE_FACE_DETECTOR``)."""
    return getattr(settings, "CANDIDATE_FACE_DETECTOR", "clips.candidates.HaarFaceDetector")


# FERV39k's choices where the paper gives them (8..47 frames, 224 px), else the candidate
# module's defaults. Every run records all of them, so "the same settings" is exact.
DEFAULT_PARAMS: dict[str, Any] = {
    "sample_every": candidates.DEFAULT_SAMPLE_EVERY,
    "analysis_width": candidates.DEFAULT_ANALYSIS_WIDTH,
    "cut_threshold": candidates.DEFAULT_CUT_THRESHOLD,
    "cut_ratio": candidates.DEFAULT_CUT_RATIO,
    "min_shot_frames": candidates.DEFAULT_MIN_SHOT_FRAMES,
    "iou_threshold": 0.3,
    "max_missed": 3,
    "min_hits": 2,
    "min_frames": 8,
    "max_frames": 47,
    "margin": 0.25,
    "out_size": 224,
}
# The first stage whose output each parameter changes: new settings rerun from there.
PARAM_STAGE = {
    "detector": Stage.SCAN,
    "sample_every": Stage.SCAN,
    "analysis_width": Stage.SCAN,
    "cut_threshold": Stage.SHOTS,
    "cut_ratio": Stage.SHOTS,
    "min_shot_frames": Stage.SHOTS,
    "iou_threshold": Stage.TRACKS,
    "max_missed": Stage.TRACKS,
    "min_hits": Stage.TRACKS,
    "min_frames": Stage.CLIPS,
    "max_frames": Stage.CLIPS,
    "margin": Stage.CLIPS,
    "out_size": Stage.CLIPS,
}
# What an upload may choose; the rest belongs to the deployment.
USER_PARAMS = ("min_frames", "max_frames", "margin", "sample_every")
# The stored output (and its counters) each stage writes.
STAGE_FIELDS = {
    Stage.SCAN: ("scan",),
    Stage.SHOTS: ("shots", "shot_count"),
    Stage.TRACKS: ("tracks", "track_count"),
    Stage.CLIPS: ("plan", "clips_found", "explanation"),
}
_FIELD_EMPTY = {"explanation": ""}


def _next_stage(stage: str) -> str:
    index = PIPELINE_STAGES.index(Stage(stage))
    return PIPELINE_STAGES[index + 1] if index + 1 < len(PIPELINE_STAGES) else Stage.DONE


def _order(stage: str) -> int:
    return len(PIPELINE_STAGES) if stage == Stage.DONE else PIPELINE_STAGES.index(Stage(stage))


# --------------------------------------------------------------------------------------------
# Import


def check_params(given: dict[str, Any] | None = None, *, base: dict | None = None) -> dict:
    """Return complete pipeline settings: ``base`` (or the defaults) with the user's choices.

    Raise ValidationError for unknown names or values outside what makes sense.
    """
    params = {**DEFAULT_PARAMS, "detector": default_detector(), **(base or {})}
    given = {k: v for k, v in (given or {}).items() if v is not None}
    unknown = sorted(set(given) - set(USER_PARAMS))
    if unknown:
        raise ValidationError(f"unknown setting(s): {', '.join(unknown)}")
    params.update(given)
    try:
        low, high = int(params["min_frames"]), int(params["max_frames"])
        margin, every = float(params["margin"]), int(params["sample_every"])
    except (TypeError, ValueError):
        raise ValidationError("min_frames, max_frames and sample_every are whole numbers")
    if not 1 <= low <= high <= 1000:
        raise ValidationError(
            f"clip length limits must satisfy 1 <= min_frames <= max_frames <= 1000 "
            f"(got {low}..{high})"
        )
    if not 0 <= margin <= 2:
        raise ValidationError("margin is a share of the face size between 0 and 2")
    if not 1 <= every <= 25:
        raise ValidationError("sample_every must be between 1 and 25 frames")
    params.update(min_frames=low, max_frames=high, margin=margin, sample_every=every)
    return params


def source_video_create(
    *,
    path: Path,
    scene: Scene,
    title: str = "",
    params: dict[str, Any] | None = None,
    created_by=None,
) -> tuple[SourceVideo, bool]:
    """Store a raw video and start its pipeline after commit.

    Return ``(video, created)``. The video is known by its content: importing it again returns
    the existing row and starts nothing. Raise ValidationError for a file that is not a
    readable video.
    """
    title = (title or path.name)[:255]
    params = check_params(params)
    try:
        kind = media.sniff_kind(path)
    except media.MediaError as exc:
        raise ValidationError(f"{title}: {exc.reason}")
    if kind != "video":
        raise ValidationError(f"{title}: not a video file (found {kind})")
    checksum = media.file_sha256(path)
    existing = SourceVideo.objects.filter(checksum=checksum).first()
    if existing is not None:
        return existing, False
    probe: media.ProbeResult | None = None
    try:
        probe = media.probe(path)
        # Frames too large to decode are refused now, not after a worker spent gigabytes.
        media.check_frame_size(probe.width, probe.height, settings.CLIP_MAX_SOURCE_PIXELS)
    except media.CorruptMediaError as exc:
        raise ValidationError(f"{title}: {exc.reason}")
    except media.TransientMediaError:
        logger.warning("could not probe %s now; the scan will", title, exc_info=True)
    stored = _store_original(path, checksum, title)
    with transaction.atomic():
        video, created = SourceVideo.objects.get_or_create(
            checksum=checksum,
            defaults={
                "scene": scene,
                "title": title,
                "original": stored,
                "params": params,
                "created_by": created_by,
                "duration_s": probe.duration_s if probe else None,
                "fps": probe.fps if probe else None,
                "frame_count": probe.frame_count if probe else None,
                "width": probe.width if probe else None,
                "height": probe.height if probe else None,
            },
        )
        if created:
            _enqueue_stage(video.pk, Stage.SCAN)
            if probe is not None and not _browser_playable(path, probe):
                _enqueue_preview(video.pk)
    if not created:
        # Another importer stored the same content between our check and our insert.
        default_storage.delete(stored)
        return video, False
    return video, True


def source_video_check_upload(*, upload: UploadedFile) -> None:
    """Raise PayloadTooLarge for an uploaded source video over the size limit."""
    limit = source_max_upload_bytes()
    if upload.size is not None and upload.size > limit:
        raise PayloadTooLarge(
            f"{upload.name}: {upload.size / 2**20:.0f} MiB is over the "
            f"{limit / 2**20:.0f} MiB limit for a source video"
        )


def source_video_enqueue_pending(*, video_id: int) -> None:
    """Send the next stage of a video that waits for a worker (a video adopted again)."""
    row = SourceVideo.objects.filter(pk=video_id, status=MediaStatus.PENDING).first()
    if row is not None:
        _enqueue_stage(row.pk, row.stage)


def _store_original(path: Path, checksum: str, name: str) -> str:
    """Keep the raw video in storage, under its content hash and a telling extension (a
    browser that plays it from there goes by the extension's content type)."""
    with path.open("rb") as handle:
        head = handle.read(12)
        suffix = Path(name).suffix.lower()
        if head[4:8] == b"ftyp":
            suffix = ".mp4"
        elif not re.fullmatch(r"\.[a-z0-9]{2,5}", suffix):
            suffix = ""
    # All of it or nothing; a full disk is InsufficientStorage (507), leaving no partial file.
    return services.store_content_addressed(f"sources/{checksum[:2]}/{checksum}{suffix}", path)


def _browser_playable(path: Path, probe: media.ProbeResult) -> bool:
    """H.264 in an MP4/MOV file plays in every browser; anything else gets a preview copy."""
    with path.open("rb") as handle:
        head = handle.read(12)
    return probe.codec == "h264" and head[4:8] == b"ftyp"


def _enqueue_stage(video_id: int, stage: str) -> None:
    """Send one stage of a video's pipeline to the workers once the transaction commits.

    If the broker is down the video stays pending, marked as never sent, and the next
    ``source_videos_requeue_stale`` (beat) sends it again.
    """
    priority = SCAN_PRIORITY if stage == Stage.SCAN else None

    def unsent() -> None:
        SourceVideo.objects.filter(pk=video_id, stage=stage, status=MediaStatus.PENDING).update(
            updated_at=leases.cutoff(PENDING_STALE_S + 1)
        )

    enqueue_on_commit(
        "clips.run_source_stage",
        video_id,
        str(stage),
        priority=priority,
        on_unavailable=unsent,
    )


def _enqueue_preview(video_id: int) -> None:
    enqueue_on_commit("clips.make_source_preview", video_id, priority=PREVIEW_PRIORITY)


# --------------------------------------------------------------------------------------------
# Running a stage


class StageBusy(Exception):
    """Another worker runs this stage right now (its heartbeat is fresh)."""


class TransientStageError(Exception):
    """The stage failed for a reason that may pass; it is pending again, to be retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _StageFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Claim:
    """A claimed stage: its lease, and the progress it publishes with every heartbeat."""

    video_id: int
    stage: str
    lease: leases.Lease
    progress: dict

    def report(self, done: int, total: int, *, force: bool = False) -> None:
        """Record progress; renew the heartbeat (and publish it) every HEARTBEAT_S at most.

        Raise LeaseLost when another worker took the stage over.
        """
        self.progress[self.stage] = {"done": int(done), "total": int(max(total, done))}
        self.lease.beat(force=force, progress=self.progress)

    def guard(self) -> Q:
        return self.lease.guard()


def source_video_run_stage(*, video_id: int, stage: str) -> None:
    """Run one pipeline stage of a video if it is due, then enqueue the next stage.

    Return quietly when the video is gone or the stage is not due (a duplicate or late
    delivery). Raise StageBusy when another worker holds the stage with a fresh heartbeat, and
    TransientStageError when it failed for a reason that may pass (it is pending again). Any
    other failure marks the video failed at this stage with the reason in plain words.
    """
    claim = _claim(video_id, stage)
    if claim is None:
        return
    video = SourceVideo.objects.select_related("scene").get(pk=video_id)
    params = {**DEFAULT_PARAMS, "detector": default_detector(), **video.params}
    started = time.monotonic()
    try:
        fields = _RUNNERS[stage](video, params, claim)
    except leases.LeaseLost:
        logger.warning("video %s: stage %s was taken over by another worker", video_id, stage)
        return
    except OperationalError:
        raise  # the database is unreachable: nothing can be recorded; the task retries
    except (candidates.CandidateError, media.MediaError, _StageFailed) as exc:
        if isinstance(exc, media.TransientMediaError):
            _release(claim)
            raise TransientStageError(exc.reason)
        _mark_failed(claim, exc.reason)
        return
    except OSError as exc:
        if exc.errno in media.TRANSIENT_ERRNOS:
            _release(claim)
            raise TransientStageError(f"{exc.strerror} ({exc.filename or 'no file'})")
        _mark_failed(claim, f"could not read or write a file: {exc}")
        return
    except SoftTimeLimitExceeded:
        _mark_failed(claim, "took longer than the time limit for one stage")
        return
    except Exception as exc:  # a bug: say where, keep the worker alive, let an admin retry
        logger.exception("video %s: stage %s crashed", video_id, stage)
        _mark_failed(claim, f"internal error: {type(exc).__name__}: {exc}")
        return
    entry = claim.progress.setdefault(stage, {"done": 1, "total": 1})
    entry["seconds"] = round(time.monotonic() - started, 3)
    _finish(claim, fields)


def _claim(video_id: int, stage: str) -> _Claim | None:
    lease = leases.claim(
        SourceVideo,
        pk=video_id,
        match={"stage": stage},
        free=Q(status=MediaStatus.PENDING),
        held=Q(status=MediaStatus.PROCESSING),
        fields={"status": MediaStatus.PROCESSING},
        keep=("status",),
        stamps=("updated_at",),
    )
    if lease is None:
        busy = SourceVideo.objects.filter(
            pk=video_id, stage=stage, status=MediaStatus.PROCESSING
        ).exists()
        if busy:
            raise StageBusy(f"video {video_id}: stage {stage} is running elsewhere")
        return None  # gone, failed, or already past this stage
    progress = SourceVideo.objects.values_list("progress", flat=True).get(pk=video_id) or {}
    return _Claim(video_id=video_id, stage=stage, lease=lease, progress=dict(progress))


def _finish(claim: _Claim, fields: dict[str, Any]) -> None:
    following = _next_stage(claim.stage)
    now = Now()
    with transaction.atomic():
        moved = SourceVideo.objects.filter(claim.guard()).update(
            stage=following,
            status=MediaStatus.READY if following == Stage.DONE else MediaStatus.PENDING,
            failed_stage="",
            error="",
            progress=claim.progress,
            heartbeat_at=None,
            updated_at=now,
            **fields,
        )
        if not moved:
            logger.warning(
                "video %s: stage %s finished after losing its claim", claim.video_id, claim.stage
            )
            return
        if following != Stage.DONE:
            _enqueue_stage(claim.video_id, following)


def _release(claim: _Claim) -> None:
    """Put a stage back to pending, for the task to retry it."""
    SourceVideo.objects.filter(claim.guard()).update(
        status=MediaStatus.PENDING, heartbeat_at=None, updated_at=Now()
    )


def _mark_failed(claim: _Claim, reason: str) -> None:
    logger.warning("video %s failed at stage %s: %s", claim.video_id, claim.stage, reason)
    SourceVideo.objects.filter(claim.guard()).update(
        status=MediaStatus.FAILED,
        failed_stage=claim.stage,
        error=reason[:2000],
        progress=claim.progress,
        heartbeat_at=None,
        updated_at=Now(),
    )


def source_video_mark_failed(*, video_id: int, stage: str, reason: str) -> None:
    """Mark a video failed at ``stage`` (a task that gave up retrying a transient error)."""
    logger.warning("video %s failed at stage %s: %s", video_id, stage, reason)
    SourceVideo.objects.filter(pk=video_id, stage=stage).exclude(status=MediaStatus.READY).update(
        status=MediaStatus.FAILED,
        failed_stage=stage,
        error=reason[:2000],
        heartbeat_at=None,
        updated_at=Now(),
    )


# --------------------------------------------------------------------------------------------
# The stages


def _detector(params: dict) -> candidates.FaceDetector:
    try:
        detector = import_string(params["detector"])()
    except ImportError as exc:
        raise _StageFailed(f"the face detector {params['detector']} cannot be loaded: {exc}")
    if not isinstance(detector, candidates.FaceDetector):
        raise _StageFailed(f"{params['detector']} has no detect(frame) method")
    return detector


def _run_scan(video: SourceVideo, params: dict, claim: _Claim) -> dict[str, Any]:
    """Decode once: cut scores for every frame, faces on every sample_every-th frame."""
    total = video.frame_count or 0
    claim.report(0, total, force=True)
    with services._local_path(video.original) as path:
        claim.report(0, total, force=True)  # a download from remote storage may take a while
        scan = candidates.scan_video(
            path,
            detector=_detector(params),
            sample_every=params["sample_every"],
            analysis_width=params["analysis_width"],
            progress=lambda done: claim.report(done, max(total, done)),
        )
    claim.report(scan.frame_count, scan.frame_count)
    if scan.frame_count == 0:
        raise _StageFailed("no frame of the video could be decoded")
    return {
        "scan": scan.to_dict(),
        "frame_count": scan.frame_count,
        "fps": scan.info.fps,
        "width": scan.info.width,
        "height": scan.info.height,
        "duration_s": round(scan.duration_s, 3),
    }


def _run_shots(video: SourceVideo, params: dict, claim: _Claim) -> dict[str, Any]:
    """Hard cuts from the stored cut scores."""
    scan = candidates.VideoScan.from_dict(video.scan)
    shots = candidates.shots_from_scan(
        scan,
        threshold=params["cut_threshold"],
        ratio=params["cut_ratio"],
        min_shot_frames=params["min_shot_frames"],
    )
    claim.report(len(shots), len(shots))
    return {"shots": [s.to_dict() for s in shots], "shot_count": len(shots)}


def _run_tracks(video: SourceVideo, params: dict, claim: _Claim) -> dict[str, Any]:
    """Face tracks inside each shot, from the stored detections."""
    scan = candidates.VideoScan.from_dict(video.scan)
    shots = [candidates.Shot.from_dict(s) for s in video.shots]
    tracks = candidates.track_faces(
        scan,
        shots,
        iou_threshold=params["iou_threshold"],
        max_missed=params["max_missed"],
        min_hits=params["min_hits"],
    )
    claim.report(len(shots), len(shots))
    return {"tracks": [t.to_dict() for t in tracks], "track_count": len(tracks)}


def _run_clips(video: SourceVideo, params: dict, claim: _Claim) -> dict[str, Any]:
    """Plan the candidate clips, cut each one, ingest it and announce it."""
    tracks = [candidates.Track.from_dict(t) for t in video.tracks]
    plan = candidates.plan_clips(
        tracks,
        min_frames=params["min_frames"],
        max_frames=params["max_frames"],
        margin=params["margin"],
        out_size=params["out_size"],
    )
    explanation = ""
    if not plan:
        scan = candidates.VideoScan.from_dict(video.scan)
        shots = [candidates.Shot.from_dict(s) for s in video.shots]
        explanation = (
            candidates.explain(scan, shots, tracks, plan, min_frames=params["min_frames"]) or ""
        )
    fields = {
        "plan": [c.to_dict() for c in plan],
        "clips_found": len(plan),
        "explanation": explanation,
    }
    # Publish the plan now: the detail shows how many clips are coming while they are cut.
    SourceVideo.objects.filter(claim.guard()).update(**fields)
    _cut_and_ingest(video, plan, claim, fps=tracks[0].fps if tracks else 25.0)
    return fields


def _candidate_key(c: candidates.CandidateClip) -> tuple[int, int, int, int, int]:
    return (c.start_frame, c.end_frame, c.crop.x, c.crop.y, c.crop.w)


def _row_key(row: Candidate) -> tuple[int, int, int, int, int]:
    return (row.start_frame, row.end_frame, row.crop_x, row.crop_y, row.crop_size)


def _cut_and_ingest(
    video: SourceVideo, plan: list[candidates.CandidateClip], claim: _Claim, *, fps: float
) -> None:
    wanted = {_candidate_key(c): c for c in plan}
    # Candidates an earlier run planned but this one does not (other settings, a better
    # detector), and that never became a clip, are dropped; those with a clip stay with it.
    stale = [
        row.pk
        for row in Candidate.objects.filter(source_video=video, clip=None)
        if _row_key(row) not in wanted
    ]
    Candidate.objects.filter(pk__in=stale).delete()
    # ignore_conflicts: a rerun finds the rows it made before (the unique span and crop).
    Candidate.objects.bulk_create(
        [
            Candidate(
                source_video=video,
                track_id=c.track_id,
                piece=c.piece,
                shot_index=c.shot_index,
                start_frame=c.start_frame,
                end_frame=c.end_frame,
                start_s=c.start_s,
                end_s=c.end_s,
                crop_x=c.crop.x,
                crop_y=c.crop.y,
                crop_size=c.crop.w,
                boxes=[b.to_list() for b in c.boxes],
            )
            for c in plan
        ],
        ignore_conflicts=True,
    )
    rows = {_row_key(r): r for r in Candidate.objects.filter(source_video=video)}
    todo = {key: c for key, c in wanted.items() if rows[key].clip_id is None}
    done = len(plan) - len(todo)
    claim.report(done, len(plan), force=True)
    failures: list[str] = []
    label = video.title or f"video{video.pk}"
    with (
        tempfile.TemporaryDirectory(prefix="lsf-cut-") as tmp,
        services._local_path(video.original) as source,
    ):
        # One decode for many clips; each clip is ingested as soon as its group is cut.
        cuts = candidates.cut_clips(source, list(todo.values()), tmp, fps=fps)
        with contextlib.closing(cuts):
            for planned, path, reason in cuts:
                row = rows[_candidate_key(planned)]
                try:
                    if path is None:
                        raise candidates.CandidateError(reason or "the clip could not be cut")
                    with transaction.atomic():
                        clip, _ = services.clip_create(
                            path=path,
                            scene=video.scene,
                            source_video=video,
                            start_s=planned.start_s,
                            end_s=planned.end_s,
                            name=f"{label}/track{planned.track_id}-{planned.piece}",
                        )
                        Candidate.objects.filter(pk=row.pk).update(clip=clip, error="")
                        # In the clip's transaction: a listener's task row commits with it.
                        source_clips_cut.send(
                            sender=SourceVideo, source_video_id=video.pk, clip_ids=[clip.pk]
                        )
                except (candidates.CandidateError, ValidationError) as exc:
                    message = getattr(exc, "reason", None) or getattr(exc, "message", str(exc))
                    failures.append(message)
                    Candidate.objects.filter(pk=row.pk).update(error=message[:2000])
                finally:
                    if path is not None:
                        path.unlink(missing_ok=True)
                done += 1
                claim.report(done, len(plan))
    # Clips cut by an earlier run are announced too (e.g. a campaign adopted the video since).
    planned_rows = [rows[key].pk for key in wanted]
    earlier = list(Clip.objects.filter(candidates__in=planned_rows).values_list("pk", flat=True))
    if earlier:
        source_clips_cut.send(sender=SourceVideo, source_video_id=video.pk, clip_ids=earlier)
    if failures:
        raise _StageFailed(
            f"{len(failures)} of {len(plan)} clips could not be cut; first reason: {failures[0]}"
        )


_RUNNERS = {
    Stage.SCAN: _run_scan,
    Stage.SHOTS: _run_shots,
    Stage.TRACKS: _run_tracks,
    Stage.CLIPS: _run_clips,
}


# --------------------------------------------------------------------------------------------
# Retries, reruns and lost messages


def source_video_retry(
    *, video: SourceVideo, stage: str | None = None, params: dict[str, Any] | None = None
) -> SourceVideo:
    """Run a video's pipeline again from ``stage``: by default the stage that failed.

    A finished video may be rerun from any stage; new ``params`` rerun from the first stage
    they change. Outputs of earlier stages are reused, clips already cut are found again and
    never duplicated. A video waiting for a worker, or whose worker stopped beating, has its
    stage sent again (a lost message, a dead worker). Raise Conflict while a worker runs a
    stage, ValidationError for a stage that cannot run yet.
    """
    video.refresh_from_db()
    if video.status == MediaStatus.PROCESSING and leases.is_live(video.heartbeat_at):
        raise Conflict(f"the pipeline is running (stage {video.stage}); retry when it stops")
    merged = check_params(
        {k: v for k, v in (params or {}).items() if v is not None},
        base={**DEFAULT_PARAMS, "detector": default_detector(), **video.params},
    )
    changed = [k for k in merged if merged[k] != video.params.get(k, merged[k])]
    if stage is not None and stage not in PIPELINE_STAGES:
        raise ValidationError(f"stage must be one of {', '.join(PIPELINE_STAGES)}")
    if video.status == MediaStatus.FAILED:
        default = video.failed_stage
    elif video.status == MediaStatus.READY:
        default = None  # finished: rerun only what is asked for, or what new settings change
    else:  # waiting for a worker, or its message was lost, or its worker died
        default = video.stage
    starts = [
        s for s in (stage or default, *(PARAM_STAGE.get(k, Stage.SCAN) for k in changed)) if s
    ]
    if not starts:
        raise Conflict("the pipeline has finished; name the stage to run it again from")
    start = min(starts, key=_order)
    if _order(start) > _order(video.stage):
        raise ValidationError(
            f"cannot start at {start}: the video has not been through {video.stage} yet"
        )
    cleared: dict[str, Any] = {}
    for later in PIPELINE_STAGES[_order(start) :]:
        for field in STAGE_FIELDS[later]:
            cleared[field] = _FIELD_EMPTY.get(field)
    progress = {k: v for k, v in video.progress.items() if _order(k) < _order(start)}
    with transaction.atomic():
        # Conditional on what we read: a worker or another admin acting meanwhile wins.
        updated = SourceVideo.objects.filter(
            pk=video.pk, status=video.status, stage=video.stage, heartbeat_at=video.heartbeat_at
        ).update(
            stage=start,
            status=MediaStatus.PENDING,
            failed_stage="",
            error="",
            params=merged,
            progress=progress,
            heartbeat_at=None,
            updated_at=Now(),
            **cleared,
        )
        if not updated:
            raise Conflict("the video changed meanwhile; look at it again")
        _enqueue_stage(video.pk, start)
    video.refresh_from_db()
    return video


def source_videos_retry_failed(*, videos) -> int:
    """Retry every failed video of a queryset from its failed stage; return how many."""
    count = 0
    for video in videos.filter(status=MediaStatus.FAILED):
        try:
            source_video_retry(video=video)
        except (Conflict, ValidationError):
            continue
        count += 1
    return count


def source_videos_requeue_stale(
    *, older_than_s: int = PENDING_STALE_S, lease_s: float = LEASE_S, limit: int = 1000
) -> int:
    """Send again the stage of videos pending longer than ``older_than_s``, or whose worker
    stopped beating for ``lease_s`` (it died; sent once per lease): messages lost while the
    broker was down, dead workers. Claims make a duplicate message harmless. Times are the
    database's clock."""
    stale = SourceVideo.objects.filter(
        Q(status=MediaStatus.PENDING)
        & leases.expired(beat_field="updated_at", lease_s=older_than_s)
        | Q(status=MediaStatus.PROCESSING)
        & leases.expired(lease_s=lease_s)
        & leases.expired(beat_field="updated_at", lease_s=lease_s)
    )
    with transaction.atomic():
        rows = list(stale.values_list("pk", "stage")[:limit])
        # Touch them, so the next sweep leaves them alone while they wait in the queue.
        SourceVideo.objects.filter(pk__in=[pk for pk, _ in rows]).update(updated_at=Now())
        for pk, stage in rows:
            _enqueue_stage(pk, stage)
    return len(rows)


def source_video_make_preview(*, video_id: int) -> None:
    """Store a browser-playable H.264 copy of a source video (for an admin to watch a clip's
    place in it). Idempotent; a video ffmpeg cannot convert keeps no preview."""
    video = SourceVideo.objects.filter(pk=video_id).first()
    if video is None or video.preview:
        return
    timeout = max(120.0, 3 * (video.duration_s or 0))
    with (
        tempfile.TemporaryDirectory(prefix="lsf-preview-") as tmp,
        services._local_path(video.original) as source,
    ):
        mp4, poster = Path(tmp) / "preview.mp4", Path(tmp) / "poster.jpg"
        try:
            media.transcode(source, mp4, poster, max_side=640, timeout_s=timeout)
        except media.CorruptMediaError as exc:
            logger.warning("video %s: no preview: %s", video_id, exc.reason)
            return
        name = services._replace_stored(f"sources/previews/{video_id}.mp4", mp4)
    SourceVideo.objects.filter(pk=video_id).update(preview=name)
