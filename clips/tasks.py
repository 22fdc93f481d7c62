"""Celery tasks for clips: thin wrappers that take ids and call services."""

from celery import shared_task

from . import media, services


@shared_task(
    name="clips.process_clip",
    acks_late=True,
    autoretry_for=(media.TransientMediaError,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=5,
)
def process_clip(clip_id: int) -> None:
    """Transcode one clip (idempotent: safe to run twice or after a worker died mid-way)."""
    services.clip_process(clip_id=clip_id)
