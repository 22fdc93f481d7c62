"""Celery tasks for annotations: thin wrappers that take ids and call services."""

from celery import shared_task

from . import consensus


@shared_task(name="annotations.update_consensus", acks_late=True)
def update_consensus(task_id: int) -> None:
    """Recompute one task's consensus (idempotent; safe to run twice or out of order)."""
    consensus.consensus_update(task_id=task_id)
