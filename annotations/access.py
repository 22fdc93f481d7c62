"""Access helpers: every campaign id that comes from a URL goes through one of these.

A user who is not a member of a campaign gets 404 (they learn nothing, not even that it exists);
a member whose role is too low gets 403. A superuser sees every campaign as its admin, except
for annotating, which needs a membership (votes and leases belong to members).
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
    if membership is None and getattr(user, "is_superuser", False):
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            raise NotFound("Campaign not found.")
        if min_role == Role.ANNOTATOR:
            raise PermissionDenied(
                "Add yourself to the campaign as a member to annotate in it.", code="not_a_member"
            )
        return campaign, Membership(campaign=campaign, user_id=user.pk, role=Role.ADMIN)
    if membership is None:
        raise NotFound("Campaign not found.")
    if _RANK[Role(membership.role)] < _RANK[Role(min_role)]:
        raise PermissionDenied(f"This needs the {Role(min_role).label.lower()} role or higher.")
    return membership.campaign, membership
