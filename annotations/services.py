"""Writes for campaigns: creation, membership and the clips a campaign labels."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from clips.models import Clip

from .models import Campaign, Membership, Role, Task


@transaction.atomic
def campaign_create(*, name: str, created_by: AbstractBaseUser | None = None, **rules) -> Campaign:
    """Create a campaign with its rules and make its creator an admin of it."""
    campaign = Campaign(name=name, created_by=created_by, **rules)
    campaign.full_clean()
    campaign.save()
    if created_by is not None:
        membership_set(campaign=campaign, user=created_by, role=Role.ADMIN)
    return campaign


def membership_set(*, campaign: Campaign, user: AbstractBaseUser, role: str) -> Membership:
    """Give a user a role in a campaign (creating or changing the membership)."""
    membership, _ = Membership.objects.update_or_create(
        campaign=campaign, user=user, defaults={"role": role}
    )
    return membership


def campaign_add_clips(*, campaign: Campaign, clips: Iterable[Clip]) -> int:
    """Add clips to a campaign, skipping those already in it; return how many were added."""
    clip_list = list(clips)
    present = set(
        Task.objects.filter(campaign=campaign, clip__in=clip_list).values_list("clip_id", flat=True)
    )
    rows = [
        Task(campaign=campaign, clip=clip, votes_needed=campaign.votes_per_clip)
        for clip in clip_list
        if clip.pk not in present
    ]
    # ignore_conflicts: a concurrent import adding the same clip is not an error.
    Task.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return len(rows)
