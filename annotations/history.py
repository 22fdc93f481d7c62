"""Progress over time: answers per hour, trusted clips per day, the finish estimate and each
annotator's throughput and active time (read-only; the dashboard's chart).

Every figure is one grouped query over an index: votes by ``(campaign, created_at)``
(``vote_campaign_time``), tasks by ``(campaign, status, id)``. Nothing here walks a campaign's
votes in Python: at 86,000 clips x 5 votes the heaviest query (active time, a window over the
last week's votes) reads only that week's index range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Greatest, TruncDate, TruncHour
from django.utils import timezone

from .models import ConsensusStatus, Task, Vote

WINDOW_DAYS = 7
# A pause longer than this between two answers ends a stretch of work: it is not active time.
ACTIVE_GAP_S = 300
# The rate behind the finish estimate: answers over the last this many hours.
RATE_HOURS = 24

_DECIDED = [ConsensusStatus.TRUSTED, ConsensusStatus.ADJUDICATED]


@dataclass
class AnnotatorStretch:
    username: str
    answers: int
    active_s: float
    per_hour: float | None


@dataclass
class History:
    since: datetime
    hours: list[dict] = field(default_factory=list)
    trusted: list[dict] = field(default_factory=list)
    trusted_total: int = 0
    votes_left: int = 0
    rate_per_hour: float = 0.0
    finish_at: datetime | None = None
    annotators: list[AnnotatorStretch] = field(default_factory=list)


def _answers_per_hour(campaign_id: int, since: datetime) -> list[dict]:
    rows = (
        Vote.objects.filter(campaign_id=campaign_id, created_at__gte=since)
        .annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(answers=Count("id"))
        .order_by("hour")
    )
    return [{"hour": r["hour"], "answers": r["answers"]} for r in rows]


def _trusted_per_day(campaign_id: int) -> tuple[list[dict], int]:
    """Cumulative trusted (or adjudicated) clips per day, by the day their task last changed.

    A decided task leaves the claim's queue and is rarely written again, so ``updated_at`` is
    close to the time it was decided; a later recompute or review moves it to that day.
    """
    rows = (
        Task.objects.filter(campaign_id=campaign_id, status__in=_DECIDED, is_gold=False)
        .annotate(day=TruncDate("updated_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    total = 0
    out = []
    for r in rows:
        total += r["n"]
        out.append({"day": r["day"], "trusted": total})
    return out, total


def _votes_left(campaign_id: int) -> int:
    left = Task.objects.filter(
        campaign_id=campaign_id, status=ConsensusStatus.COLLECTING, is_gold=False
    ).aggregate(n=Sum(Greatest(F("votes_needed") - F("vote_count"), 0)))["n"]
    return int(left or 0)


# Per annotator over the window: answers, and the sum of the gaps under ACTIVE_GAP_S seconds
# between consecutive answers (a window over the vote_annotator index; the gap in seconds is
# written once per vendor).
_ANNOTATORS_SQL = """
SELECT u.username, count(*), coalesce(sum(CASE WHEN g.gap < %(limit)s THEN g.gap END), 0)
FROM (
    SELECT annotator_id, {gap} AS gap
    FROM annotations_vote WHERE campaign_id = %(campaign)s AND created_at >= %(since)s
) AS g
JOIN auth_user AS u ON u.id = g.annotator_id
GROUP BY u.username ORDER BY u.username
"""
_LAG = "lag(created_at) OVER (PARTITION BY annotator_id ORDER BY created_at)"
ANNOTATORS_SQL = {
    "postgresql": _ANNOTATORS_SQL.replace("{gap}", f"extract(epoch FROM created_at - {_LAG})"),
    "sqlite": _ANNOTATORS_SQL.replace(
        "{gap}", f"(julianday(created_at) - julianday({_LAG})) * 86400.0"
    ),
}


def _annotators(campaign_id: int, since: datetime) -> list[AnnotatorStretch]:
    sql = ANNOTATORS_SQL[connection.vendor]
    params = {"campaign": campaign_id, "since": since, "limit": ACTIVE_GAP_S}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    out = []
    for username, answers, active in rows:
        active = float(active or 0)
        # The first answer of each stretch has no gap before it; with too little active time
        # for a rate, none is given.
        per_hour = round(answers / (active / 3600), 1) if active >= 60 else None
        out.append(AnnotatorStretch(username, int(answers), round(active, 1), per_hour))
    return out


def campaign_history(*, campaign_id: int, now: datetime | None = None) -> History:
    """Return the campaign's progress over the last ``WINDOW_DAYS`` days and its estimate.

    The finish estimate divides the votes still needed by the answer rate of the last
    ``RATE_HOURS`` hours; with no answers in that time there is no estimate.
    """
    now = now or timezone.now()
    since = (now - timedelta(days=WINDOW_DAYS)).replace(minute=0, second=0, microsecond=0)
    history = History(since=since)
    history.hours = _answers_per_hour(campaign_id, since)
    history.trusted, history.trusted_total = _trusted_per_day(campaign_id)
    history.votes_left = _votes_left(campaign_id)
    recent = Vote.objects.filter(
        Q(campaign_id=campaign_id) & Q(created_at__gte=now - timedelta(hours=RATE_HOURS))
    ).count()
    history.rate_per_hour = round(recent / RATE_HOURS, 2)
    if history.votes_left and recent:
        history.finish_at = now + timedelta(hours=history.votes_left / (recent / RATE_HOURS))
    history.annotators = _annotators(campaign_id, since)
    return history
