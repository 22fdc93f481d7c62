"""Access helpers: every campaign id that comes from a URL goes through one of these.

A user who is not a member of a campaign gets 404 (they learn nothing, not even that it exists);
a member whose role is too low gets 403.
"""

from django.contrib.auth.models import AbstractBaseUser

from labelstudio_ferv.errors import NotFound, PermissionDenied

from .models import Campaign, Membership, Role

# Roles that include another role's rights.
_RANK = {Role.ANNOTATOR: 0, Role.REVIEWER: 1, Role.ADMIN: 2}


def access_campaign(
    *, user: AbstractBaseUser, campaign_id: int, min_role: str = Role.ANNOTATOR
) -> tuple[Campaign, Membership]:
    """Return the campaign and the user's membership, or raise NotFound / PermissionDenied."""
    membership = (
        Membership.objects.select_related("campaign")
        .filter(campaign_id=campaign_id, user_id=user.pk)
        .first()
    )
    if membership is None:
        raise NotFound("Campaign not found.")
    if _RANK[Role(membership.role)] < _RANK[Role(min_role)]:
        raise PermissionDenied(f"This needs the {Role(min_role).label.lower()} role or higher.")
    return membership.campaign, membership
