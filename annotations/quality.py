"""Annotator quality in a campaign: the gold evidence, pauses and reinstatements.

Each annotator's gold answers in a campaign (since their last reinstatement) give a Beta
posterior on their accuracy (``agreement.score_annotator``). Confidently below the
unacceptable line, the annotator is paused at once: ``next/`` refuses them (403
``annotator_paused``) until a reviewer reinstates them. Every pause and reinstatement is a row
of ``AnnotatorPause`` (who, when, why). See AGGREGATION.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from labelstudio_ferv.errors import Conflict, NotFound, PermissionDenied
from labelstudio_ferv.expressions import Answer

from . import agreement
from .models import AnnotatorPause, Assignment, Campaign, Membership, Task, Vote

PAUSED_MESSAGE = (
    "You are paused in this campaign: {reason} A reviewer will look at your answers and can "
    "let you go on. Your answers so far are saved."
)


@dataclass(frozen=True)
class GoldEvidence:
    """An annotator's gold answers in a campaign since ``since`` (None: since joining)."""

    correct: int
    total: int
    since: datetime | None

    def verdict(self, campaign: Campaign) -> agreement.Verdict:
        return agreement.score_annotator(
            self.correct, self.total, confidence=campaign.quality_confidence
        )


def gold_evidence(*, campaign_id: int, annotator_id: int) -> GoldEvidence:
    """Count the annotator's gold answers (right, all) since their last reinstatement."""
    since = (
        AnnotatorPause.objects.filter(
            campaign_id=campaign_id,
            annotator_id=annotator_id,
            action=AnnotatorPause.Action.REINSTATE,
        )
        .order_by("-id")
        .values_list("created_at", flat=True)
        .first()
    )
    votes = Vote.objects.filter(
        campaign_id=campaign_id, annotator_id=annotator_id, task__is_gold=True
    )
    if since is not None:
        votes = votes.filter(created_at__gt=since)
    # Both counts in one pass over the annotator's votes (this runs after every gold answer).
    counts = votes.aggregate(
        total=Count("id"), correct=Count("id", filter=Q(answer=F("task__gold_label")))
    )
    return GoldEvidence(correct=counts["correct"], total=counts["total"], since=since)


def annotator_gate(*, membership: Membership) -> None:
    """Refuse a paused member a new clip: 403 ``annotator_paused`` with the reason."""
    if membership.paused_at is not None:
        raise PermissionDenied(
            PAUSED_MESSAGE.format(reason=membership.pause_reason or "your answers are checked."),
            code="annotator_paused",
            details={"paused_at": membership.paused_at.isoformat()},
        )


QUALIFICATION_FAILED = (
    "{correct} of your {total} qualification clips were answered right, which is too few to "
    "start on real clips."
)


def qualification_due(*, campaign: Campaign, membership: Membership) -> bool:
    """Whether the member's next clip is a qualification (gold) clip.

    A campaign with ``qualification_clips`` hands a newcomer gold clips first, with the right
    answer shown after each (``answer_feedback``). After each one the evidence is judged
    (``agreement.qualification_state``): passed, the member gets real clips from then on
    (``qualified_at``); failed, the member is paused with the reason and this raises the 403
    ``annotator_paused``; else another gold clip is due.
    """
    if not campaign.qualification_clips or membership.qualified_at is not None:
        return False
    evidence = gold_evidence(campaign_id=campaign.pk, annotator_id=membership.user_id)
    state = agreement.qualification_state(
        evidence.correct, evidence.total, clips=campaign.qualification_clips
    )
    if state == agreement.QUALIFYING:
        return True
    with transaction.atomic():
        member = Membership.objects.select_for_update(of=("self",)).get(pk=membership.pk)
        if state == agreement.QUALIFIED:
            member.qualified_at = membership.qualified_at = timezone.now()
            member.save(update_fields=["qualified_at"])
            return False
        reason = QUALIFICATION_FAILED.format(correct=evidence.correct, total=evidence.total)
        annotator_pause_locked(member=member, reason=reason)
    annotator_gate(membership=member)
    return False  # not reached: the gate refuses a paused member


def qualification_no_gold_left(*, membership: Membership) -> None:
    """No gold clip is left for a qualifying member: nothing to qualify on, so they pass."""
    Membership.objects.filter(pk=membership.pk, qualified_at__isnull=True).update(
        qualified_at=timezone.now()
    )
    membership.qualified_at = timezone.now()


def answer_feedback(*, vote: Vote) -> dict | None:
    """The right answer after a qualification clip (a gold clip answered before passing).

    A vote just stored knows whether its clip is gold (``task_is_gold``): the usual answer,
    not a gold clip, costs no query; otherwise one query tells a qualification clip.
    """
    if getattr(vote, "task_is_gold", True) is False:
        return None
    gold = (
        Task.objects.filter(pk=vote.task_id, is_gold=True, campaign__qualification_clips__gt=0)
        .values_list("gold_label", "campaign_id", "campaign__qualification_clips")
        .first()
    )
    if gold is None or gold[0] is None:
        return None
    gold_label, campaign_id, clips = gold
    qualified_at = (
        Membership.objects.filter(campaign_id=campaign_id, user_id=vote.annotator_id)
        .values_list("qualified_at", flat=True)
        .first()
    )
    if qualified_at is not None and qualified_at < vote.created_at:
        return None
    evidence = gold_evidence(campaign_id=campaign_id, annotator_id=vote.annotator_id)
    return {
        "correct": vote.answer == gold_label,
        "right_answer": Answer(gold_label).key,
        "qualification": _progress(evidence, clips),
    }


def _progress(evidence: GoldEvidence, clips: int) -> dict:
    """The qualification's progress and where it stands: ``state`` is "qualifying" (another
    qualification clip comes), "qualified" (real clips come) or "failed" (paused)."""
    return {
        "answered": evidence.total,
        "right": evidence.correct,
        "clips": clips,
        "state": agreement.qualification_state(evidence.correct, evidence.total, clips=clips),
    }


def qualification_progress(*, campaign: Campaign, membership: Membership) -> dict | None:
    """A member's qualification so far (as in ``answer_feedback``), or None when none is asked
    of them (the campaign asks none, or they passed). Shown by the workspace on opening."""
    if not campaign.qualification_clips or membership.qualified_at is not None:
        return None
    evidence = gold_evidence(campaign_id=campaign.pk, annotator_id=membership.user_id)
    return _progress(evidence, campaign.qualification_clips)


def annotator_pause_locked(
    *, member: Membership, reason: str, by: AbstractBaseUser | None = None, batch=None
) -> bool:
    """Pause a member whose row the caller holds locked; return False if already paused.

    Open leases are closed (their slots go back to the clips), so a paused annotator holds
    nothing. The pause is recorded.
    """
    if member.paused_at is not None:
        return False
    now = timezone.now()
    member.paused_at = now
    member.pause_reason = reason
    member.save(update_fields=["paused_at", "pause_reason"])
    AnnotatorPause.objects.create(
        campaign_id=member.campaign_id, annotator_id=member.user_id,
        action=AnnotatorPause.Action.PAUSE, by=by, batch=batch, reason=reason,
    )  # fmt: skip
    leases = list(
        Assignment.objects.select_for_update(skip_locked=True)
        .filter(campaign_id=member.campaign_id, annotator_id=member.user_id, state="active")
        .values_list("pk", "task_id", "holds_slot")
    )
    Assignment.objects.filter(pk__in=[pk for pk, *_ in leases]).update(
        state=Assignment.State.EXPIRED, closed_at=now
    )
    for _, task_id, slot in leases:
        if slot:
            Task.objects.filter(pk=task_id).update(lease_count=F("lease_count") - 1)
    return True


def annotator_reinstate(
    *, campaign: Campaign, username: str, reviewer: AbstractBaseUser, note: str = ""
) -> Membership:
    """Let a paused annotator work again; the gold evidence starts afresh from now.

    Raise NotFound for an unknown member and Conflict (``not_paused``) if not paused. The
    invalidated votes stay invalid (they were replaced by other annotators' votes).
    """
    with transaction.atomic():
        member = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(campaign=campaign, user__username=username)
            .first()
        )
        if member is None:
            raise NotFound("No such member in this campaign.")
        if member.paused_at is None:
            raise Conflict(f"{username} is not paused.", code="not_paused")
        member.paused_at = None
        member.pause_reason = ""
        member.save(update_fields=["paused_at", "pause_reason"])
        AnnotatorPause.objects.create(
            campaign=campaign, annotator=member.user, action=AnnotatorPause.Action.REINSTATE,
            by=reviewer, reason=note,
        )  # fmt: skip
    return member
