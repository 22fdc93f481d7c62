"""Writes for campaigns and annotation: membership, clips, claiming clips, answers and skips.

How the next clip is chosen, and why it is race-free, is described in ASSIGNMENT.md.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Count, DateTimeField, ExpressionWrapper, F
from django.db.models.functions import Now
from django.utils import timezone
from rest_framework.authtoken.models import Token

from clips.models import Clip
from labelstudio_ferv.errors import Conflict, NotFound, ValidationError
from labelstudio_ferv.expressions import Answer

from . import access, guidelines, priorities, quality, rules, selectors
from .consensus import consensus_enqueue, consensus_message
from .models import Assignment, AuditEntry, Campaign, Membership, Role, Task, Vote
from .selectors import Offer
from .statements import (
    ANSWER_CLAIM_NEXT,
    ANSWER_STORED,
    ANSWER_STORED_NEXT,
    ANY_VOTES,
    CLAIM_GOLD,
    CLAIM_ONE,
    CLAIM_SKIP_LOCKED,
    EXPIRE_LEASES,
    GOLD_QUEUE_BUILD,
    GOLD_QUEUE_DRY_S,
    GOLD_QUEUE_MAX_AGE_S,
    LOCKED_CANDIDATES,
    Statement,
    gold_queues_reset,
)

# Fields of a campaign that an admin may set (create and edit): its name, text and rules.
CAMPAIGN_FIELDS = (
    "name", "description", "votes_per_clip", "max_votes", "min_agreement", "gold_share",
    "lease_seconds", "batch_size", "aggregation", "ds_threshold", "guidelines",
    "guideline_examples", "daily_quota", "scene_priority", "target_precision", "audit_share",
    "qualification_clips", "gold_max_answers", "quality_confidence",
)  # fmt: skip


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(f"{field}: {message}", details={field: [message]})


def campaign_check(*, campaign: Campaign, trust_rule: bool = True) -> None:
    """Raise ValidationError, naming the field, unless the campaign's rules make sense.

    Besides the ranges the database enforces, refuse a majority rule that asks for votes that
    can never settle a clip (rules.py), unless ``trust_rule`` is off (an edit that leaves the
    rule as it was does not have to fix an older campaign's rule).
    """
    if not campaign.name.strip():
        raise _invalid("name", "A campaign needs a name.")
    if Campaign.objects.filter(name=campaign.name).exclude(pk=campaign.pk).exists():
        raise _invalid("name", f"A campaign named {campaign.name!r} exists already.")
    if campaign.votes_per_clip < 1:
        raise _invalid("votes_per_clip", "A clip needs at least 1 vote.")
    if campaign.max_votes < campaign.votes_per_clip:
        raise _invalid(
            "max_votes",
            f"max_votes ({campaign.max_votes}) must be at least votes_per_clip "
            f"({campaign.votes_per_clip}).",
        )
    if campaign.max_votes > rules.MAX_VOTES_CHECKED:
        raise _invalid("max_votes", f"At most {rules.MAX_VOTES_CHECKED} votes per clip.")
    shares = {
        "min_agreement": (campaign.min_agreement, False),
        "gold_share": (campaign.gold_share, True),
        "ds_threshold": (campaign.ds_threshold, False),
        "audit_share": (campaign.audit_share, True),
    }
    for field, (value, zero_ok) in shares.items():
        if not (0 <= value <= 1 if zero_ok else 0 < value <= 1):
            bounds = "between 0 and 1" if zero_ok else "above 0 and at most 1"
            raise _invalid(field, f"{field} is a share: {bounds} (got {value}).")
    # Open intervals, as the database's check constraints: a posterior of 1 is never reached,
    # and a target of 1/2 or less would trust a clip that is as likely wrong as right.
    if not 0.5 < campaign.target_precision < 1:
        raise _invalid(
            "target_precision",
            f"target_precision is a probability above 0.5 and below 1 (got "
            f"{campaign.target_precision}).",
        )
    if not 0 < campaign.quality_confidence < 1:
        raise _invalid(
            "quality_confidence",
            f"quality_confidence is a probability above 0 and below 1 (got "
            f"{campaign.quality_confidence}).",
        )
    if campaign.lease_seconds < 10:
        raise _invalid("lease_seconds", "A lease lasts at least 10 seconds.")
    if campaign.batch_size < 1:
        raise _invalid("batch_size", "A batch holds at least 1 answer.")
    if campaign.daily_quota is not None and campaign.daily_quota < 1:
        raise _invalid("daily_quota", "A daily quota is at least 1 answer (null: no limit).")
    if len(campaign.guidelines) > guidelines.MAX_GUIDELINES_CHARS:
        raise _invalid(
            "guidelines", f"At most {guidelines.MAX_GUIDELINES_CHARS} characters of guidelines."
        )
    campaign.guideline_examples = guidelines.examples_check(
        campaign=campaign, examples=campaign.guideline_examples
    )
    campaign.scene_priority = priorities.scene_priority_check(campaign.scene_priority)
    if trust_rule and campaign.aggregation == Campaign.Aggregation.MAJORITY:
        stuck = rules.unsettleable_example(
            votes_per_clip=campaign.votes_per_clip,
            max_votes=campaign.max_votes,
            min_agreement=campaign.min_agreement,
            answers=len(Answer),
        )
        if stuck is not None:
            raise ValidationError(
                f"max_votes: {stuck.message()}",
                details={"max_votes": [stuck.message()], "min_agreement": [stuck.message()]},
                code="unsettleable_rules",
            )


@transaction.atomic
def campaign_create(*, name: str, created_by: AbstractBaseUser | None = None, **rules) -> Campaign:
    """Create a campaign with its rules and make its creator an admin of it."""
    campaign = Campaign(name=name, created_by=created_by, **rules)
    campaign_check(campaign=campaign)
    campaign.full_clean()
    campaign.save()
    AuditEntry.record(
        campaign=campaign, actor=created_by, action="campaign_created",
        rules={field: getattr(campaign, field) for field in CAMPAIGN_FIELDS},
    )  # fmt: skip
    if created_by is not None:
        membership_set(campaign=campaign, user=created_by, role=Role.ADMIN)
    return campaign


def membership_set(*, campaign: Campaign, user: AbstractBaseUser, role: str) -> Membership:
    """Give a user a role in a campaign (creating or changing the membership)."""
    membership, _ = Membership.objects.update_or_create(
        campaign=campaign, user=user, defaults={"role": role}
    )
    return membership


# Task.draw: the round (the clip's rank among those of its source video in the campaign) above
# a 32-bit hash of campaign and source, so that rounds never mix.
_ROUND = 2**32


def task_draw(*, campaign_id: int, source: str, round_: int) -> int:
    """Return a task's place in the claim order: ``round_`` first, then a hash of the campaign
    and ``source`` (a source video, or the clip itself when it has none).

    Every clip of one source gets the same hash, so the sources come in one random order
    (the same every time for a campaign) and a source's k-th clip in round k: its pieces are
    as far apart as the campaign allows.
    """
    digest = hashlib.blake2b(f"{campaign_id}:{source}".encode(), digest_size=4).digest()
    return round_ * _ROUND + int.from_bytes(digest, "big")


def campaign_add_clips(*, campaign: Campaign, clips: Iterable[Clip]) -> int:
    """Add clips to a campaign, skipping those already in it; return how many were added."""
    clip_list = list(clips)
    present = set(
        Task.objects.filter(campaign=campaign, clip__in=clip_list).values_list("clip_id", flat=True)
    )
    fresh = sorted(
        (clip for clip in clip_list if clip.pk not in present),
        key=lambda clip: (clip.start_s or 0.0, clip.pk),
    )
    # Clips of each source video already in the campaign: new ones continue their rounds.
    sources = {clip.source_video_id for clip in fresh} - {None}
    rounds = Counter(
        dict(
            Task.objects.filter(campaign=campaign, clip__source_video_id__in=sources)
            .values_list("clip__source_video_id")
            .annotate(n=Count("id"))
            .values_list("clip__source_video_id", "n")
        )
    )
    rows = []
    by_scene = priorities.scene_priorities(campaign_id=campaign.pk) if fresh else {}
    for clip in fresh:
        if clip.source_video_id is None:
            source, round_ = f"clip-{clip.pk}", 0
        else:
            source, round_ = f"video-{clip.source_video_id}", rounds[clip.source_video_id]
            rounds[clip.source_video_id] += 1
        draw = task_draw(campaign_id=campaign.pk, source=source, round_=round_)
        priority = by_scene.get(clip.scene_id, 0)
        rows.append(
            Task(
                campaign=campaign, clip=clip, votes_needed=campaign.votes_per_clip, draw=draw,
                priority=priority,
            )
        )  # fmt: skip
    # ignore_conflicts: a concurrent import adding the same clip is not an error.
    Task.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return len(rows)


# --------------------------------------------------------------------------------------------
# Onboarding


@dataclass(frozen=True)
class Credential:
    username: str
    token: str
    password: str | None  # set only for accounts created here with a password


# New usernames: Django's rule (letters, digits and @.+-_) and, since they end up in CSV files
# opened in spreadsheets, a letter or digit first (no "=1+2", "+", "-" or "@" formulas).
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9@.+_-]{0,149}")


def _check_usernames(names: Iterable[str]) -> None:
    """Raise ValidationError naming every username that may not be given to a new account."""
    validator = UnicodeUsernameValidator()
    bad = []
    for name in names:
        try:
            validator(name)
        except DjangoValidationError:
            bad.append(name)
            continue
        if not _USERNAME.fullmatch(name):
            bad.append(name)
    if bad:
        raise ValidationError(
            "Usernames must start with a letter or digit and hold only letters, digits and "
            f"@ . + - _ (at most 150): {', '.join(repr(name) for name in bad)}.",
            code="bad_username",
        )


def annotators_create(
    *,
    campaign: Campaign,
    usernames: list[str],
    role: str = Role.ANNOTATOR,
    with_passwords: bool = False,
) -> list[Credential]:
    """Create the accounts that do not exist yet, add all to the campaign; return their tokens.

    Existing accounts keep their password, and existing members keep their role (a list of
    annotators never demotes the campaign's admin). New accounts get a random password when
    ``with_passwords`` is set, else none (they use their API token only).
    """
    user_model = get_user_model()
    passwords: dict[str, str] = {}
    with transaction.atomic():
        known = set(
            user_model.objects.filter(username__in=usernames).values_list("username", flat=True)
        )
        _check_usernames(name for name in dict.fromkeys(usernames) if name not in known)
        fresh = []
        for name in dict.fromkeys(usernames):
            if name in known:
                continue
            user = user_model(username=name)
            if with_passwords:
                passwords[name] = secrets.token_urlsafe(12)
                user.set_password(passwords[name])
            else:
                user.set_unusable_password()
            fresh.append(user)
        user_model.objects.bulk_create(fresh)
        users = {u.username: u for u in user_model.objects.filter(username__in=usernames)}
        Token.objects.bulk_create(
            [Token(user=u, key=Token.generate_key()) for u in users.values()],
            ignore_conflicts=True,  # one token per user: existing tokens stay as they are
        )
        tokens = dict(Token.objects.filter(user__in=users.values()).values_list("user_id", "key"))
        Membership.objects.bulk_create(
            [Membership(campaign=campaign, user=u, role=role) for u in users.values()],
            ignore_conflicts=True,
        )
    return [
        Credential(username=name, token=tokens[users[name].pk], password=passwords.get(name))
        for name in dict.fromkeys(usernames)
    ]


# --------------------------------------------------------------------------------------------
# Assignment: handing clips to annotators


_CLAIM_ATTEMPTS = 5
DEADLOCK_DETECTED = "40P01"
# A claim sweeps its campaign's expired leases at most this often per process (and always
# before it would answer "nothing left"); the sweep is cheap, but not free on every request.
_SWEEP_EVERY_S = 1.0
_last_sweep: dict[int, float] = {}


def leases_expire(*, campaign_id: int) -> None:
    """Mark the campaign's leases past their time as expired and give their slots back."""
    _last_sweep[campaign_id] = time.monotonic()
    EXPIRE_LEASES.rows({"campaign": campaign_id})


def _sweep_due(*, campaign_id: int) -> bool:
    """Run ``leases_expire`` when this process has not for ``_SWEEP_EVERY_S``; say if it did."""
    if time.monotonic() - _last_sweep.get(campaign_id, 0.0) <= _SWEEP_EVERY_S:
        return False
    leases_expire(campaign_id=campaign_id)
    return True


def _execute(statement: Statement, params: dict) -> tuple | None:
    """Run one statement and return its first row.

    Alone, the statement is its own transaction; inside an enclosing transaction it gets a
    savepoint, so that a unique-constraint refusal does not spoil that transaction.
    """
    if connection.in_atomic_block:
        with transaction.atomic():
            rows = statement.rows(params)
    else:
        rows = statement.rows(params)
    return rows[0] if rows else None


def _claim(
    *, campaign: Campaign, user: AbstractBaseUser, statement: Statement, ahead: bool, **extra
) -> Offer | None:
    params = {
        "campaign": campaign.pk, "user": user.pk, "lease": campaign.lease_seconds,
        "ahead": ahead, **extra,
    }  # fmt: skip
    row = _execute(statement, params)
    return None if row is None else Offer.from_row(row)


def _claim_gold(*, campaign: Campaign, user: AbstractBaseUser, ahead: bool) -> Offer | None:
    """Claim the member's next gold clip from their gold queue, (re)building the queue when
    it is stale or dry (statements.CLAIM_GOLD); None when no gold clip is left for them."""

    def claim() -> Offer | None:
        return _claim(
            campaign=campaign, user=user, statement=CLAIM_GOLD, ahead=ahead,
            max_age=GOLD_QUEUE_MAX_AGE_S,
        )  # fmt: skip

    offer = claim()
    build = {"campaign": campaign.pk, "user": user.pk, "dry": GOLD_QUEUE_DRY_S}
    if offer is None and GOLD_QUEUE_BUILD.rows(build)[0][0]:
        offer = claim()
    return offer


def _claim_task(
    *, campaign: Campaign, user: AbstractBaseUser, ahead: bool, informative: bool = True
) -> Offer | None:
    """Claim the first open task for the user. A member the trust model does not rate
    informative gets a clip that already holds ``votes_per_clip`` votes (an extra vote) only
    when no other clip is left for them, so no clip waits while anyone can give its vote."""
    bounds = [ANY_VOTES] if informative else [campaign.votes_per_clip, ANY_VOTES]
    for below in bounds:
        offer = _claim(
            campaign=campaign, user=user, statement=CLAIM_SKIP_LOCKED, ahead=ahead, below=below
        )
        if offer is not None:
            return offer
        rows = LOCKED_CANDIDATES.rows({"campaign": campaign.pk, "user": user.pk, "below": below})
        for (task_id,) in rows:
            offer = _claim(
                campaign=campaign, user=user, statement=CLAIM_ONE, ahead=ahead, task=task_id,
                below=below,
            )  # fmt: skip
            if offer is not None:
                return offer
    return None


def assignment_next(
    *,
    campaign: Campaign,
    membership: Membership,
    user: AbstractBaseUser,
    ahead: bool = False,
    leases: list[selectors.OpenLease] | None = None,
    ahead_draw: float | None = None,
) -> Offer | None:
    """Return the user's current assignment in the campaign, or claim the next clip for them.

    Return None when no clip is left for this user. Asking again while an assignment is open
    returns that assignment, so a retried request never takes a second slot. With ``ahead``,
    the offer also carries a second clip held for the user (claimed if need be), for the
    browser to preload while the first one plays; once the current assignment is closed, the
    one ahead becomes current. ``leases``: the user's open leases as just read (by the answer
    of answer-and-next/), so as not to read them again; ``ahead_draw``: the gold draw of the
    clip ahead, when that answer took it (ANSWER_CLAIM_NEXT decided on it already).
    """
    # A paused or closed campaign hands out nothing, not even a lease already held (its answer
    # is still accepted).
    if refusal := campaign.refusal():
        raise Conflict(refusal[0], code=refusal[1])
    priorities.quota_check(campaign=campaign, membership=membership, user=user)
    # Asking for a clip ahead, the user usually holds one from the last request: it becomes
    # current in the same statement that reads the leases.
    offer, leases = _assignment_take(
        campaign=campaign, membership=membership, user=user, ahead=False, promote=ahead,
        known=leases,
    )  # fmt: skip
    if offer is None or not ahead:
        return offer
    held, _ = _assignment_take(
        campaign=campaign, membership=membership, user=user, ahead=True, known=leases,
        draw=ahead_draw,
    )  # fmt: skip
    return replace(offer, ahead=held)


def _assignment_take(
    *,
    campaign: Campaign,
    membership: Membership,
    user: AbstractBaseUser,
    ahead: bool,
    known: list[selectors.OpenLease] | None = None,
    promote: bool = False,
    draw: float | None = None,
) -> tuple[Offer | None, list[selectors.OpenLease]]:
    """Return the user's open current (or ahead) assignment, claiming one if there is none.

    Also return the user's open leases as they stand afterwards, which the next call may take
    as ``known`` instead of reading them again (if they changed meanwhile, a claim fails on the
    unique constraint and the loop reads them). With ``promote`` (current leases only), the
    read itself makes the lease ahead current when there is no current one. ``draw``: the gold
    draw to take (a fresh one by default).
    """
    qualifying = quality.qualification_due(campaign=campaign, membership=membership)
    draw = random.random() if draw is None else draw
    gold = qualifying or membership.gold_due(share=campaign.gold_share, draw=draw)
    for _attempt in range(_CLAIM_ATTEMPTS):
        try:
            if known is not None:
                leases, known = known, None
            else:
                leases = _leases_open(campaign=campaign, user=user, promote=promote)
            mine = [lease for lease in leases if lease.ahead == ahead]
            if not ahead and not mine and leases:
                # The current clip was answered or skipped: the one ahead takes its place.
                lease = leases[0]
                promoted = Assignment.objects.filter(
                    pk=lease.offer.assignment_id, state=Assignment.State.ACTIVE
                ).update(ahead=False)
                if promoted and lease.live:
                    return lease.offer, [replace(lease, ahead=False)]
                continue
            if mine:
                if mine[0].live:
                    return mine[0].offer, leases
                expired = mine[0].offer.assignment_id
                _lease_close(assignment_id=expired, state=Assignment.State.EXPIRED)
                continue  # the clip ahead, if any, may now take its place
            offer, is_gold = _claim_new(
                campaign=campaign, user=user, ahead=ahead, gold=gold, only_gold=qualifying,
                informative=_informative(membership),
            )  # fmt: skip
            if qualifying and offer is None:
                # No gold clip left for this newcomer: nothing to qualify on.
                quality.qualification_no_gold_left(membership=membership)
                qualifying = False
                offer, is_gold = _claim_new(
                    campaign=campaign, user=user, ahead=ahead, gold=gold,
                    informative=_informative(membership),
                )  # fmt: skip
        except IntegrityError:
            # Another request of the same user claimed first (one open assignment per user,
            # campaign and place, one assignment per user and clip): loop to return or redo it.
            continue
        except OperationalError as exc:
            # Not expected (a claim waits only for its task row, before it holds any), but a
            # deadlock abort leaves nothing behind and is safe to redo.
            if getattr(exc.__cause__, "pgcode", None) != DEADLOCK_DETECTED:
                raise
            continue
        if offer is None:
            return None, leases
        # The claim counted it on the membership (statements._COUNTED); the clip ahead,
        # claimed next in this request, draws on the counts as they are now.
        membership.served += 1
        membership.gold_served += int(is_gold)
        return offer, [*leases, selectors.OpenLease(offer, True, ahead)]
    raise Conflict("Too many requests for a clip at once; try again.", code="busy")


def _leases_open(
    *, campaign: Campaign, user: AbstractBaseUser, promote: bool
) -> list[selectors.OpenLease]:
    if not promote:
        return selectors.assignments_open(campaign_id=campaign.pk, user=user)
    # Its own transaction; inside a caller's, a savepoint keeps a refusal from breaking it.
    with transaction.atomic() if connection.in_atomic_block else nullcontext():
        return selectors.assignments_open(campaign_id=campaign.pk, user=user, promote=True)


def _informative(membership: Membership) -> bool:
    """Whether the member may claim extra-vote clips as any other (``_claim_task``): always
    unless ``settings.TRUST_INFORMATIVE_EXTRAS`` routes them to informative members first."""
    return membership.informative or not settings.TRUST_INFORMATIVE_EXTRAS


def _claim_new(
    *,
    campaign: Campaign,
    user: AbstractBaseUser,
    ahead: bool,
    gold: bool,
    only_gold: bool = False,
    informative: bool = True,
) -> tuple[Offer | None, bool]:
    """Claim a new clip (gold when one is due; only gold with ``only_gold``); return it and
    whether it is gold. ``informative``: the member's rating (``_claim_task``)."""
    swept = _sweep_due(campaign_id=campaign.pk)
    # Gold is mixed into real work; with none left unseen, the stream goes on without.
    if gold:
        offer = _claim_gold(campaign=campaign, user=user, ahead=ahead)
        if offer is not None or only_gold:
            return offer, offer is not None
    offer = _claim_task(campaign=campaign, user=user, ahead=ahead, informative=informative)
    if offer is None and not swept:
        # Before answering "nothing left": a lease that just ran out frees a slot.
        leases_expire(campaign_id=campaign.pk)
        offer = _claim_task(campaign=campaign, user=user, ahead=ahead, informative=informative)
    return offer, False


def _lease_close(*, assignment_id: int, state: str) -> Assignment | None:
    """Close an open lease as skipped or expired and give its slot back; return it, locked.

    A lease that is no longer open is returned unchanged (the caller decides what that means).
    Runs in the caller's transaction, or in its own.
    """
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update(of=("self",)).filter(pk=assignment_id).first()
        )
        if assignment is None or assignment.state != Assignment.State.ACTIVE:
            return assignment
        assignment.state = state
        assignment.closed_at = timezone.now()
        assignment.save(update_fields=["state", "closed_at"])
        if assignment.holds_slot:
            Task.objects.filter(pk=assignment.task_id).update(lease_count=F("lease_count") - 1)
        return assignment


# --------------------------------------------------------------------------------------------
# Answers, corrections and skips


@dataclass(frozen=True)
class AnswerResult:
    vote: Vote
    created: bool
    # With ``then_next``, a fresh answer's membership (with its campaign) and the user's open
    # leases, read with it (None otherwise).
    membership: Membership | None = None
    leases: list[selectors.OpenLease] | None = None


def assignment_answer(
    *,
    user: AbstractBaseUser,
    assignment_id: int,
    answer: int,
    time_ms: int | None = None,
    then_next: bool = False,
    ahead_draw: float | None = None,
) -> AnswerResult:
    """Store the user's answer to an assignment; answering again is a no-op or a correction.

    An answer that arrives after the lease ran out is stored all the same: the annotator's work
    is never thrown away, even when the clip was meanwhile handed to someone else (the clip may
    then get one vote more than it needed, which the consensus handles like any extra vote).

    A fresh answer (the usual case) is one statement, ``ANSWER_STORED``; an assignment already
    answered or skipped takes the transaction below (a retry, a correction or a refusal).
    With ``then_next`` (the caller hands the next clip right after), a fresh answer also
    returns the user's membership and campaign and the open leases, the lease ahead made
    current (``ANSWER_STORED_NEXT``): ``assignment_next`` takes them instead of reading them.
    With ``ahead_draw`` (answer-and-next/?ahead=1: the gold draw of the clip ahead), the same
    statement also claims that clip when nothing stands in the way (``ANSWER_CLAIM_NEXT``):
    it is among the leases returned, and ``assignment_next`` hands it as it finds it.
    """
    if not -(2**63) <= assignment_id < 2**63:
        raise NotFound("Assignment not found.")
    params = {
        "assignment": assignment_id, "user": user.pk, "answer": answer, "time_ms": time_ms,
        "draw": ahead_draw, "extras": settings.TRUST_INFORMATIVE_EXTRAS,
    }  # fmt: skip
    if not then_next:
        statement = ANSWER_STORED
    else:
        statement = ANSWER_STORED_NEXT if ahead_draw is None else ANSWER_CLAIM_NEXT
    for _attempt in range(3):
        try:
            # Its own transaction; inside a caller's, a savepoint keeps a refusal from breaking it.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                rows = statement.rows(params)
            break
        except IntegrityError as exc:
            constraint = _constraint(exc)
            if statement is ANSWER_CLAIM_NEXT and constraint in _LEASE_CONSTRAINTS:
                # Another request of the user took a lease meanwhile (the current one, or the
                # clip ahead or its task): nothing was stored; store the answer without a claim.
                statement = ANSWER_STORED_NEXT
                continue
            if statement is ANSWER_STORED_NEXT and constraint == "assignment_one_active":
                # The promotion met a current lease that another request of the user took
                # meanwhile: nothing was stored; store the answer alone.
                statement = ANSWER_STORED
                continue
            # Only a vote on this clip stored outside this assignment gets here.
            raise Conflict("You have already answered this clip.", code="already_answered")
    if not rows:
        raise NotFound("Assignment not found.")
    _, campaign_id, task_id, _, _, vote_id, task_is_gold, at = rows[0][:_ANSWER_WIDTH]
    if vote_id is not None:
        vote = Vote(
            id=vote_id, campaign_id=campaign_id, task_id=task_id, annotator_id=user.pk,
            assignment_id=assignment_id, answer=answer, time_ms=time_ms, created_at=at,
            updated_at=at,
        )  # fmt: skip
        vote._state.adding = False
        vote.task_is_gold = task_is_gold  # spares answer_feedback a query
        consensus_message(task_id=task_id)
        if statement is ANSWER_STORED:
            return AnswerResult(vote=vote, created=True)
        membership = access.member_from_row(rows[0][_ANSWER_WIDTH:_LEASES_AT])
        leases = [
            selectors.OpenLease(Offer.from_row(row[_LEASES_AT:]), row[-2], row[-1])
            for row in rows
            if row[_LEASES_AT] is not None
        ]
        if statement is ANSWER_CLAIM_NEXT and any(lease.ahead for lease in leases):
            # The statement claimed the clip ahead; the lease sweep that a claim runs once a
            # second (``_claim_new``) runs here.
            _sweep_due(campaign_id=campaign_id)
        return AnswerResult(vote=vote, created=True, membership=membership, leases=leases)
    return _answer_closed(user=user, assignment_id=assignment_id, answer=answer)


# The constraints on a user's leases that ANSWER_CLAIM_NEXT's promotion or claim may meet.
_LEASE_CONSTRAINTS = ("assignment_one_active", "assignment_task_once")
# ANSWER_STORED's columns, then (ANSWER_STORED_NEXT) the membership's, then a lease's.
_ANSWER_WIDTH = 8
_LEASES_AT = _ANSWER_WIDTH + len(access.member_columns().split(", "))


def _constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint an IntegrityError broke (PostgreSQL; None elsewhere)."""
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def _answer_closed(*, user: AbstractBaseUser, assignment_id: int, answer: int) -> AnswerResult:
    """An answer to an assignment found answered or skipped: a retry, a correction, a refusal.

    Read again under the row lock, which serialises it with a correction sent twice. (No state
    goes back to open: an assignment answered or skipped stays so.)
    """
    with transaction.atomic():
        assignment = selectors.assignment_of_user(assignment_id=assignment_id, user=user, lock=True)
        if assignment is None:
            raise NotFound("Assignment not found.")
        if assignment.state == Assignment.State.SKIPPED:
            raise Conflict("This clip was skipped; it cannot be answered.", code="skipped")
        return _answer_again(assignment=assignment, user=user, answer=answer)


def _answer_again(*, assignment: Assignment, user: AbstractBaseUser, answer: int) -> AnswerResult:
    """Change the user's answer to an answered clip (see "Corrections" in ASSIGNMENT.md).

    Whether a correction is taken depends on the user's own votes and the time only, never on
    the clip's consensus: a refusal that followed the label would tell the annotator what the
    others voted. The consensus is then recomputed from the votes, whatever it was.
    """
    vote = Vote.objects.filter(task_id=assignment.task_id, annotator_id=user.pk).first()
    if vote is None:  # removed by an admin since
        raise Conflict("This answer was removed; it cannot be changed.", code="answer_removed")
    if vote.answer == answer:
        return AnswerResult(vote=vote, created=False)
    last = selectors.vote_last(campaign_id=assignment.campaign_id, user=user)
    if last is None or last.pk != vote.pk:
        raise Conflict("Only your most recent answer can be changed.", code="not_last_answer")
    # Timed by the database's clock, the one every web process shares.
    window = timedelta(seconds=settings.CORRECTION_WINDOW_SECONDS)
    opened_since = ExpressionWrapper(Now() - window, output_field=DateTimeField())
    if not Vote.objects.filter(pk=vote.pk, created_at__gt=opened_since).exists():
        raise Conflict("This answer can no longer be changed.", code="answer_final")
    vote.answer = answer
    vote.save(update_fields=["answer", "updated_at"])
    consensus_enqueue(task_id=vote.task_id)
    return AnswerResult(vote=vote, created=False)


def assignment_skip(*, user: AbstractBaseUser, assignment_id: int) -> Assignment:
    """Give the clip back; it is not offered to this user again. Skipping twice is a no-op.

    A lease that ran out can still be skipped (it then only records that the user passed).
    """
    with transaction.atomic():
        assignment = selectors.assignment_of_user(assignment_id=assignment_id, user=user, lock=True)
        if assignment is None:
            raise NotFound("Assignment not found.")
        if assignment.state == Assignment.State.ANSWERED:
            raise Conflict("This clip is answered; it cannot be skipped.", code="answered")
        if assignment.state == Assignment.State.EXPIRED:
            assignment.state = Assignment.State.SKIPPED
            assignment.save(update_fields=["state"])
            return assignment
        return _lease_close(assignment_id=assignment.pk, state=Assignment.State.SKIPPED)


# --------------------------------------------------------------------------------------------
# Review


def task_set_gold(
    *, campaign: Campaign, task_id: int, label: int | None, actor: AbstractBaseUser | None = None
) -> Task:
    """Make a clip gold with a reference label, or (label None) an ordinary clip again."""
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(campaign=campaign, pk=task_id).first()
        if task is None:
            raise NotFound("Clip not found in this campaign.")
        if (task.gold_label, task.is_gold) != (label, label is not None):
            AuditEntry.record(
                campaign=campaign, actor=actor,
                action="gold_set" if label is not None else "gold_retired",
                task=task.pk, clip=task.clip_id,
                label=None if label is None else Answer(label).key,
                previous=None if task.gold_label is None else Answer(task.gold_label).key,
            )  # fmt: skip
        task.is_gold = label is not None
        task.gold_label = label
        task.save(update_fields=["is_gold", "gold_label", "updated_at"])
        if task.is_gold:
            gold_queues_reset(campaign_id=campaign.pk)
        # A clip that stops being gold takes its status from its votes again.
        consensus_enqueue(task_id=task.pk)
    return task
