"""Review: the queue of clips the votes could not settle, and reviewers' decisions on them.

Reads (the queue, one clip's review view, the history) come first, then the decisions. The
design, and why decisions carry a version, is in REVIEW.md next to this file.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Greatest

from clips.models import Scenario, Scene
from labelstudio_ferv.errors import Conflict, NotFound, ValidationError
from labelstudio_ferv.expressions import ANSWER_KEYS, CLASS_KEYS, N_ANSWERS
from labelstudio_ferv.queue import enqueue_on_commit

from . import agreement
from .batches import batch_review
from .consensus import consensus_update, valid_counts
from .models import (
    Campaign,
    CampaignStatistics,
    ConsensusStatus,
    GoldBatch,
    ReviewDecision,
    Task,
    Vote,
)

logger = logging.getLogger(__name__)

MAX_PAGE = 100
MAX_EXTRA_VOTES = 10

# --------------------------------------------------------------------------------------------
# The queue
# --------------------------------------------------------------------------------------------


class Source:
    """Which clips a queue lists."""

    DISPUTED = "disputed"  # what the trust rule sends to review
    DS_DISAGREEMENT = "ds_disagreement"  # trusted by the majority, labelled otherwise by DS


@dataclass(frozen=True)
class QueueFilters:
    scenario: str | None = None  # id, code ("DL") or name
    scene: str | None = None  # id, folder ("DailyLife") or name
    leading: int | None = None  # an Answer index: clips where it has the top count
    agreement_min: float | None = None
    agreement_max: float | None = None


@dataclass(frozen=True)
class Page:
    items: list[dict]
    next_cursor: str | None


def _encode_cursor(agreement: float, task_id: int) -> str:
    raw = json.dumps([agreement, task_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        agreement, task_id = json.loads(raw)
        return float(agreement), int(task_id)
    except (binascii.Error, ValueError, TypeError):
        raise ValidationError("The cursor is not one this API returned.", code="bad_cursor")


def _resolve_scenario(value: str) -> Scenario:
    match = Q(code__iexact=value) | Q(name__iexact=value)
    if value.isdigit():
        match |= Q(pk=int(value))
    found = Scenario.objects.filter(match).first()
    if found is None:
        names = ", ".join(Scenario.objects.values_list("code", flat=True))
        raise ValidationError(f"Unknown scenario {value!r}; expected an id or one of {names}.")
    return found


def _resolve_scene(value: str) -> Scene:
    match = Q(folder__iexact=value) | Q(name__iexact=value)
    if value.isdigit():
        match |= Q(pk=int(value))
    found = Scene.objects.filter(match).first()
    if found is None:
        raise ValidationError(f"Unknown scene {value!r}; expected an id, a folder or a name.")
    return found


def _answer_count(index: int) -> Cast:
    return Cast(KT(f"counts__{index}"), IntegerField())


def _queue_base(*, campaign_id: int, source: str, filters: QueueFilters) -> QuerySet[Task]:
    tasks = Task.objects.filter(campaign_id=campaign_id, is_gold=False)
    if source == Source.DS_DISAGREEMENT:
        tasks = tasks.filter(status=ConsensusStatus.TRUSTED, ds_label__isnull=False).exclude(
            ds_label=F("label")
        )
    else:
        tasks = tasks.filter(status=ConsensusStatus.DISPUTED)
    if filters.scenario:
        tasks = tasks.filter(clip__scene__scenario=_resolve_scenario(filters.scenario))
    if filters.scene:
        tasks = tasks.filter(clip__scene=_resolve_scene(filters.scene))
    if filters.agreement_min is not None:
        tasks = tasks.filter(agreement__gte=filters.agreement_min)
    if filters.agreement_max is not None:
        tasks = tasks.filter(agreement__lte=filters.agreement_max)
    if filters.leading is not None:
        # Leading = has the top count; in a tie every tied answer leads.
        tasks = tasks.annotate(
            lead_count=_answer_count(filters.leading),
            top_count=Greatest(*[_answer_count(i) for i in range(N_ANSWERS)]),
        ).filter(lead_count=F("top_count"), top_count__gt=0)
    return tasks


def review_queue(
    *,
    campaign_id: int,
    source: str = Source.DISPUTED,
    filters: QueueFilters | None = None,
    cursor: str | None = None,
    limit: int = 25,
) -> Page:
    """Return one page of clips for review, lowest agreement first, then by task id.

    The cursor is the (agreement, id) of the last item shown, so a page costs one index range
    scan however deep the reviewer is, and a decision taken meanwhile never shifts the pages.
    """
    tasks = _queue_base(campaign_id=campaign_id, source=source, filters=filters or QueueFilters())
    if cursor:
        agreement, task_id = _decode_cursor(cursor)
        tasks = tasks.filter(Q(agreement__gt=agreement) | Q(agreement=agreement, pk__gt=task_id))
    limit = max(1, min(limit, MAX_PAGE))
    rows = list(tasks.order_by("agreement", "pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    items = review_items(task_ids=[t.pk for t in rows])
    next_cursor = _encode_cursor(rows[-1].agreement, rows[-1].pk) if more else None
    return Page(items=items, next_cursor=next_cursor)


def _key(index: int | None, keys: tuple[str, ...] = ANSWER_KEYS) -> str | None:
    return None if index is None else keys[index]


def review_items(*, task_ids: list[int]) -> list[dict]:
    """Return what a reviewer sees of each task, in the order of ``task_ids`` (three queries)."""
    if not task_ids:
        return []
    decisions = (
        ReviewDecision.objects.filter(task=OuterRef("pk"))
        .order_by()
        .values("task")
        .annotate(n=Count("*"))
        .values("n")
    )
    tasks = {
        t.pk: t
        for t in Task.objects.filter(pk__in=task_ids)
        .select_related("clip__scene__scenario")
        .annotate(decision_count=Coalesce(Subquery(decisions, output_field=IntegerField()), 0))
    }
    votes: dict[int, list[dict]] = {task_id: [] for task_id in task_ids}
    rows = (
        Vote.objects.filter(task_id__in=task_ids)
        .order_by("task_id", "created_at", "id")
        .values_list(
            "task_id", "annotator__username", "answer", "time_ms", "is_valid", "created_at"
        )
    )
    for task_id, username, answer, time_ms, valid, created_at in rows:
        votes[task_id].append(
            {
                "annotator": username,
                "answer": ANSWER_KEYS[answer],
                "time_ms": time_ms,
                "valid": valid,
                "created_at": created_at,
            }
        )
    return [_item(tasks[task_id], votes[task_id]) for task_id in task_ids if task_id in tasks]


def _item(task: Task, votes: list[dict]) -> dict:
    clip, scene = task.clip, task.clip.scene
    counts = list(task.counts) + [0] * (N_ANSWERS - len(task.counts))
    top = max(counts)
    reference = task.gold_label if task.is_gold else clip.reference_label
    return {
        "task": task.pk,
        "clip": clip,
        "scene": scene,
        "scenario": scene.scenario,
        "status": task.status,
        "label": _key(task.label, CLASS_KEYS),
        "agreement": task.agreement,
        "leading": [ANSWER_KEYS[i] for i, n in enumerate(counts) if top and n == top],
        "counts": dict(zip(ANSWER_KEYS, counts, strict=True)),
        "vote_count": task.vote_count,
        "votes_needed": task.votes_needed,
        "votes": votes,
        "reference_label": _key(reference, CLASS_KEYS),
        "ds_label": _key(task.ds_label, CLASS_KEYS),
        "ds_confidence": task.ds_confidence,
        "extra_votes": task.extra_votes,
        "review_locked": task.review_locked,
        "review_version": task.review_version,
        "decisions": getattr(task, "decision_count", 0),
    }


def review_item(*, campaign: Campaign, task_id: int) -> dict:
    """Return the review view of one clip of the campaign, whatever its status."""
    if not Task.objects.filter(campaign=campaign, pk=task_id).exists():
        raise NotFound("Clip not found in this campaign.")
    return review_items(task_ids=[task_id])[0]


def decision_history(
    *, campaign_id: int, task_id: int | None = None, before: int | None = None, limit: int = 50
) -> tuple[list[ReviewDecision], int | None]:
    """Return decisions, newest first, and the id to pass as ``before`` for the next page."""
    decisions = ReviewDecision.objects.filter(campaign_id=campaign_id).select_related("reviewer")
    if task_id is not None:
        decisions = decisions.filter(task_id=task_id)
    if before is not None:
        decisions = decisions.filter(pk__lt=before)
    limit = max(1, min(limit, MAX_PAGE))
    rows = list(decisions.order_by("-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].pk if more else None)


def pending_batches(
    *, campaign_id: int, after: int | None = None, limit: int = 25
) -> tuple[list[dict], int | None]:
    """Return Improper batches waiting for a reviewer, oldest first, with their gold answers."""
    batches = GoldBatch.objects.filter(
        campaign_id=campaign_id, review=GoldBatch.Review.PENDING
    ).select_related("annotator")
    if after is not None:
        batches = batches.filter(pk__gt=after)
    limit = max(1, min(limit, MAX_PAGE))
    rows = list(batches.order_by("pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    gold: dict[int, list[dict]] = {b.pk: [] for b in rows}
    answers = (
        Vote.objects.filter(batch_id__in=list(gold), task__is_gold=True)
        .select_related("task__clip")
        .order_by("batch_id", "created_at", "id")
    )
    for vote in answers:
        gold[vote.batch_id].append(
            {
                "task": vote.task_id,
                "clip": vote.task.clip,
                "reference_label": CLASS_KEYS[vote.task.gold_label],
                "answer": ANSWER_KEYS[vote.answer],
                "correct": vote.answer == vote.task.gold_label,
            }
        )
    items = [
        {
            "id": b.pk,
            "annotator": b.annotator.get_username(),
            "number": b.number,
            "size": b.size,
            "gold_total": b.gold_total,
            "gold_correct": b.gold_correct,
            "accuracy": b.accuracy,
            "created_at": b.created_at,
            "gold": gold[b.pk],
        }
        for b in rows
    ]
    return items, (rows[-1].pk if more else None)


# --------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------


def _snapshot(task: Task) -> dict:
    """Return the parts of a task's state a decision changes, as JSON."""
    return {
        "status": task.status,
        "label": _key(task.label, CLASS_KEYS),
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
        _refresh_statistics_on_commit(campaign_id=campaign.pk, since=decision.created_at)
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


def _refresh_statistics_on_commit(*, campaign_id: int, since: datetime) -> None:
    # Unsent, the next decision or beat's campaign refresh catches the statistics up.
    enqueue_on_commit(
        "annotations.refresh_statistics_after_review", campaign_id, since.isoformat(), countdown=2
    )


def statistics_refresh_since(*, campaign_id: int, since: datetime) -> bool:
    """Refresh the campaign's statistics unless a refresh started after ``since``; say if run.

    A burst of decisions then costs one recompute, not one per decision.
    """
    from .statistics import statistics_refresh

    stats = CampaignStatistics.objects.filter(campaign_id=campaign_id).first()
    if stats is not None:
        started = stats.computed_at - timedelta(milliseconds=stats.duration_ms)
        if started > since:
            return False
    if not Campaign.objects.filter(pk=campaign_id).exists():
        return False
    statistics_refresh(campaign_id=campaign_id)
    return True


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
    batch = batch_review(batch_id=batch_id, reviewer=reviewer, accept=accept, note=note)
    _refresh_statistics_on_commit(campaign_id=campaign.pk, since=batch.reviewed_at)
    return batch
