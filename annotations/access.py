"""Access helpers: every campaign id that comes from a URL goes through one of these.

A user who is not a member of a campaign gets 404 (they learn nothing, not even that it exists);
a member whose role is too low gets 403. A superuser sees every campaign as its admin, except
for annotating, which needs a membership (votes and leases belong to members).
"""

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection

from labelstudio_ferv.errors import NotFound, PermissionDenied

from .models import Campaign, Membership, Role

# Roles that include another role's rights.
_RANK = {Role.ANNOTATOR: 0, Role.REVIEWER: 1, Role.ADMIN: 2}


def access_campaign(
    *, user: AbstractBaseUser, campaign_id: int, min_role: str = Role.ANNOTATOR
) -> tuple[Campaign, Membership]:
    """Return the campaign and the user's membership, or raise NotFound / PermissionDenied."""
    membership = _membership(campaign_id=campaign_id, user_id=user.pk)
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


_query: tuple[str, list[str], list[str]] | None = None


def _membership(*, campaign_id: int, user_id: int) -> Membership | None:
    """The user's membership with its campaign: one plain query (every annotation request
    asks it; the ORM would spend longer compiling it than the database answering)."""
    global _query
    if not -(2**63) <= campaign_id < 2**63:
        return None
    if _query is None:
        qn = connection.ops.quote_name
        member, campaign = Membership._meta, Campaign._meta
        m_cols = [f"m.{qn(f.column)}" for f in member.concrete_fields]
        c_cols = [f"c.{qn(f.column)}" for f in campaign.concrete_fields]
        _query = (
            f"SELECT {', '.join(m_cols + c_cols)} FROM {qn(member.db_table)} m "  # noqa: S608 (model names)
            f"JOIN {qn(campaign.db_table)} c ON c.{qn(campaign.pk.column)} = m.{qn('campaign_id')} "
            f"WHERE m.{qn('campaign_id')} = %s AND m.{qn('user_id')} = %s",
            [f.attname for f in member.concrete_fields],
            [f.attname for f in campaign.concrete_fields],
        )
    sql, m_names, c_names = _query
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign_id, user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(m_names)
    membership = Membership.from_db(connection.alias, m_names, _decoded(Membership, row[:n]))
    membership.campaign = Campaign.from_db(connection.alias, c_names, _decoded(Campaign, row[n:]))
    return membership


def _decoded(model, values) -> list:
    """Apply each field's database converter (a JSON field arrives as text from a plain query)."""
    out = []
    for field, value in zip(model._meta.concrete_fields, values, strict=True):
        if value is not None and hasattr(field, "from_db_value"):
            value = field.from_db_value(value, None, connection)
        out.append(value)
    return out
