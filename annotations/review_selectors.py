"""Review reads: the queue of clips the votes could not settle, one clip's review view, the
decision history and the Improper batches waiting for a reviewer.

The decisions are services in review.py; the design is in REVIEW.md next to this file.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Greatest

from clips.models import Scenario, Scene
from labelstudio_ferv.errors import NotFound, ValidationError
from labelstudio_ferv.expressions import ANSWER_KEYS, CLASS_KEYS, N_ANSWERS

from .models import Campaign, ConsensusStatus, GoldBatch, ReviewDecision, Task, Vote

MAX_PAGE = 100


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


def index_key(index: int | None, keys: tuple[str, ...] = ANSWER_KEYS) -> str | None:
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
        "label": index_key(task.label, CLASS_KEYS),
        "agreement": task.agreement,
        "leading": [ANSWER_KEYS[i] for i, n in enumerate(counts) if top and n == top],
        "counts": dict(zip(ANSWER_KEYS, counts, strict=True)),
        "vote_count": task.vote_count,
        "votes_needed": task.votes_needed,
        "votes": votes,
        "reference_label": index_key(reference, CLASS_KEYS),
        "ds_label": index_key(task.ds_label, CLASS_KEYS),
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
