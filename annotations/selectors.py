"""Read paths for campaigns, tasks, assignments and votes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import (
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from clips.models import Clip, MediaStatus, Scene

from . import statements
from .models import (
    AnnotatorPause,
    Assignment,
    AuditEntry,
    Campaign,
    ConsensusStatus,
    Membership,
    Role,
    Task,
    Vote,
)

# A clip with one of these labels is settled: its voters can no longer change their answers.
FINAL_STATUSES = frozenset(
    {ConsensusStatus.TRUSTED, ConsensusStatus.DISCARDED, ConsensusStatus.ADJUDICATED}
)


def _count(queryset: QuerySet) -> Coalesce:
    """Return a correlated COUNT subquery (avoids the row explosion of joining two relations)."""
    counted = queryset.order_by().values("campaign").annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def campaigns_for_user(*, user: AbstractBaseUser) -> QuerySet[Campaign]:
    """Return the user's campaigns with the user's ``role``, clip total and own vote counts.

    ``my_votes_today`` counts from midnight in the server's time zone (setting ``TIME_ZONE``).
    A superuser gets every campaign, as admin where not a member.
    """
    role = Membership.objects.filter(campaign=OuterRef("pk"), user=user).values("role")[:1]
    # The user's latest reinstatement (index pause_annotator), for the workspace's "welcome
    # back"; it counts only while the user is not paused again.
    reinstated = AnnotatorPause.objects.filter(
        campaign=OuterRef("pk"), annotator=user, action=AnnotatorPause.Action.REINSTATE
    ).order_by("-id")
    paused = Membership.objects.filter(
        campaign=OuterRef("pk"), user=user, paused_at__isnull=False
    ).values("pk")[:1]
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Vote.objects.filter(campaign=OuterRef("pk"), annotator=user)
    campaigns = Campaign.objects.all()
    if not user.is_superuser:
        campaigns = campaigns.filter(memberships__user=user)
    return campaigns.annotate(
        role=Coalesce(Subquery(role), Value(Role.ADMIN.value)),
        # A clip whose media failed is no work for anyone: it is not counted.
        clip_total=_count(
            Task.objects.filter(campaign=OuterRef("pk")).exclude(clip__status=MediaStatus.FAILED)
        ),
        my_votes=_count(mine),
        my_votes_today=_count(mine.filter(created_at__gte=midnight)),
        reinstated_at=Subquery(reinstated.values("created_at")[:1]),
        reinstated_note=Subquery(reinstated.values("reason")[:1]),
        paused_now=Exists(paused),
    ).order_by("name")


@dataclass(frozen=True)
class ClipView:
    """What an annotator is shown of a clip: media and shape, nothing about its votes."""

    id: int
    video: str
    poster: str
    duration_s: float | None
    fps: float | None
    frame_count: int | None
    width: int | None
    height: int | None

    @classmethod
    def of(cls, clip: Clip) -> ClipView:
        return cls(
            id=clip.pk, video=clip.video.name, poster=clip.poster.name,
            duration_s=clip.duration_s, fps=clip.fps, frame_count=clip.frame_count,
            width=clip.width, height=clip.height,
        )  # fmt: skip


@dataclass(frozen=True)
class Offer:
    """An open assignment and its clip."""

    assignment_id: int
    expires_at: datetime
    clip: ClipView
    # With ``next?ahead=1``: the clip held next for the user, to preload (None: none left).
    ahead: Offer | None = None

    @classmethod
    def from_row(cls, row: tuple) -> Offer:
        """Build from ``assignment id, expires_at`` and the ClipView fields, in that order."""
        return cls(assignment_id=row[0], expires_at=row[1], clip=ClipView(*row[2:10]))


@dataclass(frozen=True)
class OpenLease:
    """One of a user's open assignments: the offer, whether it is live, whether it is ahead."""

    offer: Offer
    live: bool
    ahead: bool


def assignments_open(
    *, campaign_id: int, user: AbstractBaseUser, promote: bool = False
) -> list[OpenLease]:
    """Return the user's open assignments in a campaign, the current one first.

    There are at most two: the current clip and one ahead (unique constraint
    ``assignment_one_active``). With ``promote``, the lease ahead is first made current when
    the user holds no current lease (``statements.OPEN_LEASES_PROMOTED``); it may raise
    IntegrityError when another request of the user took a current lease meanwhile.
    """
    statement = statements.OPEN_LEASES_PROMOTED if promote else statements.OPEN_LEASES
    rows = statement.rows({"campaign": campaign_id, "user": user.pk})
    return [OpenLease(Offer.from_row(row), row[10], row[11]) for row in rows]


def assignment_of_user(
    *, assignment_id: int, user: AbstractBaseUser, lock: bool = False
) -> Assignment | None:
    """Return the user's own assignment in a campaign the user still belongs to, or None.

    Someone else's assignment is reported exactly like one that does not exist. Only the ids,
    ``state`` and ``holds_slot`` are loaded (the rest is deferred). ``lock`` takes the row lock
    (in a transaction).
    """
    if not -(2**63) <= assignment_id < 2**63:
        return None
    statement = statements.OWN_ASSIGNMENT_LOCKED if lock else statements.OWN_ASSIGNMENT
    rows = statement.rows({"assignment": assignment_id, "user": user.pk})
    if not rows:
        return None
    row = rows[0]
    # from_db takes the loaded values in the model's field order.
    values = dict(zip(statements.OWN_ASSIGNMENT_FIELDS, row, strict=True))
    names = [f.attname for f in Assignment._meta.concrete_fields if f.attname in values]
    return Assignment.from_db(connection.alias, names, [values[name] for name in names])


def vote_last(*, campaign_id: int, user: AbstractBaseUser) -> Vote | None:
    """Return the user's most recent answer in a campaign (with its assignment and clip)."""
    return (
        Vote.objects.select_related("assignment", "task__clip")
        .filter(campaign_id=campaign_id, annotator_id=user.pk)
        .order_by("-created_at", "-id")
        .first()
    )


def campaign_progress(*, campaign_id: int) -> dict[str, int]:
    """Return the campaign's clip counts by consensus status, gold clips, votes and live leases.

    Gold clips are counted apart: they are checks, not work, and keep no consensus of their own.
    Clips whose media failed are counted apart too (``failed``) and in no other number: nobody
    can be shown them, so they are not work still to do.
    """
    usable = ~Q(clip__status=MediaStatus.FAILED)
    by_status = {
        status.value: Count("id", filter=Q(status=status.value, is_gold=False) & usable)
        for status in ConsensusStatus
    }
    totals = Task.objects.filter(campaign_id=campaign_id).aggregate(
        clips=Count("id", filter=usable),
        failed=Count("id", filter=~usable),
        gold=Count("id", filter=Q(is_gold=True) & usable),
        votes=Coalesce(Sum("vote_count"), 0),
        **by_status,
    )
    totals["live_assignments"] = Assignment.objects.filter(
        campaign_id=campaign_id, state=Assignment.State.ACTIVE, expires_at__gt=timezone.now()
    ).count()
    return totals


# --------------------------------------------------------------------------------------------
# Campaign administration: members, the task list, the audit log


def members_of(*, campaign_id: int) -> QuerySet[Membership]:
    """Return a campaign's memberships with their users, by username."""
    return (
        Membership.objects.filter(campaign_id=campaign_id)
        .select_related("user")
        .order_by("user__username")
    )


TASK_ROW_FIELDS = (
    "id", "clip_id", "clip__name", "clip__scene__name", "clip__scene__scenario__name", "status",
    "label", "is_gold", "gold_label", "vote_count", "votes_needed", "agreement",
)  # fmt: skip


def tasks_page(
    *, campaign_id: int, after: int | None = None, limit: int = 50, **filters
) -> tuple[list[dict], int | None]:
    """Return one page of a campaign's tasks in id order, and the ``after`` of the next page.

    ``filters`` (each optional): ``status``, ``scene`` and ``scenario`` (names), ``label`` (a
    class index), ``gold`` (bool), ``clip`` (a clip id, or a clip name when not a number),
    ``agreement_min`` and ``agreement_max``. Keyset pagination on the task id, with no count:
    every page costs the same however deep (indexes ``task_campaign_status``,
    ``task_campaign_label``, ``task_gold``).
    """
    tasks = Task.objects.filter(campaign_id=campaign_id)
    if after is not None:
        tasks = tasks.filter(id__gt=after)
    if (value := filters.get("status")) is not None:
        tasks = tasks.filter(status=value)
    if (value := filters.get("label")) is not None:
        tasks = tasks.filter(label=value)
    if (value := filters.get("gold")) is not None:
        tasks = tasks.filter(is_gold=value)
    # Scenes by id (the scene table is tiny): the plan then walks the tasks in id order and
    # checks each one's clip, instead of joining whole tables.
    if (value := filters.get("scene")) is not None:
        tasks = tasks.filter(
            clip__scene_id__in=list(Scene.objects.filter(name=value).values_list("pk", flat=True))
        )
    if (value := filters.get("scenario")) is not None:
        tasks = tasks.filter(
            clip__scene_id__in=list(
                Scene.objects.filter(scenario__name=value).values_list("pk", flat=True)
            )
        )
    if (value := filters.get("clip")) is not None:
        if value.isdigit() and int(value) < 2**63:
            tasks = tasks.filter(clip_id=int(value))
        else:
            tasks = tasks.filter(clip__name=value)
    if (value := filters.get("agreement_min")) is not None:
        tasks = tasks.filter(agreement__gte=value)
    if (value := filters.get("agreement_max")) is not None:
        tasks = tasks.filter(agreement__lte=value)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A page is a short walk of an index in id order that stops at ``limit``; a parallel
            # plan (chosen when a scene filter makes the planner expect a long walk) starts
            # workers and scans the primary key instead: 50 to 200 ms against 5 to 15 ms for a
            # common status with a scene filter on 200,000 tasks (bench-tasks).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        rows = list(tasks.order_by("id").values(*TASK_ROW_FIELDS)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1]["id"] if more else None


def audit_page(
    *, campaign_id: int, before: int | None = None, limit: int = 50
) -> tuple[list, int | None]:
    """Return one page of a campaign's audit log, newest first, and the next page's ``before``."""
    entries = AuditEntry.objects.filter(campaign_id=campaign_id).select_related("actor")
    if before is not None:
        entries = entries.filter(id__lt=before)
    rows = list(entries.order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].pk if more else None
