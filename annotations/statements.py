"""The hot-path statements, each written twice side by side: SQL for PostgreSQL, ORM elsewhere.

On PostgreSQL the claim, the answer's counters, lease expiry and the lease reads run as prepared
statements, most of them CTEs that write (see ASSIGNMENT.md), and the consensus is written in one
bulk UPDATE. The embedded default (SQLite) has neither PREPARE nor CTEs that write, so each
statement here carries its portable twin: a function of the same parameters that does the same
with the ORM and returns the same rows (columns in the statement's order). SQLite lets one
writer at a time, so the twins need no row locks; each writes in one transaction.

Keep each pair together: a change to one is a change to the other. The tests of the assignment,
answer, trust and review paths run on both databases (``make test``), so both twins are run.
"""

from __future__ import annotations

import hashlib
import io
import re
import weakref
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone

from . import access
from .models import Assignment, ConsensusStatus, GoldTurn, Membership, Task, Vote


class Statement:
    """A hot-path statement that PostgreSQL plans once per connection (PREPARE, then EXECUTE).

    Planning the claim's CTEs costs PostgreSQL about twice as much as running them, and the ORM
    would spend longer still building them. Written with ``%(name)s`` placeholders. Prepared
    statements live as long as the database session, whatever happens to transactions; a new
    connection prepares again. (A pooler in transaction mode would need them turned off.)

    On another database (the embedded SQLite default) ``portable``, the twin defined next to
    the statement, does the same with the ORM and returns the same rows.
    """

    _prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __init__(self, name: str, sql: str, portable: Callable[[dict], list[tuple]]):
        self.name = name
        self.portable = portable
        self.params: list[str] = []

        def number(match: re.Match) -> str:
            if match.group(1) not in self.params:
                self.params.append(match.group(1))
            return f"${self.params.index(match.group(1)) + 1}"

        self.body = re.sub(r"%\((\w+)\)s", number, sql)
        self.call = f"EXECUTE {name}({', '.join(['%s'] * len(self.params))})"

    def execute(self, cursor, params: dict) -> None:
        """Run the statement on a Django cursor, preparing it first on a new connection."""
        done = self._prepared.setdefault(cursor.db.connection, set())
        if self.name not in done:
            cursor.execute(f"PREPARE {self.name} AS {self.body}")
            done.add(self.name)
        cursor.execute(self.call, [params[name] for name in self.params])

    def rows(self, params: dict) -> list[tuple]:
        """Run the statement on the default connection and return its rows (maybe none)."""
        if connection.vendor != "postgresql":
            return self.portable(params)
        with connection.cursor() as cursor:
            self.execute(cursor, params)
            return cursor.fetchall() if cursor.description else []


def _offer_row(assignment: Assignment, clip) -> tuple:
    """An offer's columns, as in selectors.Offer.from_row."""
    return (
        assignment.pk, assignment.expires_at, clip.pk, clip.video.name, clip.poster.name,
        clip.duration_s, clip.fps, clip.frame_count, clip.width, clip.height,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Reads: the user's open leases, the user's own assignment


def _open_leases(params: dict) -> list[tuple]:
    now = timezone.now()
    leases = (
        Assignment.objects.filter(
            campaign_id=params["campaign"], annotator_id=params["user"], state="active"
        )
        .select_related("task__clip")
        .order_by("ahead", "id")
    )
    return [(*_offer_row(a, a.task.clip), a.expires_at > now, a.ahead) for a in leases]


# The user's open leases: the offer (in Offer.from_row's order), then ``live, ahead``.
OPEN_LEASES = Statement(
    "lsf_assignment_open",
    """
SELECT a.id, a.expires_at,
       c.id, c.video, c.poster, c.duration_s, c.fps, c.frame_count, c.width, c.height,
       a.expires_at > now(), a.ahead
FROM annotations_assignment AS a
JOIN annotations_task AS t ON t.id = a.task_id
JOIN clips_clip AS c ON c.id = t.clip_id
WHERE a.campaign_id = %(campaign)s AND a.annotator_id = %(user)s AND a.state = 'active'
ORDER BY a.ahead, a.id
""",
    _open_leases,
)


def _open_leases_promoted(params: dict) -> list[tuple]:
    with transaction.atomic():
        mine = Assignment.objects.filter(
            campaign_id=params["campaign"], annotator_id=params["user"], state="active"
        )
        if not mine.filter(ahead=False).exists():
            mine.filter(ahead=True).update(ahead=False)
        return _open_leases(params)


# The same, after making the lease ahead current when the user holds no current one (the
# current clip was answered or skipped): what next/?ahead=1 and answer-and-next/?ahead=1 read,
# the promotion and the read in one round trip and one statement. The SELECT sees the rows as
# they were before the UPDATE, so the promoted lease's ``ahead`` is taken from ``promoted``. A
# lease closed meanwhile by another request is not promoted (the UPDATE re-checks its state
# under the row lock) and comes back still ahead: the caller then promotes it itself, or finds
# it closed. A current lease claimed meanwhile by another request makes the promotion fail on
# ``assignment_one_active`` (the caller reads again).
OPEN_LEASES_PROMOTED = Statement(
    "lsf_assignment_open_promoted",
    """
WITH promoted AS (
    UPDATE annotations_assignment AS p SET ahead = FALSE
    WHERE p.campaign_id = %(campaign)s AND p.annotator_id = %(user)s AND p.state = 'active'
      AND p.ahead
      AND NOT EXISTS (SELECT 1 FROM annotations_assignment AS cur
                      WHERE cur.campaign_id = %(campaign)s AND cur.annotator_id = %(user)s
                        AND cur.state = 'active' AND NOT cur.ahead)
    RETURNING p.id
)
SELECT a.id, a.expires_at,
       c.id, c.video, c.poster, c.duration_s, c.fps, c.frame_count, c.width, c.height,
       a.expires_at > now(), a.ahead AND a.id NOT IN (SELECT id FROM promoted) AS still_ahead
FROM annotations_assignment AS a
JOIN annotations_task AS t ON t.id = a.task_id
JOIN clips_clip AS c ON c.id = t.clip_id
WHERE a.campaign_id = %(campaign)s AND a.annotator_id = %(user)s AND a.state = 'active'
ORDER BY still_ahead, a.id
""",
    _open_leases_promoted,
)

OWN_ASSIGNMENT_FIELDS = ["id", "campaign_id", "task_id", "annotator_id", "state", "holds_slot"]


def _own_assignment(params: dict) -> list[tuple]:
    return list(
        Assignment.objects.filter(
            pk=params["assignment"],
            annotator_id=params["user"],
            campaign__memberships__user_id=params["user"],
        ).values_list(*OWN_ASSIGNMENT_FIELDS)
    )


# The user's assignment, in a campaign the user belongs to (OWN_ASSIGNMENT_FIELDS).
_OWN_SQL = """
SELECT a.id, a.campaign_id, a.task_id, a.annotator_id, a.state, a.holds_slot
FROM annotations_assignment AS a
WHERE a.id = %(assignment)s AND a.annotator_id = %(user)s
  AND EXISTS (SELECT 1 FROM annotations_membership AS m
              WHERE m.campaign_id = a.campaign_id AND m.user_id = %(user)s)
"""
OWN_ASSIGNMENT = Statement("lsf_assignment_own", _OWN_SQL, _own_assignment)
OWN_ASSIGNMENT_LOCKED = Statement(
    "lsf_assignment_own_locked", _OWN_SQL + " FOR UPDATE OF a", _own_assignment
)


# --------------------------------------------------------------------------------------------
# Lease expiry


def _expire_leases(params: dict) -> list[tuple]:
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


# Frees the slots of leases that ran out. It never waits: a lease being answered or skipped right
# now is left to that request (which sees it still active and gives its slot back itself), and a
# lease whose task another request holds is left to a later claim. A lease changes state once, so
# no slot is freed twice.
EXPIRE_LEASES = Statement(
    "lsf_leases_expire",
    """
WITH due AS (
    SELECT id, task_id, holds_slot FROM annotations_assignment
    WHERE campaign_id = %(campaign)s AND state = 'active' AND expires_at <= now()
    FOR UPDATE SKIP LOCKED
), tasks AS (
    SELECT id FROM annotations_task WHERE id IN (SELECT task_id FROM due)
    FOR UPDATE SKIP LOCKED
), expired AS (
    UPDATE annotations_assignment AS a SET state = 'expired', closed_at = now()
    FROM due WHERE a.id = due.id AND due.task_id IN (SELECT id FROM tasks)
    RETURNING a.task_id, a.holds_slot
), freed AS (
    SELECT task_id, count(*) AS n FROM expired WHERE holds_slot GROUP BY task_id
)
UPDATE annotations_task AS t SET lease_count = t.lease_count - freed.n
FROM freed WHERE t.id = freed.task_id
""",
    _expire_leases,
)


# --------------------------------------------------------------------------------------------
# Claims


def _claim_task(params: dict) -> list[tuple]:
    """The claims' twin: the first open task for the user, or the one named."""
    user = params["user"]
    tasks = (
        _unseen(Task.objects.filter(campaign_id=params["campaign"], clip__status="ready"), user)
        .select_related("clip")
        .filter(
            is_gold=False,
            status=ConsensusStatus.COLLECTING,
            vote_count__lt=F("votes_needed") - F("lease_count"),
        )
        .filter(vote_count__lt=params["below"])
        .order_by("-priority", "-vote_count", "draw", "id")
    )
    if "task" in params:
        tasks = tasks.filter(pk=params["task"])
    with transaction.atomic():
        task = tasks.first()
        if task is None:
            return []
        Task.objects.filter(pk=task.pk).update(lease_count=F("lease_count") + 1)
        assignment = Assignment.objects.create(
            campaign_id=params["campaign"], task=task, annotator_id=user, state="active",
            holds_slot=True, ahead=params["ahead"],
            expires_at=timezone.now() + timedelta(seconds=params["lease"]),
        )  # fmt: skip
        _count_served(campaign=params["campaign"], user=user, gold=False)
    return [_offer_row(assignment, task.clip)]


def gold_draw(user_id: int, task_id: int) -> str:
    """The hash that orders an annotator's gold clips (the claim's ``md5`` in SQL)."""
    return hashlib.md5(f"{user_id}:{task_id}".encode(), usedforsecurity=False).hexdigest()


def gold_order(user_id: int, pool: list[tuple[int, int]]) -> list[int]:
    """Return the gold clips ``(task id, class)`` in the order the claim serves them to a user.

    Within each class the clips are sorted by ``gold_draw``; the classes take turns (every
    class's first clip, then every class's second, ...), ties between turns broken by the hash.
    """
    by_class: dict[int, list[tuple[str, int]]] = {}
    for pk, label in pool:
        by_class.setdefault(label, []).append((gold_draw(user_id, pk), pk))
    ranked = []
    for items in by_class.values():
        items.sort()
        ranked += [(turn, draw, pk) for turn, (draw, pk) in enumerate(items)]
    return [pk for *_, pk in sorted(ranked)]


def _no_locked_candidates(params: dict) -> list[tuple]:
    # With one writer at a time, the first claim saw every open task: none was locked.
    return []


# Neither leased to the user (at any time: answered, skipped or expired) nor voted on by them.
_UNSEEN = """NOT EXISTS (SELECT 1 FROM annotations_assignment AS a
                      WHERE a.task_id = {task} AND a.annotator_id = %(user)s)
      AND NOT EXISTS (SELECT 1 FROM annotations_vote AS v
                      WHERE v.task_id = {task} AND v.annotator_id = %(user)s)"""


def _unseen(queryset, user: int):
    """The twins' _UNSEEN: the tasks of ``queryset`` the user was never leased nor voted on."""
    return queryset.exclude(
        pk__in=Assignment.objects.filter(annotator_id=user).values("task_id")
    ).exclude(pk__in=Vote.objects.filter(annotator_id=user).values("task_id"))


#: A bound on a task's votes that no task reaches (``Task.vote_count`` is a small integer, and
#: so is the claim's ``below``): it lets every task through.
ANY_VOTES = 2**15 - 1

# The tasks a user may be handed: open (the WHERE repeats the task_open index's predicate so
# PostgreSQL can walk that index), clip ready, never seen by this user (leased, skipped or
# answered), the scene's priority first (Task.priority), then fullest first, then in the
# campaign's drawn order (Task.draw). ``below`` bounds the votes a task already holds: the
# campaign's votes_per_clip keeps extra votes from a member the trust model does not rate
# informative (services._claim_task); a bound no task reaches lets every task through. The test
# is on a column of the task_open index, so PostgreSQL checks it on the index entries it walks.
_OPEN_TASKS = """
    FROM annotations_task AS t
    JOIN clips_clip AS c ON c.id = t.clip_id
    WHERE t.campaign_id = %(campaign)s
      AND NOT t.is_gold AND t.status = 'collecting'
      AND t.vote_count < (t.votes_needed - t.lease_count)
      AND t.vote_count < %(below)s
      AND c.status = 'ready'
      AND {unseen}
      {only}
    ORDER BY t.priority DESC, t.vote_count DESC, t.draw, t.id
""".replace("{unseen}", _UNSEEN.format(task="t.id"))

# Count a clip handed to a member (served, and gold_served for gold), in the claim's own
# statement: once the lease is made (`made`), the member's row is updated unless another
# transaction holds it (SKIP LOCKED: the consensus worker holds member rows while it closes gold
# batches, and a missed count only nudges the next gold draw). So the member row adds no wait:
# the claim's task row is locked first (the EXISTS on `made` is a one-time test, run before the
# member row is looked at), and the member row is skipped rather than waited for. ``{p}``
# prefixes the names (a statement that claims besides other work), ``{campaign}`` is the
# campaign's id.
_COUNTED = """{p}counted AS (
    UPDATE annotations_membership AS m
    SET served = m.served + 1, gold_served = m.gold_served + {gold}
    WHERE m.id = (SELECT s.id FROM annotations_membership AS s
                  WHERE EXISTS (SELECT 1 FROM {p}made)
                    AND s.campaign_id = {campaign} AND s.user_id = %(user)s
                  FOR UPDATE SKIP LOCKED)
)"""


def _count_served(*, campaign: int, user: int, gold: bool) -> None:
    """The twins' _COUNTED."""
    Membership.objects.filter(campaign_id=campaign, user_id=user).update(
        served=F("served") + 1, gold_served=F("gold_served") + int(gold)
    )


# The claim locks one task row and, once it has it, the member's row (`counted`, never waiting
# for it). `pick` takes the first open task no one else holds. The slot test
# `vote_count < votes_needed - lease_count` is on that row, so when another claim or answer
# changed it meanwhile, PostgreSQL re-checks the test on the new version after taking the lock:
# two claims can never both take a task's last slot. `held` takes the slot, `made` records the
# lease, `counted` counts it on the membership. As CTEs, so that answer-and-next/ can claim in
# its answer's statement (ANSWER_CLAIM_NEXT); ``{campaign}``, ``{ahead}`` and ``{lease}`` are
# SQL expressions (parameters in the claim statements).
_CLAIM_CTES = """{p}pick AS (
    SELECT t.id, t.clip_id {open_tasks}
    LIMIT 1
    FOR UPDATE OF t {lock}
), {p}held AS (
    UPDATE annotations_task AS t SET lease_count = t.lease_count + 1
    FROM {p}pick AS pick WHERE t.id = pick.id
    RETURNING t.id, t.clip_id
), {p}made AS (
    INSERT INTO annotations_assignment
        (campaign_id, task_id, annotator_id, state, holds_slot, ahead, created_at, expires_at)
    SELECT {campaign}, held.id, %(user)s, 'active', TRUE, {ahead}, now(),
           now() + make_interval(secs => {lease})
    FROM {p}held AS held
    RETURNING id, expires_at, task_id
), {counted}"""


def _claim_ctes(*, p: str, open_tasks: str, lock: str, campaign: str, ahead: str, lease: str):
    """The claim's CTEs, named with the prefix ``p``."""
    counted = _COUNTED.format(p=p, campaign=campaign, gold=0)
    return _CLAIM_CTES.format(
        p=p, open_tasks=open_tasks, lock=lock, campaign=campaign, ahead=ahead, lease=lease,
        counted=counted,
    )  # fmt: skip


_CLAIM_SQL = """
WITH {ctes}
SELECT made.id, made.expires_at,
       c.id, c.video, c.poster, c.duration_s, c.fps, c.frame_count, c.width, c.height
FROM made JOIN held ON held.id = made.task_id JOIN clips_clip AS c ON c.id = held.clip_id
"""


def _claim_sql(*, only: str, lock: str) -> str:
    """A claim statement: the claim's CTEs, then what the user sees."""
    ctes = _claim_ctes(
        p="", open_tasks=_OPEN_TASKS.format(only=only), lock=lock, campaign="%(campaign)s",
        ahead="%(ahead)s", lease="%(lease)s",
    )  # fmt: skip
    return _CLAIM_SQL.format(ctes=ctes)


# First try: skip the rows other requests hold (claims never queue behind each other).
CLAIM_SKIP_LOCKED = Statement(
    "lsf_claim",
    _claim_sql(only="", lock="SKIP LOCKED"),
    _claim_task,
)
# When that finds nothing, the open tasks that were locked may still have slots once their
# holders commit; "nothing left" must never be answered while clips remain. They are tried one
# at a time, waiting for each row's lock while holding no other lock, so that no two claims can
# wait for each other.
LOCKED_CANDIDATES = Statement(
    "lsf_claim_candidates",
    "SELECT t.id " + _OPEN_TASKS.format(only="") + " LIMIT 20",
    _no_locked_candidates,
)
CLAIM_ONE = Statement(
    "lsf_claim_one",
    _claim_sql(only="AND t.id = %(task)s", lock=""),
    _claim_task,
)

# A gold clip has no slots to count: every annotator gets each gold clip once, so nothing is
# locked; the unique (task, annotator) constraint still refuses a second lease on it.
# Each annotator gets the gold in an order of its own (``gold_order``): the classes take turns
# (the annotator's first gold clip of each class, then the second of each, ...) and within a
# class the clips follow a hash of (annotator, clip), so the order cannot be predicted from
# another annotator's and the same annotator always gets the same order. Retired gold is not
# served.
#
# Ranking every gold clip on each gold claim cost a time that grows with the gold: 9-14 ms at
# 1,000 gold clips, 70-76 ms at 10,000 (200,000 clips, 5% gold), where PostgreSQL's CPU per
# clip doubled. So each member's order is kept as a queue (GoldTurn rows, built by
# GOLD_QUEUE_BUILD) and a claim takes the first clip in it that is still gold, not retired, ready
# and unseen, and drops the rows up to it: a few index probes whatever the gold. A queue is
# rebuilt when it is older than GOLD_QUEUE_MAX_AGE_S (gold that became ready meanwhile joins
# it), when the campaign's gold grew (``gold.gold_queues_reset`` empties ``gold_queue_at``) and
# when it runs dry, at most once per GOLD_QUEUE_DRY_S (a member who has seen every gold clip
# does not rank them all on every gold claim). Retired, demoted or not-ready gold is skipped at
# the claim, so a queue built earlier never serves a clip the campaign no longer serves.
GOLD_QUEUE_MAX_AGE_S = 600
GOLD_QUEUE_DRY_S = 60


# A task the campaign serves as gold: gold, not retired, its media ready. The clip's status is
# looked up by key (a join made the planner hash every clip of the campaign).
_SERVED_GOLD = """t.is_gold AND NOT t.gold_retired
      AND (SELECT c.status FROM clips_clip AS c WHERE c.id = t.clip_id) = 'ready'"""


def _gold_pool(campaign_id: int):
    """The twins' _SERVED_GOLD."""
    return Task.objects.filter(
        campaign_id=campaign_id, is_gold=True, gold_retired=False, clip__status="ready"
    )


def _claim_gold(params: dict) -> list[tuple]:
    user, campaign = params["user"], params["campaign"]
    built = (
        Membership.objects.filter(campaign_id=campaign, user_id=user)
        .values_list("gold_queue_at", flat=True)
        .first()
    )
    if built is None or built <= timezone.now() - timedelta(seconds=GOLD_QUEUE_MAX_AGE_S):
        return []
    queue = GoldTurn.objects.filter(campaign_id=campaign, annotator_id=user)
    usable = set(
        _unseen(_gold_pool(campaign).filter(pk__in=queue.values("task_id")), user).values_list(
            "pk", flat=True
        )
    )
    with transaction.atomic():
        turn = next((t for t in queue.order_by("rank") if t.task_id in usable), None)
        if turn is None:
            return []
        queue.filter(rank__lte=turn.rank).delete()
        task = Task.objects.select_related("clip").get(pk=turn.task_id)
        assignment = Assignment.objects.create(
            campaign_id=campaign, task=task, annotator_id=user, state="active",
            holds_slot=False, ahead=params["ahead"],
            expires_at=timezone.now() + timedelta(seconds=params["lease"]),
        )  # fmt: skip
        _count_served(campaign=campaign, user=user, gold=True)
    return [_offer_row(assignment, task.clip)]


# The first usable clip of the member's queue, leased; the rows up to it dropped. No row: the
# queue is stale or holds nothing usable (the caller then runs GOLD_QUEUE_BUILD and tries again).
_CLAIM_GOLD_SQL = """
WITH fresh AS (
    SELECT 1 FROM annotations_membership AS m
    WHERE m.campaign_id = %(campaign)s AND m.user_id = %(user)s
      AND m.gold_queue_at > now() - make_interval(secs => %(max_age)s)
), pick AS (
    SELECT g.rank, t.id, t.clip_id
    FROM annotations_goldturn AS g
    JOIN annotations_task AS t ON t.id = g.task_id
    WHERE g.campaign_id = %(campaign)s AND g.annotator_id = %(user)s
      AND EXISTS (SELECT 1 FROM fresh)
      AND {served_gold}
      AND {unseen}
    ORDER BY g.rank
    LIMIT 1
), spent AS (
    DELETE FROM annotations_goldturn AS g USING pick
    WHERE g.campaign_id = %(campaign)s AND g.annotator_id = %(user)s AND g.rank <= pick.rank
), made AS (
    INSERT INTO annotations_assignment
        (campaign_id, task_id, annotator_id, state, holds_slot, ahead, created_at, expires_at)
    SELECT %(campaign)s, pick.id, %(user)s, 'active', FALSE, %(ahead)s, now(),
           now() + make_interval(secs => %(lease)s)
    FROM pick
    RETURNING id, expires_at, task_id
){counted}
SELECT made.id, made.expires_at,
       c.id, c.video, c.poster, c.duration_s, c.fps, c.frame_count, c.width, c.height
FROM made JOIN pick ON pick.id = made.task_id JOIN clips_clip AS c ON c.id = pick.clip_id
"""
CLAIM_GOLD = Statement(
    "lsf_claim_gold",
    _CLAIM_GOLD_SQL.format(
        served_gold=_SERVED_GOLD,
        unseen=_UNSEEN.format(task="t.id"),
        counted=", " + _COUNTED.format(p="", campaign="%(campaign)s", gold=1),
    ),
    _claim_gold,
)


def gold_queues_reset(*, campaign_id: int) -> None:
    """The campaign's gold grew: every member's gold queue is rebuilt at their next gold claim."""
    Membership.objects.filter(campaign_id=campaign_id, gold_queue_at__isnull=False).update(
        gold_queue_at=None
    )


def _gold_queue_build(params: dict) -> list[tuple]:
    user, campaign = params["user"], params["campaign"]
    now = timezone.now()
    with transaction.atomic():
        rebuilt = (
            Membership.objects.filter(campaign_id=campaign, user_id=user)
            .exclude(gold_queue_at__gt=now - timedelta(seconds=params["dry"]))
            .update(gold_queue_at=now)
        )
        if not rebuilt:
            return [(0,)]
        GoldTurn.objects.filter(campaign_id=campaign, annotator_id=user).delete()
        pool = _gold_pool(campaign)
        unseen = set(_unseen(pool, user).values_list("pk", flat=True))
        order = gold_order(user, list(pool.values_list("pk", "gold_label")))
        GoldTurn.objects.bulk_create(
            GoldTurn(campaign_id=campaign, annotator_id=user, rank=rank, task_id=pk)
            for rank, pk in enumerate((pk for pk in order if pk in unseen), start=1)
        )
    return [(1,)]


# (Re)build the member's gold queue: every usable gold clip the member has not seen, in the
# member's order. Only when the queue was built before ``dry`` seconds ago (or never): the row
# lock on the membership makes a second request of the same member wait, then find it built.
# Returns 1 if it built the queue, else 0.
_GOLD_QUEUE_SQL = """
WITH member AS (
    UPDATE annotations_membership AS m SET gold_queue_at = now()
    WHERE m.campaign_id = %(campaign)s AND m.user_id = %(user)s
      AND (m.gold_queue_at IS NULL OR m.gold_queue_at <= now() - make_interval(secs => %(dry)s))
    RETURNING m.id
), cleared AS (
    DELETE FROM annotations_goldturn AS g
    WHERE g.campaign_id = %(campaign)s AND g.annotator_id = %(user)s
      AND EXISTS (SELECT 1 FROM member)
), ranked AS (
    SELECT t.id, t.gold_label,
           md5(CAST(%(user)s AS bigint)::text || ':' || t.id::text) COLLATE "C" AS draw
    FROM annotations_task AS t
    WHERE EXISTS (SELECT 1 FROM member)
      AND t.campaign_id = %(campaign)s AND {served_gold}
), turns AS (
    SELECT id, draw, row_number() OVER (PARTITION BY gold_label ORDER BY draw) AS turn
    FROM ranked
), queued AS (
    INSERT INTO annotations_goldturn (campaign_id, annotator_id, rank, task_id)
    SELECT %(campaign)s, %(user)s, row_number() OVER (ORDER BY turn, draw), id
    FROM turns
    WHERE {unseen}
)
SELECT count(*) FROM member
"""
GOLD_QUEUE_BUILD = Statement(
    "lsf_gold_queue_build",
    _GOLD_QUEUE_SQL.format(served_gold=_SERVED_GOLD, unseen=_UNSEEN.format(task="turns.id")),
    _gold_queue_build,
)


# --------------------------------------------------------------------------------------------
# Answers


def _answer_stored(params: dict) -> list[tuple]:
    at = timezone.now()  # one process serves the embedded default: its clock is the clock
    with transaction.atomic():
        own = list(
            Assignment.objects.select_for_update()
            .filter(
                pk=params["assignment"],
                annotator_id=params["user"],
                campaign__memberships__user_id=params["user"],
            )
            .values_list("id", "campaign_id", "task_id", "state", "holds_slot")
        )
        if not own:
            return []
        pk, campaign_id, task_id, state, holds_slot = own[0]
        if state not in ("active", "expired"):
            return [(pk, campaign_id, task_id, state, holds_slot, None, None, None)]
        vote = Vote.objects.create(
            campaign_id=campaign_id, task_id=task_id, annotator_id=params["user"],
            assignment_id=pk, answer=params["answer"], time_ms=params["time_ms"],
        )  # fmt: skip
        Vote.objects.filter(pk=vote.pk).update(created_at=at, updated_at=at)
        Assignment.objects.filter(pk=pk).update(state="answered", closed_at=at)
        Task.objects.filter(pk=task_id).update(
            vote_count=F("vote_count") + 1,
            lease_count=F("lease_count") - int(state == "active" and holds_slot),
            consensus_stale=True,
            vote_seq=F("vote_seq") + 1,
            updated_at=Now(),
        )
        is_gold = Task.objects.filter(pk=task_id).values_list("is_gold", flat=True)[0]
    return [(pk, campaign_id, task_id, state, holds_slot, vote.pk, is_gold, at)]


# A fresh answer in one round trip and one statement (no BEGIN/COMMIT: it is its own
# transaction): lock the user's own assignment (in a campaign the user belongs to); if it is
# still open (active, or expired: a late answer is kept) close it, store the vote, count it and
# mark the task's consensus stale (consensus.consensus_enqueue's mark, so that a lost consensus
# message is caught up by the sweep). Returns the assignment's id, campaign, task, state (as
# found) and holds_slot, then the vote's id, whether the task is gold and the vote's time. The
# time is the database's clock: the correction window and the idle-batch cutoff compare it with
# that clock, whichever web server took the answer. The vote's id is null when the assignment
# was already answered or skipped (the caller then takes the slow path: a retry, a correction
# or a refusal). No row: not the user's assignment.
#
# A double submit waits on the row lock, then sees the assignment answered (the lock re-reads
# the row) and stores nothing. A second vote of the user on the task fails on the unique
# constraint and the whole statement is undone.
_ANSWER_SQL = """
WITH own AS (
    SELECT a.id, a.campaign_id, a.task_id, a.state, a.holds_slot
    FROM annotations_assignment AS a
    WHERE a.id = %(assignment)s AND a.annotator_id = %(user)s
      AND EXISTS (SELECT 1 FROM annotations_membership AS m
                  WHERE m.campaign_id = a.campaign_id AND m.user_id = %(user)s)
    FOR UPDATE OF a
), closed AS (
    UPDATE annotations_assignment AS s SET state = 'answered', closed_at = statement_timestamp()
    FROM own
    WHERE s.id = own.id AND own.state IN ('active', 'expired')
    RETURNING own.id, own.campaign_id, own.task_id,
              CASE WHEN own.state = 'active' AND own.holds_slot THEN 1 ELSE 0 END AS freed
), vote AS (
    INSERT INTO annotations_vote
        (campaign_id, task_id, annotator_id, assignment_id, answer, time_ms, is_valid,
         created_at, updated_at)
    SELECT closed.campaign_id, closed.task_id, %(user)s, %(assignment)s, %(answer)s,
           %(time_ms)s, TRUE, statement_timestamp(), statement_timestamp()
    FROM closed
    RETURNING id, created_at
), counted AS (
    UPDATE annotations_task AS t
    SET vote_count = vote_count + 1, lease_count = lease_count - closed.freed,
        consensus_stale = TRUE, vote_seq = vote_seq + 1, updated_at = statement_timestamp()
    FROM closed
    WHERE t.id = closed.task_id
    RETURNING t.is_gold
){more}
SELECT own.id, own.campaign_id, own.task_id, own.state, own.holds_slot,
       (SELECT id FROM vote), (SELECT is_gold FROM counted), (SELECT created_at FROM vote)
       {columns}
FROM own {joins}
"""
ANSWER_STORED = Statement(
    "lsf_answer_stored", _ANSWER_SQL.format(more="", columns="", joins=""), _answer_stored
)

# The columns of one open lease, as OPEN_LEASES gives them.
_LEASE_WIDTH = 12


def _answer_stored_next(params: dict) -> list[tuple]:
    rows = _answer_stored(params)
    if not rows:
        return []
    head, user = rows[0], params["user"]
    member = access.member_row(campaign_id=head[1], user_id=user)
    if member is None:
        return []
    stored = head[5] is not None
    leases = _open_leases_promoted({"campaign": head[1], "user": user}) if stored else []
    return [(*head, *member, *lease) for lease in leases] or [
        (*head, *member, *[None] * _LEASE_WIDTH)
    ]


# The lease ahead made current (answer-and-next/), as ANSWER_STORED_NEXT says below.
_PROMOTED = """, promoted AS (
    UPDATE annotations_assignment AS p SET ahead = FALSE
    FROM closed
    WHERE p.campaign_id = closed.campaign_id AND p.annotator_id = %(user)s
      AND p.state = 'active' AND p.ahead AND p.id <> closed.id
      AND NOT EXISTS (SELECT 1 FROM annotations_assignment AS cur
                      WHERE cur.campaign_id = closed.campaign_id AND cur.annotator_id = %(user)s
                        AND cur.state = 'active' AND NOT cur.ahead AND cur.id <> closed.id)
    RETURNING p.id, p.expires_at > now() AS live
)"""

_MEMBER_AND_LEASES = ", " + access.member_columns() + ", l.*"
# The membership with its campaign, and the user's open leases as the statement leaves them
# (``{claimed}``: a lease the statement itself made, which its own scan cannot see).
_LEASES_AFTER = """JOIN annotations_membership AS m
    ON m.campaign_id = own.campaign_id AND m.user_id = %(user)s
JOIN annotations_campaign AS c ON c.id = own.campaign_id
LEFT JOIN LATERAL (
    SELECT a.id AS lease, a.expires_at,
           k.id AS clip, k.video, k.poster, k.duration_s, k.fps, k.frame_count, k.width,
           k.height, a.expires_at > now() AS live,
           a.ahead AND a.id NOT IN (SELECT id FROM promoted) AS still_ahead
    FROM annotations_assignment AS a
    JOIN annotations_task AS t ON t.id = a.task_id
    JOIN clips_clip AS k ON k.id = t.clip_id
    WHERE a.campaign_id = own.campaign_id AND a.annotator_id = %(user)s AND a.state = 'active'
      AND a.id NOT IN (SELECT id FROM closed){claimed}
) AS l ON TRUE
ORDER BY l.still_ahead, l.lease"""

# The answer (as ANSWER_STORED), then what answer-and-next/ reads before handing the next clip,
# in the same round trip: the user's membership with its campaign (``access.member_columns``)
# and, once the answer is stored, the user's open leases as OPEN_LEASES_PROMOTED leaves them
# (the lease ahead made current when the user holds no other current lease), one row per lease
# (at least one row: the lease columns are null when none is open). The promotion joins
# ``closed``, so it runs after the answered lease left the current place (the unique
# constraint ``assignment_one_active`` sees the two rows in that order); the SELECT sees the
# rows as they were before the statement, so the answered lease is left out and the promoted
# one's ``ahead`` is taken from ``promoted``. When another request of the user took a current
# lease meanwhile the promotion fails on that constraint and the whole statement is undone:
# the caller then stores the answer with ANSWER_STORED.
ANSWER_STORED_NEXT = Statement(
    "lsf_answer_stored_next",
    _ANSWER_SQL.format(
        more=_PROMOTED,
        columns=_MEMBER_AND_LEASES,
        joins=_LEASES_AFTER.format(claimed=""),
    ),
    _answer_stored_next,
)

# answer-and-next/?ahead=1 in its usual case: ANSWER_STORED_NEXT, and the next clip ahead
# claimed in the same statement, which saves the claim's own round trip and commit. `go` holds
# the conditions under which services.assignment_next would claim an ordinary clip ahead right
# away, and the claim runs only when they all hold: the answer was stored and the lease ahead
# became current, still live; the campaign hands out clips; the member is not paused, has no
# daily quota and is not qualifying; no gold is due by the caller's ``draw`` (the same draw
# ``Membership.gold_due`` then takes, on the same counts: the member row as the statement found
# it); ``below`` is the bound ``_claim_task`` tries first. In any other case nothing is claimed
# here and the caller claims as answer-and-next/ always did (gold, qualification, the other
# bounds, the locked candidates). Locks: the claim's `pick` waits for nothing (SKIP LOCKED) and
# runs after `counted` has the answered task's row (its one-time EXISTS on `go`); the claim adds
# no wait for a task row, only the lease insert's unique checks against another request of the
# same user (as any claim has). A lease it made ahead is added
# to the rows (``still_ahead``). On SQLite the twin claims nothing; the caller claims.
_GO = """, go AS (
    SELECT CASE WHEN %(extras)s AND NOT m.informative THEN c.votes_per_clip
                ELSE {any_votes} END AS below,
           c.lease_seconds AS lease
    FROM own
    JOIN annotations_membership AS m ON m.campaign_id = own.campaign_id AND m.user_id = %(user)s
    JOIN annotations_campaign AS c ON c.id = own.campaign_id
    WHERE EXISTS (SELECT 1 FROM counted)
      AND EXISTS (SELECT 1 FROM promoted WHERE promoted.live)
      AND c.state = 'active' AND m.paused_at IS NULL
      AND m.daily_quota IS NULL AND c.daily_quota IS NULL
      AND (c.qualification_clips = 0 OR m.qualified_at IS NOT NULL)
      AND %(draw)s >= c.gold_share * (m.served + 1) - m.gold_served
), """
_AHEAD_CLAIMED = """
    UNION ALL
    SELECT made.id, made.expires_at,
           k.id, k.video, k.poster, k.duration_s, k.fps, k.frame_count, k.width, k.height,
           TRUE, TRUE
    FROM ahead_made AS made
    JOIN ahead_held AS held ON held.id = made.task_id
    JOIN clips_clip AS k ON k.id = held.clip_id"""
ANSWER_CLAIM_NEXT = Statement(
    "lsf_answer_claim_next",
    _ANSWER_SQL.format(
        more=_PROMOTED
        + _GO.format(any_votes=ANY_VOTES)
        + _claim_ctes(
            p="ahead_",
            open_tasks=_OPEN_TASKS.format(only="AND EXISTS (SELECT 1 FROM go)")
            .replace("%(campaign)s", "(SELECT campaign_id FROM own)")
            .replace("%(below)s", "(SELECT below FROM go)"),
            lock="SKIP LOCKED",
            campaign="(SELECT campaign_id FROM own)",
            ahead="TRUE",
            lease="(SELECT lease FROM go)",
        ),
        columns=_MEMBER_AND_LEASES,
        joins=_LEASES_AFTER.format(claimed=_AHEAD_CLAIMED),
    ),
    _answer_stored_next,
)


# --------------------------------------------------------------------------------------------
# The consensus write

CONSENSUS_COLUMNS = (
    "id", "counts", "vote_count", "status", "label", "agreement", "votes_needed", "ds_label",
    "ds_confidence", "vote_seq",
)  # fmt: skip
_TYPES = (
    "bigint", "jsonb", "int", "text", "int", "double precision", "int", "int",
    "double precision", "bigint",
)  # fmt: skip
# Fewer rows than this go in one UPDATE ... FROM (VALUES ...); more are COPYed to a temp table.
_COPY_FROM = 2000

# Both versions write a row only while the task's ``vote_seq`` is the one its votes were read at,
# and only when something differs (or the task is marked stale).
_CONSENSUS_UPDATE = """
UPDATE annotations_task t
SET counts = r.counts, vote_count = r.vote_count,
    -- A reviewer's decision taken while the votes were read still holds.
    status = CASE WHEN t.review_locked THEN t.status ELSE r.status END,
    label = CASE WHEN t.review_locked THEN t.label ELSE r.label END,
    agreement = r.agreement, votes_needed = r.votes_needed,
    ds_label = r.ds_label, ds_confidence = r.ds_confidence,
    consensus_stale = false, updated_at = now()
FROM {source}
WHERE t.id = r.id AND t.vote_seq = r.vote_seq
  AND (t.counts IS DISTINCT FROM r.counts OR t.status IS DISTINCT FROM r.status
       OR t.label IS DISTINCT FROM r.label OR t.votes_needed <> r.votes_needed
       OR t.vote_count <> r.vote_count OR t.agreement <> r.agreement
       OR t.ds_label IS DISTINCT FROM r.ds_label
       OR t.ds_confidence IS DISTINCT FROM r.ds_confidence
       OR t.consensus_stale)
"""

# The twin, one row at a time (SQLite: ``IS NOT`` is its IS DISTINCT FROM; json() compares the
# counts whatever their spacing).
_CONSENSUS_UPDATE_ROW = """
UPDATE annotations_task
SET counts = %(counts)s, vote_count = %(vote_count)s,
    status = CASE WHEN review_locked THEN status ELSE %(status)s END,
    label = CASE WHEN review_locked THEN label ELSE %(label)s END,
    agreement = %(agreement)s, votes_needed = %(votes_needed)s,
    ds_label = %(ds_label)s, ds_confidence = %(ds_confidence)s,
    consensus_stale = 0, updated_at = %(now)s
WHERE id = %(id)s AND vote_seq = %(vote_seq)s
  AND (json(counts) IS NOT json(%(counts)s) OR status IS NOT %(status)s
       OR label IS NOT %(label)s OR votes_needed <> %(votes_needed)s
       OR vote_count <> %(vote_count)s OR agreement <> %(agreement)s
       OR ds_label IS NOT %(ds_label)s OR ds_confidence IS NOT %(ds_confidence)s
       OR consensus_stale)
"""


def consensus_write(rows: list[tuple]) -> int:
    """Write consensus rows (``CONSENSUS_COLUMNS``); return how many tasks changed.

    A row is written only while the task's ``vote_seq`` is the one its votes were read at: a
    vote committed since (or still storing: the UPDATE waits for its row lock) leaves the row to
    that vote's own consensus message. A row equal to the task's consensus is not touched.
    """
    if not rows:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            now = timezone.now()
            changed = 0
            for row in rows:
                cursor.execute(
                    _CONSENSUS_UPDATE_ROW,
                    {**dict(zip(CONSENSUS_COLUMNS, row, strict=True)), "now": now},
                )
                changed += cursor.rowcount
            return changed
        if len(rows) < _COPY_FROM:
            from psycopg2.extras import execute_values

            template = "(" + ", ".join(f"%s::{t}" for t in _TYPES) + ")"
            source = f"(VALUES %s) AS r ({', '.join(CONSENSUS_COLUMNS)})"
            execute_values(
                cursor.cursor,
                _CONSENSUS_UPDATE.format(source=source),
                rows,
                template,
                page_size=len(rows),
            )
            return cursor.rowcount
        # Within an outer transaction (a test, a caller's atomic block) ON COMMIT has not run.
        cursor.execute("DROP TABLE IF EXISTS consensus_rows")
        columns = ", ".join(f"{c} {t}" for c, t in zip(CONSENSUS_COLUMNS, _TYPES, strict=True))
        cursor.execute(f"CREATE TEMP TABLE consensus_rows ({columns}) ON COMMIT DROP")
        buffer = io.StringIO()
        # One format per row (86,000 rows: a generator per value took 0.4 s).
        line = "\t".join(["%s"] * len(CONSENSUS_COLUMNS)) + "\n"
        buffer.writelines(
            line % tuple(r"\N" if v is None else v for v in row) if None in row else line % row
            for row in rows
        )
        buffer.seek(0)
        cursor.copy_expert(
            f"COPY consensus_rows ({', '.join(CONSENSUS_COLUMNS)}) FROM STDIN", buffer
        )
        cursor.execute(_CONSENSUS_UPDATE.format(source="consensus_rows r"))
        return cursor.rowcount
