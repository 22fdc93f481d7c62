"""Running a campaign: editing its rules, pausing, resuming and closing it, and its members.

Every change writes an AuditEntry in its own transaction. Creating a campaign and checking its
rules live in services.py (``campaign_create``, ``campaign_check``), next to the membership
writes they use.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from labelstudio_ferv.errors import Conflict
from labelstudio_ferv.queue import enqueue_on_commit

from .models import AuditEntry, Campaign
from .services import CAMPAIGN_FIELDS, campaign_check

# Fields whose change alters how the votes already cast are read: their tasks are recomputed.
_RULE_FIELDS = {"votes_per_clip", "max_votes", "min_agreement", "aggregation", "ds_threshold"}
# The fields of the majority rule that rules.py checks.
_TRUST_FIELDS = {"votes_per_clip", "max_votes", "min_agreement", "aggregation"}


def user_may_create_campaigns(user: AbstractBaseUser) -> bool:
    """Return whether a user may create campaigns: superusers, and whoever holds Django's
    ``annotations.add_campaign`` permission (given to a user or a group in the admin)."""
    return user.is_active and user.has_perm("annotations.add_campaign")


def campaign_update(*, campaign: Campaign, actor: AbstractBaseUser, **changes) -> Campaign:
    """Change a campaign's name, description or rules; return it.

    A change of the trust rule asks a worker to recompute every clip of the campaign (votes
    needed, status and label follow the new rule); a clip a reviewer decided keeps its decision.
    """
    unknown = set(changes) - set(CAMPAIGN_FIELDS)
    if unknown:
        raise ValueError(f"not campaign fields: {sorted(unknown)}")
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        before = {field: getattr(locked, field) for field in changes}
        for field, value in changes.items():
            setattr(locked, field, value)
        changed = {f: v for f, v in changes.items() if before[f] != v}
        if not changed:
            return locked
        campaign_check(campaign=locked, trust_rule=bool(_TRUST_FIELDS & set(changed)))
        locked.save(update_fields=list(changed))
        AuditEntry.record(
            campaign=locked, actor=actor, action="campaign_edited",
            before={f: before[f] for f in changed}, after=changed,
        )  # fmt: skip
        if _RULE_FIELDS & set(changed):
            enqueue_on_commit("annotations.recompute_campaign", locked.pk)
    return locked


def _campaign_move(
    *, campaign: Campaign, actor: AbstractBaseUser, to: str, allowed_from: set[str], action: str
) -> Campaign:
    """Move a campaign to state ``to``; a no-op when it is there already."""
    with transaction.atomic():
        # The row lock orders two admins pausing and closing at once.
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.state == to:
            return locked
        if locked.state not in allowed_from:
            raise Conflict(
                f"The campaign is {locked.state}; it cannot be {action}.",
                code=f"campaign_{locked.state}",
            )
        AuditEntry.record(
            campaign=locked, actor=actor, action=f"campaign_{action}",
            before=locked.state, after=to,
        )  # fmt: skip
        locked.state = to
        locked.save(update_fields=["state"])
    return locked


def campaign_pause(*, campaign: Campaign, actor: AbstractBaseUser) -> Campaign:
    """Stop handing out clips (answers to leases already held still count)."""
    return _campaign_move(
        campaign=campaign, actor=actor, to=Campaign.State.PAUSED,
        allowed_from={Campaign.State.ACTIVE}, action="paused",
    )  # fmt: skip


def campaign_resume(*, campaign: Campaign, actor: AbstractBaseUser) -> Campaign:
    """Hand out clips again after a pause (a closed campaign stays closed)."""
    return _campaign_move(
        campaign=campaign, actor=actor, to=Campaign.State.ACTIVE,
        allowed_from={Campaign.State.PAUSED}, action="resumed",
    )  # fmt: skip


def campaign_close(*, campaign: Campaign, actor: AbstractBaseUser) -> Campaign:
    """Close the campaign for good: no more clips are handed out; reviews and exports go on."""
    return _campaign_move(
        campaign=campaign, actor=actor, to=Campaign.State.CLOSED,
        allowed_from={Campaign.State.ACTIVE, Campaign.State.PAUSED}, action="closed",
    )  # fmt: skip
