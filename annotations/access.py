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


def member_columns() -> str:
    """The columns of a membership row ``m`` and its campaign ``c``, as ``member_from_row``
    takes them (model names only, quoted as both PostgreSQL and SQLite quote)."""
    m_cols = [f'm."{f.column}"' for f in Membership._meta.concrete_fields]
    c_cols = [f'c."{f.column}"' for f in Campaign._meta.concrete_fields]
    return ", ".join(m_cols + c_cols)


# The user's membership with its campaign: one plain query (every annotation request asks it;
# the ORM would spend longer compiling it than the database answering).
_MEMBER_SQL = (
    f"SELECT {member_columns()} FROM annotations_membership m "  # noqa: S608 (model names)
    "JOIN annotations_campaign c ON c.id = m.campaign_id "
    "WHERE m.campaign_id = %s AND m.user_id = %s"
)


_M_NAMES = [f.attname for f in Membership._meta.concrete_fields]
_C_NAMES = [f.attname for f in Campaign._meta.concrete_fields]


def member_row(*, campaign_id: int, user_id: int) -> tuple | None:
    """The raw row of ``member_columns()`` for the user's membership, or None."""
    with connection.cursor() as cursor:
        cursor.execute(_MEMBER_SQL, [campaign_id, user_id])
        return cursor.fetchone()


def member_from_row(row: tuple) -> Membership:
    """The membership, with its campaign, from a row of ``member_columns()``."""
    n = len(_M_NAMES)
    membership = Membership.from_db(connection.alias, _M_NAMES, _decoded(Membership, row[:n]))
    membership.campaign = Campaign.from_db(connection.alias, _C_NAMES, _decoded(Campaign, row[n:]))
    return membership


def _membership(*, campaign_id: int, user_id: int) -> Membership | None:
    """The user's membership with its campaign, or None."""
    if not -(2**63) <= campaign_id < 2**63:
        return None
    row = member_row(campaign_id=campaign_id, user_id=user_id)
    return None if row is None else member_from_row(row)


def _decoded(model, values) -> list:
    """Apply each field's database converter (a JSON field arrives as text from a plain query)."""
    out = []
    for field, value in zip(model._meta.concrete_fields, values, strict=True):
        if value is not None and hasattr(field, "from_db_value"):
            value = field.from_db_value(value, None, connection)
        out.append(value)
    return out
