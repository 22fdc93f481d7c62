"""Celery tasks for clips: thin wrappers that take ids and call services."""

from celery import shared_task
from django.db import OperationalError

from labelstudio_ferv import leases

from . import media, pipeline, services

MAX_RETRIES = 5
# One stage decodes a whole source video: allow far more than the global limit for one clip.
# (A stage still running past the broker's visibility timeout is delivered again; the second
# delivery finds the stage claimed and waits, see pipeline.StageBusy.)
STAGE_SOFT_TIME_LIMIT = 4 * 3600


@shared_task(bind=True, name="clips.process_clip", acks_late=True, max_retries=MAX_RETRIES)
def process_clip(self, clip_id: int) -> None:
    """Transcode one clip (idempotent: safe to run twice or after a worker died mid-way)."""
    try:
        services.clip_process(clip_id=clip_id)
    except (media.TransientMediaError, OperationalError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        if self.request.is_eager:
            # Run in-process (embedded default): never sleep inside a request; an admin
            # can retry the failed clip.
            services.clip_mark_failed(clip_id=clip_id, reason=reason)
            return
        if self.request.retries >= MAX_RETRIES:
            services.clip_mark_failed(
                clip_id=clip_id, reason=f"gave up after {MAX_RETRIES + 1} attempts: {reason}"
            )
            return
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries))


@shared_task(name="clips.requeue_stale_clips")
def requeue_stale_clips() -> int:
    """Send again clips and source-video stages stuck pending or processing (lost messages,
    dead workers)."""
    sent = services.clips_requeue_stale() + pipeline.source_videos_requeue_stale()
    services.work_dirs_sweep()
    return sent


@shared_task(
    bind=True,
    name="clips.run_source_stage",
    acks_late=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=STAGE_SOFT_TIME_LIMIT,
    time_limit=STAGE_SOFT_TIME_LIMIT + 60,
)
def run_source_stage(self, video_id: int, stage: str) -> None:
    """Run one stage of a source video's candidate pipeline; it enqueues the next one itself.

    Idempotent: a stage that is not due (done already, or the video is gone) is skipped, and a
    stage that another worker runs is claimed only once that worker stops beating.
    """
    try:
        pipeline.source_video_run_stage(video_id=video_id, stage=stage)
    except pipeline.StageBusy as exc:
        if self.request.is_eager or self.request.retries >= MAX_RETRIES:
            return  # the other worker finishes it, or the stale sweep sends it again
        # Look again once the holder's lease would have run out, in case it died.
        raise self.retry(exc=exc, countdown=leases.LEASE_S + 5)
    except (pipeline.TransientStageError, OperationalError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        if self.request.is_eager:
            pipeline.source_video_mark_failed(video_id=video_id, stage=stage, reason=reason)
            return
        if self.request.retries >= MAX_RETRIES:
            pipeline.source_video_mark_failed(
                video_id=video_id,
                stage=stage,
                reason=f"gave up after {MAX_RETRIES + 1} attempts: {reason}",
            )
            return
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries))


@shared_task(
    bind=True,
    name="clips.make_source_preview",
    acks_late=True,
    max_retries=3,
    soft_time_limit=STAGE_SOFT_TIME_LIMIT,
    time_limit=STAGE_SOFT_TIME_LIMIT + 60,
)
def make_source_preview(self, video_id: int) -> None:
    """Make the browser-playable copy of a source video that is not an H.264 MP4."""
    try:
        pipeline.source_video_make_preview(video_id=video_id)
    except media.TransientMediaError as exc:
        if not self.request.is_eager and self.request.retries < 3:
            raise self.retry(exc=exc, countdown=60 * 2**self.request.retries)
