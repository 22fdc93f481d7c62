"""Celery tasks for clips: thin wrappers that take ids and call services."""

from celery import shared_task
from django.db import OperationalError

from . import media, services

MAX_RETRIES = 5


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
    """Send again clips stuck pending or processing (lost messages, dead workers)."""
    return services.clips_requeue_stale()
