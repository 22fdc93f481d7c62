"""The assignment hot path on databases other than PostgreSQL: the embedded SQLite default.

On PostgreSQL, services.py and selectors.py run the claim, the answer's counters, lease expiry
and the lease reads as prepared statements, most of them CTEs that write (see ASSIGNMENT.md).
SQLite has neither, so each statement names one of these functions, which does the same with
the ORM and returns the same rows (columns in the statement's order). SQLite lets one writer
at a time, so they need no row locks; each writes in one transaction.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .models import Assignment, Membership, Task, Vote


def _offer_row(assignment: Assignment, clip) -> tuple:
    """An offer's columns, as in selectors.Offer.from_row."""
    return (
        assignment.pk, assignment.expires_at, clip.pk, clip.video.name, clip.poster.name,
        clip.duration_s, clip.fps, clip.frame_count, clip.width, clip.height,
    )  # fmt: skip


def open_leases(params: dict) -> list[tuple]:
    """lsf_assignment_open: the user's open leases, the offer then ``live, ahead``."""
    now = timezone.now()
    leases = (
        Assignment.objects.filter(
            campaign_id=params["campaign"], annotator_id=params["user"], state="active"
        )
        .select_related("task__clip")
        .order_by("ahead", "id")
    )
    return [(*_offer_row(a, a.task.clip), a.expires_at > now, a.ahead) for a in leases]


def own_assignment(params: dict) -> list[tuple]:
    """lsf_assignment_own: the user's assignment, in a campaign the user belongs to."""
    return list(
        Assignment.objects.filter(
            pk=params["assignment"],
            annotator_id=params["user"],
            campaign__memberships__user_id=params["user"],
        ).values_list("id", "campaign_id", "task_id", "annotator_id", "state", "holds_slot")
    )


def expire_leases(params: dict) -> list[tuple]:
    """lsf_leases_expire: close the campaign's leases past their time, free their slots."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            Assignment.objects.filter(
                campaign_id=params["campaign"], state="active", expires_at__lte=now
            ).values_list("pk", "task_id", "holds_slot")
        )
        Assignment.objects.filter(pk__in=[pk for pk, *_ in due]).update(
            state="expired", closed_at=now
        )
        for task_id, n in Counter(task for _, task, slot in due if slot).items():
            Task.objects.filter(pk=task_id).update(lease_count=F("lease_count") - n)
    return []


def _claim(params: dict, *, gold: bool) -> list[tuple]:
    user = params["user"]
    seen = Assignment.objects.filter(annotator_id=user).values("task_id")
    voted = Vote.objects.filter(annotator_id=user).values("task_id")
    tasks = Task.objects.filter(campaign_id=params["campaign"], clip__status="ready").exclude(
        pk__in=seen
    )
    tasks = tasks.exclude(pk__in=voted).select_related("clip")
    if gold:
        tasks = tasks.filter(is_gold=True).order_by("id")
    else:
        tasks = tasks.filter(
            is_gold=False, status="collecting", vote_count__lt=F("votes_needed") - F("lease_count")
        ).order_by("-vote_count", "id")
    if "task" in params:
        tasks = tasks.filter(pk=params["task"])
    with transaction.atomic():
        task = tasks.first()
        if task is None:
            return []
        if not gold:
            Task.objects.filter(pk=task.pk).update(lease_count=F("lease_count") + 1)
        assignment = Assignment.objects.create(
            campaign_id=params["campaign"], task=task, annotator_id=user, state="active",
            holds_slot=not gold, ahead=params["ahead"],
            expires_at=timezone.now() + timedelta(seconds=params["lease"]),
        )  # fmt: skip
    return [_offer_row(assignment, task.clip)]


def claim(params: dict) -> list[tuple]:
    """lsf_claim and lsf_claim_one: the first open task for the user (or the one named)."""
    return _claim(params, gold=False)


def claim_gold(params: dict) -> list[tuple]:
    """lsf_claim_gold: the first gold clip the user has not seen."""
    return _claim(params, gold=True)


def locked_candidates(params: dict) -> list[tuple]:
    """lsf_claim_candidates: none; with one writer, the first claim saw every open task."""
    return []


def count_served(params: dict) -> list[tuple]:
    """lsf_count_served: count a clip handed to a member."""
    Membership.objects.filter(pk=params["membership"]).update(
        served=F("served") + 1, gold_served=F("gold_served") + params["gold"]
    )
    return []


def answered(params: dict) -> list[tuple]:
    """lsf_answered: close the answered lease and count the vote (in the caller's transaction)."""
    Assignment.objects.filter(pk=params["assignment"]).update(
        state="answered", closed_at=params["at"]
    )
    Task.objects.filter(pk=params["task"]).update(
        vote_count=F("vote_count") + 1, lease_count=F("lease_count") - params["freed"]
    )
    return []
