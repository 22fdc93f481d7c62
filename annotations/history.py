"""Progress over time: answers per hour, trusted clips per day, the finish estimate and each
annotator's throughput and active time (read-only; the dashboard's chart).

Answers per hour and per annotator come from ``VoteHour``, a per-hour rollup that a periodic
task (``votes_roll_up``, beat ``roll-up-vote-hours``) writes for whole hours that ended a few
minutes ago, plus the votes after the campaign's ``VoteHourMark`` read live: the request reads
a week of hourly rows and at most the last hour or so of votes, instead of a week of votes (a
window over 215,000 of them at 86,000 clips x 5 votes). Without a rollup (a new campaign, no
beat running) every figure is read live from the votes, with the same result. The vote's write
path is not touched: no query is added to answering.

Tasks are read by ``(campaign, status, id)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Greatest, TruncDate, TruncHour
from django.utils import timezone

from .models import ConsensusStatus, Task, Vote, VoteHour, VoteHourMark

WINDOW_DAYS = 7
# A pause longer than this between two answers ends a stretch of work: it is not active time.
ACTIVE_GAP_S = 300
# The rate behind the finish estimate: answers over the last this many hours.
RATE_HOURS = 24
# An hour is rolled up once it ended this long ago: a vote is stamped when its transaction
# starts, so one committing later than this into a rolled hour would be missed (answer
# transactions last milliseconds).
ROLLUP_LAG = timedelta(minutes=3)

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


def _answers_per_hour(campaign_id: int, since: datetime, mark: datetime | None) -> list[dict]:
    if mark is not None:
        rolled = (
            VoteHour.objects.filter(campaign_id=campaign_id, hour__gte=since, hour__lt=mark)
            .values("hour")
            .annotate(answers=Sum("answers"))
            .order_by("hour")
        )
        # The mark is a whole hour: the rolled hours and the live ones never overlap.
        return [{"hour": r["hour"], "answers": r["answers"]} for r in rolled] + (
            _answers_per_hour(campaign_id, mark, None)
        )
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
# The gap before an answer is measured to the annotator's previous answer even when that one
# fell just before ``since`` (the votes from ``since`` - ACTIVE_GAP_S are read for it), as the
# rollup does across hours.
_ANNOTATORS_SQL = """
SELECT u.username, count(*), coalesce(sum(CASE WHEN g.gap < %(limit)s THEN g.gap END), 0)
FROM (
    SELECT annotator_id, created_at, {gap} AS gap
    FROM annotations_vote WHERE campaign_id = %(campaign)s AND created_at >= %(lag_from)s
) AS g
JOIN auth_user AS u ON u.id = g.annotator_id
WHERE g.created_at >= %(since)s
GROUP BY u.username ORDER BY u.username
"""
_LAG = "lag(created_at) OVER (PARTITION BY annotator_id ORDER BY created_at)"
ANNOTATORS_SQL = {
    "postgresql": _ANNOTATORS_SQL.replace("{gap}", f"extract(epoch FROM created_at - {_LAG})"),
    "sqlite": _ANNOTATORS_SQL.replace(
        "{gap}", f"(julianday(created_at) - julianday({_LAG})) * 86400.0"
    ),
}


def _annotators_live(campaign_id: int, since: datetime) -> dict[str, list]:
    sql = ANNOTATORS_SQL[connection.vendor]
    params = {
        "campaign": campaign_id, "since": since, "limit": ACTIVE_GAP_S,
        "lag_from": since - timedelta(seconds=ACTIVE_GAP_S),
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {username: [answers, float(active or 0)] for username, answers, active in cursor}


def _annotators(campaign_id: int, since: datetime, mark: datetime | None) -> list:
    if mark is None:
        totals = _annotators_live(campaign_id, since)
    else:
        rolled = (
            VoteHour.objects.filter(campaign_id=campaign_id, hour__gte=since, hour__lt=mark)
            .values("annotator__username")
            .annotate(answers=Sum("answers"), active=Sum("active_s"))
        )
        totals = {r["annotator__username"]: [r["answers"], r["active"]] for r in rolled}
        for username, (answers, active) in _annotators_live(campaign_id, mark).items():
            total = totals.setdefault(username, [0, 0.0])
            total[0] += answers
            total[1] += active
    out = []
    for username, (answers, active) in sorted(totals.items()):
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
    mark = (
        VoteHourMark.objects.filter(campaign_id=campaign_id)
        .values_list("rolled_until", flat=True)
        .first()
    )
    if mark is not None and mark <= since:
        mark = None  # nothing of the window is rolled up yet
    history.hours = _answers_per_hour(campaign_id, since, mark)
    history.trusted, history.trusted_total = _trusted_per_day(campaign_id)
    history.votes_left = _votes_left(campaign_id)
    recent = Vote.objects.filter(
        Q(campaign_id=campaign_id) & Q(created_at__gte=now - timedelta(hours=RATE_HOURS))
    ).count()
    history.rate_per_hour = round(recent / RATE_HOURS, 2)
    if history.votes_left and recent:
        history.finish_at = now + timedelta(hours=history.votes_left / (recent / RATE_HOURS))
    history.annotators = _annotators(campaign_id, since, mark)
    return history


def _hour_of(at: datetime) -> datetime:
    """Return the start of ``at``'s hour in the current time zone (as ``TruncHour``)."""
    return timezone.localtime(at).replace(minute=0, second=0, microsecond=0)


def votes_roll_up(*, campaign_id: int, now: datetime | None = None) -> int:
    """Roll the campaign's votes of whole hours that ended ``ROLLUP_LAG`` ago into ``VoteHour``;
    return the number of rows written. Idempotent: each hour is rolled once, and the mark moves
    past it in the same transaction (a second run at once waits on the mark's lock, then finds
    nothing to do).
    """
    now = now or timezone.now()
    until = _hour_of(now - ROLLUP_LAG)
    with transaction.atomic():
        mark = VoteHourMark.objects.select_for_update().filter(campaign_id=campaign_id).first()
        if mark is not None:
            start = mark.rolled_until
        else:
            first = (
                Vote.objects.filter(campaign_id=campaign_id)
                .order_by("created_at")
                .values_list("created_at", flat=True)
                .first()
            )
            if first is None:
                return 0
            # Hours older than the history's window are never read: the first run of an old
            # campaign starts a day before it.
            start = max(_hour_of(first), _hour_of(now - timedelta(days=WINDOW_DAYS + 1)))
        if start >= until:
            return 0
        votes = (
            Vote.objects.filter(
                campaign_id=campaign_id,
                created_at__gte=start - timedelta(seconds=ACTIVE_GAP_S),
                created_at__lt=until,
            )
            .order_by("annotator_id", "created_at")
            .values_list("annotator_id", "created_at")
        )
        cells: dict[tuple[int, datetime], list] = {}
        previous: tuple[int, datetime] | None = None
        for annotator, at in votes.iterator(chunk_size=5000):
            if at >= start:
                cell = cells.setdefault((annotator, _hour_of(at)), [0, 0.0])
                cell[0] += 1
                if previous is not None and previous[0] == annotator:
                    gap = (at - previous[1]).total_seconds()
                    if gap < ACTIVE_GAP_S:
                        cell[1] += gap
            previous = (annotator, at)
        VoteHour.objects.bulk_create(
            [
                VoteHour(campaign_id=campaign_id, annotator_id=a, hour=h, answers=n, active_s=t)
                for (a, h), (n, t) in cells.items()
            ],
            batch_size=2000,
        )
        VoteHourMark.objects.update_or_create(
            campaign_id=campaign_id, defaults={"rolled_until": until}
        )
    return len(cells)
