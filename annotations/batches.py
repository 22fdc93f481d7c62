"""Gold batches: each annotator's answers, cut into batches and judged on the gold evidence.

An annotator's votes in a campaign are cut, in the order they were given, into batches of
``campaign.batch_size``. A batch's verdict comes from all of the annotator's gold answers in the
campaign since their last reinstatement (``agreement.score_annotator``, a Beta posterior), not
from the handful of gold clips in the batch: Accept, Improper (a reviewer accepts or rejects it
as a whole) or Unacceptable. The votes of an Unacceptable or rejected batch stop counting: they
are marked invalid (never deleted, with who and when), and the consensus of every clip they
touched is recomputed, so those clips ask for replacement votes.

An Unacceptable verdict pauses the annotator (``quality.py``). The evidence is checked after
every gold answer (``quality_check``): once it is confidently below the line, the votes since
the last batch are closed as a partial batch at once. A partial batch is also closed for an
annotator idle for ``IDLE_MINUTES`` (``batches_close_idle``, run by beat), so no unscored tail
keeps counting.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, Max
from django.db.models.functions import Now
from django.utils import timezone

from labelstudio_ferv.errors import Conflict

from . import agreement, quality
from .consensus import consensus_enqueue
from .models import Campaign, GoldBatch, Membership, Vote

logger = logging.getLogger(__name__)


IDLE_MINUTES = 30


def batches_close(*, campaign_id: int, annotator_id: int, partial: bool = False) -> list[GoldBatch]:
    """Cut the annotator's unbatched votes into full batches and score each; return them.

    With ``partial``, the votes left over after the full batches make one more, shorter batch.
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
        evidence = quality.gold_evidence(campaign_id=campaign_id, annotator_id=annotator_id)
        verdict = evidence.verdict(campaign)
        if member.paused_at is not None:
            # Votes sent while paused (to a clip still held) do not count.
            verdict = agreement.Verdict.UNACCEPTABLE
        while len(pending) >= size or (partial and pending):
            chunk, pending = pending[:size], pending[size:]
            number += 1
            closed.append(_score(member, number, chunk, verdict))
    return closed


def quality_check(*, campaign_id: int, annotator_id: int) -> list[GoldBatch]:
    """After a gold answer: close the annotator's votes as batches now if the evidence is
    confidently below the unacceptable line (which pauses them), or if the annotator is
    already paused; return the batches closed."""
    paused = Membership.objects.filter(
        campaign_id=campaign_id, user_id=annotator_id, paused_at__isnull=False
    ).exists()
    evidence = quality.gold_evidence(campaign_id=campaign_id, annotator_id=annotator_id)
    campaign = Campaign.objects.get(pk=campaign_id)
    if not paused and evidence.verdict(campaign) != agreement.Verdict.UNACCEPTABLE:
        return []
    return batches_close(campaign_id=campaign_id, annotator_id=annotator_id, partial=True)


def batches_close_idle(*, idle_minutes: float = IDLE_MINUTES) -> int:
    """Close, as partial batches, the unbatched votes of annotators idle that long; return how
    many annotators had a tail closed."""
    # By the database's clock, which stamped the votes (whichever web server took them).
    cutoff = ExpressionWrapper(
        Now() - timedelta(minutes=idle_minutes), output_field=DateTimeField()
    )
    idle = (
        Vote.objects.filter(batch__isnull=True)
        .values("campaign_id", "annotator_id")
        .annotate(last=Max("created_at"))
        .filter(last__lt=cutoff)
    )
    done = 0
    for row in list(idle):
        if batches_close(
            campaign_id=row["campaign_id"], annotator_id=row["annotator_id"], partial=True
        ):
            done += 1
    return done


def _score(
    member: Membership, number: int, chunk: list[tuple], verdict: agreement.Verdict
) -> GoldBatch:
    campaign, annotator_id = member.campaign, member.user_id
    gold = [(answer, label) for _, answer, is_gold, label in chunk if is_gold]
    correct = sum(answer == label for answer, label in gold)
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
        evidence = quality.gold_evidence(campaign_id=campaign.pk, annotator_id=annotator_id)
        reason = (
            f"{evidence.correct} of your {evidence.total} check clips were answered right, "
            "which is too few to go on."
        )
        if quality.annotator_pause_locked(member=member, reason=reason, batch=batch):
            # Batches still waiting for a reviewer are settled by the pause: rejected.
            for pending in GoldBatch.objects.filter(
                campaign=campaign, annotator_id=annotator_id, review=GoldBatch.Review.PENDING
            ):
                pending.review = GoldBatch.Review.REJECTED
                pending.reviewed_at = timezone.now()
                pending.review_note = "Rejected with the annotator's pause."
                pending.save(update_fields=["review", "reviewed_at", "review_note"])
                _invalidate(pending, by=None)
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
