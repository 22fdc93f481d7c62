"""Review decisions: a reviewer's decision on a clip, and on an Improper gold batch.

The reads (the queue, one clip's review view, the history) are in review_selectors.py. The
design, and why decisions carry a version, is in REVIEW.md next to this file.
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from clips.lazy import lazy_module
from labelstudio_ferv.errors import Conflict, NotFound, ValidationError
from labelstudio_ferv.expressions import CLASS_KEYS

from . import agreement
from .batches import batch_review
from .consensus import consensus_update, valid_counts
from .models import AuditEntry, Campaign, ConsensusStatus, GoldBatch, ReviewDecision, Task
from .review_selectors import index_key
from .statistics import statistics_refresh_on_commit

np = lazy_module("numpy")

logger = logging.getLogger(__name__)

MAX_EXTRA_VOTES = 10


# --------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------


def _snapshot(task: Task) -> dict:
    """Return the parts of a task's state a decision changes, as JSON."""
    return {
        "status": task.status,
        "label": index_key(task.label, CLASS_KEYS),
        "review_locked": task.review_locked,
        "extra_votes": task.extra_votes,
        "votes_needed": task.votes_needed,
        "vote_count": task.vote_count,
        "counts": list(task.counts),
        "agreement": task.agreement,
        "review_version": task.review_version,
    }


def _stale_version(task: Task, version: int) -> Conflict:
    last = task.decisions.select_related("reviewer").order_by("-pk").first()
    details = {"current_version": task.review_version, "your_version": version}
    if last is None:
        return Conflict(
            "This clip changed since you loaded it; reload it and decide again.",
            code="stale_version",
            details=details,
        )
    what = last.get_action_display().lower()
    if last.action == ReviewDecision.Action.LABEL:
        what = f"labelled it {CLASS_KEYS[last.label]}"
    who = last.reviewer.get_username()
    details |= {"decided_by": who, "decided_at": last.created_at.isoformat(), "action": last.action}
    return Conflict(
        f"{who} already decided this clip ({what}) at {last.created_at:%Y-%m-%d %H:%M:%S} UTC; "
        "reload it and decide again if you still disagree.",
        code="stale_version",
        details=details,
    )


def check_decision(*, action: str, label: int | None, extra_votes: int) -> None:
    """Check that the decision's arguments fit its action."""
    if action not in ReviewDecision.Action.values:
        raise ValidationError(f"Unknown action {action!r}.")
    if (action == ReviewDecision.Action.LABEL) != (label is not None):
        raise ValidationError("A label goes with the label action, and only with it.")
    if label is not None and not 0 <= label < len(CLASS_KEYS):
        raise ValidationError("The final label must be one of the seven classes.")
    if action == ReviewDecision.Action.MORE_VOTES and not 1 <= extra_votes <= MAX_EXTRA_VOTES:
        raise ValidationError(f"Ask for between 1 and {MAX_EXTRA_VOTES} more votes.")


def task_decide(
    *,
    campaign: Campaign,
    task_id: int,
    reviewer: AbstractBaseUser,
    action: str,
    version: int,
    label: int | None = None,
    extra_votes: int = 0,
    note: str = "",
) -> ReviewDecision:
    """Apply a reviewer's decision to a clip and record it with the state before and after.

    ``version`` is the task's ``review_version`` the reviewer saw. The task's row lock makes
    two decisions on one clip take turns; the second then finds the version moved on and gets
    a Conflict naming the first, instead of silently overwriting it.
    """
    check_decision(action=action, label=label, extra_votes=extra_votes)
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(campaign=campaign, pk=task_id).first()
        if task is None:
            raise NotFound("Clip not found in this campaign.")
        if task.review_version != version:
            raise _stale_version(task, version)
        if task.is_gold:
            raise Conflict(
                "This is a gold clip: change its reference label instead.", code="gold_clip"
            )
        before = _snapshot(task)
        _apply(task, campaign=campaign, action=action, label=label, extra_votes=extra_votes)
        task.review_version += 1
        task.save(update_fields=["review_version", "updated_at"])
        if action in (ReviewDecision.Action.MORE_VOTES, ReviewDecision.Action.REOPEN):
            # The votes decide again, by the same rule as after every vote.
            task = consensus_update(task_id=task.pk)
        decision = ReviewDecision.objects.create(
            task=task,
            campaign=campaign,
            reviewer=reviewer,
            action=action,
            label=label,
            extra_votes=extra_votes if action == ReviewDecision.Action.MORE_VOTES else 0,
            note=note,
            before=before,
            after=_snapshot(task),
        )
        AuditEntry.record(
            campaign=campaign, actor=reviewer, action="review_decision", task=task.pk,
            decision=decision.pk, review_action=action, extra_votes=extra_votes,
            label=None if label is None else CLASS_KEYS[label],
        )  # fmt: skip
        statistics_refresh_on_commit(campaign_id=campaign.pk, since=decision.created_at)
    logger.info("review: %s on task %s by %s", action, task_id, reviewer.pk)
    return decision


def _apply(
    task: Task, *, campaign: Campaign, action: str, label: int | None, extra_votes: int
) -> None:
    fields = ["status", "label", "review_locked", "extra_votes"]
    if action == ReviewDecision.Action.LABEL:
        task.status, task.label, task.review_locked = ConsensusStatus.ADJUDICATED, label, True
    elif action == ReviewDecision.Action.DISCARD:
        task.status, task.label, task.review_locked = ConsensusStatus.DISCARDED, None, True
    elif action == ReviewDecision.Action.MORE_VOTES:
        task.extra_votes = _more_votes_extra(task, campaign=campaign, n=extra_votes)
        task.status, task.label, task.review_locked = ConsensusStatus.COLLECTING, None, False
    else:  # reopen: back to what the votes alone say under the campaign's rules
        reviewed = (
            task.review_locked or task.extra_votes or task.status == ConsensusStatus.ADJUDICATED
        )
        if not reviewed:
            raise Conflict("No reviewer decision holds on this clip.", code="nothing_to_reopen")
        task.status, task.label, task.review_locked = ConsensusStatus.COLLECTING, None, False
        task.extra_votes = 0
    task.save(update_fields=fields)


def _more_votes_extra(task: Task, *, campaign: Campaign, n: int) -> int:
    """Return the task's extra votes after a request for ``n`` more.

    Need and cap both rise by n. A split clip then asks for one more vote at a time up to the
    new cap. Votes that already agree would settle the clip again at once, so such a clip is
    made to need exactly n votes more than it has.
    """
    extra = task.extra_votes + n
    counts = valid_counts(task_id=task.pk)
    status, *_ = agreement.decide(
        np.array([counts]),
        campaign.votes_per_clip + extra,
        campaign.max_votes + extra,
        campaign.min_agreement,
    )
    if status[0] in (agreement.TRUSTED, agreement.DISCARDED):
        extra = max(extra, sum(counts) + n - campaign.votes_per_clip)
    return extra


def batch_decide(
    *, campaign: Campaign, batch_id: int, reviewer: AbstractBaseUser, accept: bool, note: str = ""
) -> GoldBatch:
    """Accept or reject a pending Improper batch of the campaign as a whole."""
    batch = GoldBatch.objects.filter(campaign=campaign, pk=batch_id).first()
    if batch is None:
        raise NotFound("Batch not found in this campaign.")
    if batch.review == GoldBatch.Review.NONE:
        raise Conflict(
            f"This batch was scored {batch.verdict}; only Improper batches are reviewed.",
            code="not_reviewable",
        )
    with transaction.atomic():
        batch = batch_review(batch_id=batch_id, reviewer=reviewer, accept=accept, note=note)
        AuditEntry.record(
            campaign=campaign, actor=reviewer, action="batch_decision", batch=batch.pk,
            annotator=batch.annotator_id, accepted=accept,
        )  # fmt: skip
    statistics_refresh_on_commit(campaign_id=campaign.pk, since=batch.reviewed_at)
    return batch
