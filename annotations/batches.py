"""Gold batches, the FERV39k way: each annotator's answers, scored on the gold clips in them.

An annotator's valid votes in a campaign are cut, in the order they were given, into batches of
``campaign.batch_size``. A full batch is scored on its gold clips (``agreement.score_batch``):
Accept, Improper (a reviewer accepts or rejects it as a whole) or Unacceptable. The votes of an
Unacceptable or rejected batch stop counting: they are marked invalid (never deleted, with who
and when), and the consensus of every clip they touched is recomputed, so those clips ask for
replacement votes.
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from labelstudio_ferv.errors import Conflict

from . import agreement
from .consensus import consensus_enqueue
from .models import Campaign, GoldBatch, Membership, Vote

logger = logging.getLogger(__name__)


def batches_close(*, campaign_id: int, annotator_id: int) -> list[GoldBatch]:
    """Cut the annotator's unbatched votes into full batches and score each; return them.

    Safe to run concurrently and repeatedly: the member's row lock serialises runs for one
    annotator, and only votes without a batch are taken.
    """
    closed: list[GoldBatch] = []
    with transaction.atomic():
        member = (
            # Lock the member row only: locking the campaign row too would hold up every vote
            # insert of the campaign (their foreign-key checks share-lock it at commit).
            Membership.objects.select_for_update(of=("self",))
            .select_related("campaign")
            .filter(campaign_id=campaign_id, user_id=annotator_id)
            .first()
        )
        if member is None:
            return closed
        campaign = member.campaign
        size = campaign.batch_size
        pending = list(
            Vote.objects.filter(
                campaign_id=campaign_id, annotator_id=annotator_id, batch__isnull=True
            )
            .order_by("created_at", "id")
            .values_list("id", "answer", "task__is_gold", "task__gold_label")
        )
        number = (
            GoldBatch.objects.filter(campaign=campaign, annotator_id=annotator_id).aggregate(
                n=Max("number")
            )["n"]
            or 0
        )
        while len(pending) >= size:
            chunk, pending = pending[:size], pending[size:]
            number += 1
            closed.append(_score(campaign, annotator_id, number, chunk))
    return closed


def _score(campaign: Campaign, annotator_id: int, number: int, chunk: list[tuple]) -> GoldBatch:
    gold = [(answer, label) for _, answer, is_gold, label in chunk if is_gold]
    correct = sum(answer == label for answer, label in gold)
    verdict = agreement.score_batch(correct, len(gold))
    batch = GoldBatch.objects.create(
        campaign=campaign,
        annotator_id=annotator_id,
        number=number,
        size=len(chunk),
        gold_total=len(gold),
        gold_correct=correct,
        verdict=verdict,
        review=GoldBatch.Review.PENDING
        if verdict == GoldBatch.Verdict.IMPROPER
        else GoldBatch.Review.NONE,
    )
    Vote.objects.filter(pk__in=[vote_id for vote_id, *_ in chunk]).update(batch=batch)
    if verdict == GoldBatch.Verdict.UNACCEPTABLE:
        logger.info("batch %s of annotator %s is unacceptable", batch.pk, annotator_id)
        _invalidate(batch, by=None)
    return batch


def _invalidate(batch: GoldBatch, *, by: AbstractBaseUser | None) -> int:
    """Mark the batch's votes invalid and have their clips' consensus recomputed."""
    votes = Vote.objects.filter(batch=batch, is_valid=True)
    task_ids = list(votes.values_list("task_id", flat=True))
    count = votes.update(is_valid=False, invalidated_at=timezone.now(), invalidated_by=by)
    for task_id in task_ids:
        consensus_enqueue(task_id=task_id)
    return count


def batch_review(
    *, batch_id: int, reviewer: AbstractBaseUser, accept: bool, note: str = ""
) -> GoldBatch:
    """Accept or reject an Improper batch as a whole (a reviewer's decision, recorded).

    A rejected batch's votes stop counting. Two reviewers deciding at once: the row lock lets
    the first win and the second gets a conflict.
    """
    with transaction.atomic():
        batch = GoldBatch.objects.select_for_update().get(pk=batch_id)
        if batch.review != GoldBatch.Review.PENDING:
            raise Conflict(
                f"This batch was already {batch.get_review_display().lower()} "
                f"by {batch.reviewed_by} at {batch.reviewed_at:%Y-%m-%d %H:%M}."
            )
        batch.review = GoldBatch.Review.ACCEPTED if accept else GoldBatch.Review.REJECTED
        batch.reviewed_by = reviewer
        batch.reviewed_at = timezone.now()
        batch.review_note = note
        batch.save(update_fields=["review", "reviewed_by", "reviewed_at", "review_note"])
        if not accept:
            _invalidate(batch, by=reviewer)
    return batch
