"""Scene priorities and daily quotas: how admins steer who gets which clip, and how many.

A scene's priority is copied into ``Task.priority`` of its tasks, which the claim sorts on
first (statements.py, ``_OPEN_TASKS``): changing a priority is one UPDATE over the campaign's
tasks, and the claim stays one indexed statement. A daily quota is checked before a claim only
when one is set, by counting the member's answers since midnight on the ``vote_annotator``
index, at most ``quota`` rows.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from clips.services import scene_lookup
from labelstudio_ferv.errors import Conflict, ValidationError

from .models import Campaign, Membership, Task, Vote

PRIORITY_RANGE = (-100, 100)


def scene_priority_check(priorities: dict) -> dict[str, int]:
    """Return ``{scene id: priority}`` for ``{scene (id, folder or name): priority}``.

    A priority of 0 is the default and is not stored. Raise ValidationError naming the field for
    an unknown scene or a priority out of range.
    """
    if not isinstance(priorities, dict):
        raise ValidationError(
            "scene_priority: an object {scene: priority}.",
            details={"scene_priority": ["An object {scene: priority}."]},
        )
    low, high = PRIORITY_RANGE
    clean: dict[str, int] = {}
    for name, value in priorities.items():
        scene = scene_lookup(name)
        if scene is None:
            message = f"No scene {name!r} (a scene id, folder or name)."
            raise ValidationError(
                f"scene_priority: {message}", details={"scene_priority": [message]}
            )
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            message = f"{name}: a whole number from {low} to {high}."
            raise ValidationError(
                f"scene_priority: {message}", details={"scene_priority": [message]}
            )
        if value:
            clean[str(scene.pk)] = value
    return dict(sorted(clean.items(), key=lambda item: int(item[0])))


def tasks_reprioritise(*, campaign: Campaign) -> int:
    """Write the campaign's scene priorities into its tasks; return how many tasks changed.

    Runs in the caller's transaction (the one that saved the priorities).
    """
    priorities = {int(k): v for k, v in (campaign.scene_priority or {}).items()}
    tasks = Task.objects.filter(campaign=campaign)
    changed = 0
    # An UPDATE cannot join (clip__scene), so each scene's tasks are found by a subquery.
    for scene, p in priorities.items():
        changed += tasks.filter(clip__scene_id=scene).exclude(priority=p).update(priority=p)
    rest = tasks.exclude(clip__scene_id__in=list(priorities)).exclude(priority=0)
    changed += rest.update(priority=0)
    return changed


def scene_priorities(*, campaign_id: int) -> dict[int, int]:
    """Return the campaign's stored ``{scene id: priority}`` (read afresh: a caller's campaign
    object may predate an admin's change)."""
    stored = Campaign.objects.filter(pk=campaign_id).values_list("scene_priority", flat=True)
    return {int(k): int(v) for k, v in (stored.first() or {}).items()}


def midnight():
    """Return the start of today in the server's time zone (setting ``TIME_ZONE``)."""
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def quota_check(*, campaign: Campaign, membership: Membership, user: AbstractBaseUser) -> None:
    """Raise Conflict ``quota_reached`` once the member has given their daily answers."""
    quota = membership.quota(campaign)
    if quota is None:
        return
    # Bounded: the count stops at ``quota`` rows of the (campaign, annotator, created_at) index.
    given = (
        Vote.objects.filter(campaign=campaign, annotator=user, created_at__gte=midnight())
        .values("pk")[:quota]
        .count()
    )
    if given >= quota:
        raise Conflict(
            f"You have given your {quota} answers for today in this campaign; thank you. "
            "More clips tomorrow.",
            code="quota_reached",
        )
