"""Per-clip consensus: turn a task's valid votes into counts, status, label and agreement.

The rule itself is ``agreement.decide`` (see AGGREGATION.md); this module applies it to one task
after each committed vote (incremental path) and to a whole campaign at once (recompute), so both
paths give the same result by construction.
"""

from __future__ import annotations

import logging

import numpy as np
from django.db import transaction
from django.db.models import Count
from kombu.exceptions import OperationalError as BrokerUnavailable

from labelstudio_ferv.expressions import N_ANSWERS

from . import agreement
from .models import ConsensusStatus, Task, Vote

logger = logging.getLogger(__name__)

STATUS_NAMES = {
    agreement.COLLECTING: ConsensusStatus.COLLECTING,
    agreement.TRUSTED: ConsensusStatus.TRUSTED,
    agreement.DISPUTED: ConsensusStatus.DISPUTED,
    agreement.DISCARDED: ConsensusStatus.DISCARDED,
}


def consensus_enqueue(*, task_id: int) -> None:
    """Recompute a task's consensus on a worker once the current transaction commits."""
    from .tasks import update_consensus

    def send() -> None:
        try:
            update_consensus.delay(task_id)
        except BrokerUnavailable:  # the vote is stored; the consensus catches up later
            logger.warning("could not enqueue consensus for task %s", task_id, exc_info=True)

    transaction.on_commit(send)


def valid_counts(*, task_id: int) -> list[int]:
    """Return the task's valid votes per answer, indexed like ``Answer``."""
    counts = [0] * N_ANSWERS
    rows = (
        Vote.objects.filter(task_id=task_id, is_valid=True)
        .values("answer")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[row["answer"]] = row["n"]
    return counts


def consensus_update(*, task_id: int) -> Task | None:
    """Recompute one task's consensus from its valid votes; return the task, or None if gone.

    Idempotent and order-free: the result depends only on the votes committed when it runs, so
    a task run twice or out of order converges. The row lock serialises two workers on one task.
    """
    with transaction.atomic():
        task = (
            Task.objects.select_for_update(of=("self",))
            .select_related("campaign")
            .filter(pk=task_id)
            .first()
        )
        if task is None:
            return None
        counts = valid_counts(task_id=task_id)
        campaign = task.campaign
        status, label, share, needed = agreement.decide(
            np.array([counts]),
            campaign.votes_per_clip,
            campaign.max_votes,
            campaign.min_agreement,
        )
        task.counts = counts
        task.vote_count = sum(counts)
        task.agreement = float(share[0])
        fields = ["counts", "vote_count", "agreement", "updated_at"]
        # A reviewer's decision always wins, and gold clips keep their reference label.
        if task.status != ConsensusStatus.ADJUDICATED and not task.is_gold:
            task.status = STATUS_NAMES[int(status[0])]
            task.label = int(label[0]) if label[0] >= 0 else None
            task.votes_needed = int(needed[0])
            fields += ["status", "label", "votes_needed"]
        task.save(update_fields=fields)
        return task
