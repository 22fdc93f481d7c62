"""Running a campaign: editing its rules, pausing, resuming and closing it, and its members.

Every change writes an AuditEntry in its own transaction. Creating a campaign and checking its
rules live in services.py (``campaign_create``, ``campaign_check``), next to the membership
writes they use.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from labelstudio_ferv.errors import Conflict, NotFound, ValidationError
from labelstudio_ferv.queue import enqueue_on_commit

from . import priorities
from .models import Assignment, AuditEntry, Campaign, Membership, Role
from .services import CAMPAIGN_FIELDS, campaign_check
from .services import _lease_close as lease_close

# Fields whose change alters how the votes already cast are read: their tasks are recomputed.
_RULE_FIELDS = {
    "votes_per_clip", "max_votes", "min_agreement", "aggregation", "ds_threshold",
    "target_precision",
}  # fmt: skip
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
        # FOR NO KEY UPDATE: edits of one campaign still take turns, but the votes and leases
        # being stored meanwhile, whose foreign keys share-lock the campaign's key at commit, go
        # on (FOR UPDATE held them all up until the edit committed).
        locked = Campaign.objects.select_for_update(no_key=True).get(pk=campaign.pk)
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
        if "scene_priority" in changed:
            priorities.tasks_reprioritise(campaign=locked)
        if _RULE_FIELDS & set(changed):
            enqueue_on_commit("annotations.recompute_campaign", locked.pk)
    return locked


def _campaign_move(
    *, campaign: Campaign, actor: AbstractBaseUser, to: str, allowed_from: set[str], action: str
) -> Campaign:
    """Move a campaign to state ``to``; a no-op when it is there already."""
    with transaction.atomic():
        # The row lock orders two admins pausing and closing at once.
        locked = Campaign.objects.select_for_update(no_key=True).get(pk=campaign.pk)
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


# --------------------------------------------------------------------------------------------
# Members


# Rows of one bulk request; creating accounts hashes a password per row.
MAX_MEMBER_ROWS = 1000


@dataclass
class MemberRow:
    """The outcome of one row of a bulk add: added, created (with its one-time password) or
    an error naming the field."""

    row: int
    username: str
    role: str
    status: str = "added"
    password: str | None = None
    field: str | None = None
    error: str | None = None


def _row_errors(
    *, campaign: Campaign, rows: list[dict], create_missing: bool
) -> tuple[list[MemberRow], dict[str, AbstractBaseUser]]:
    user_model = get_user_model()
    names = [str(row.get("username", "")) for row in rows]
    users = {u.username: u for u in user_model.objects.filter(username__in=names)}
    members = set(
        Membership.objects.filter(campaign=campaign, user__username__in=names).values_list(
            "user__username", flat=True
        )
    )
    seen: set[str] = set()
    results = []
    validate = UnicodeUsernameValidator()
    for index, row in enumerate(rows):
        name, role = str(row.get("username", "")), str(row.get("role", Role.ANNOTATOR))
        result = MemberRow(row=index, username=name, role=role)
        problem: tuple[str, str] | None = None
        try:
            if not name or len(name) > 150:
                raise DjangoValidationError("A username has 1 to 150 characters.")
            validate(name)
        except DjangoValidationError as exc:
            problem = ("username", " ".join(exc.messages))
        if problem is None and role not in Role.values:
            problem = ("role", f"{role!r} is not a role: one of {', '.join(Role.values)}.")
        elif problem is None and name in seen:
            problem = ("username", f"{name!r} appears twice in this request.")
        elif problem is None and name in members:
            problem = ("username", f"{name!r} is already a member (change a role with PATCH).")
        elif problem is None and name not in users and not create_missing:
            problem = ("username", f"No user {name!r} (set create_missing to create one).")
        if problem is None and name not in users:
            result.status = "created"
        seen.add(name)
        if problem:
            result.status, result.field, result.error = "error", *problem
        results.append(result)
    return results, users


def members_add(
    *,
    campaign: Campaign,
    actor: AbstractBaseUser,
    rows: list[dict],
    create_missing: bool = False,
    partial: bool = False,
) -> list[MemberRow]:
    """Add users to a campaign with a role, creating the accounts that do not exist yet.

    Each row is ``{"username", "role"}``. A created account gets a random password, returned
    here once (only its hash is stored) and an API token on first login. With any row in error
    nothing changes and ValidationError reports every row; with ``partial`` the valid rows are
    applied and the others reported.
    """
    if len(rows) > MAX_MEMBER_ROWS:
        raise ValidationError(
            f"members: at most {MAX_MEMBER_ROWS} rows per request.",
            details={"members": [f"At most {MAX_MEMBER_ROWS} rows."]},
        )
    results, users = _row_errors(campaign=campaign, rows=rows, create_missing=create_missing)
    bad = [r for r in results if r.status == "error"]
    if bad and not partial:
        first = bad[0]
        more = f" ({len(bad) - 1} more rows in error)" if len(bad) > 1 else ""
        raise ValidationError(
            f"members[{first.row}].{first.field}: {first.error}{more}",
            details={"rows": [asdict(r) for r in results]},
        )
    good = [r for r in results if r.status != "error"]
    user_model = get_user_model()
    try:
        with transaction.atomic():
            fresh = []
            for result in good:
                if result.status == "created":
                    user = user_model(username=result.username)
                    result.password = secrets.token_urlsafe(12)
                    user.set_password(result.password)
                    fresh.append(user)
            for user in user_model.objects.bulk_create(fresh):
                users[user.username] = user
            users.update(
                {
                    u.username: u
                    for u in user_model.objects.filter(username__in=[u.username for u in fresh])
                }
            )
            Membership.objects.bulk_create(
                [Membership(campaign=campaign, user=users[r.username], role=r.role) for r in good]
            )
            if good:
                AuditEntry.record(
                    campaign=campaign, actor=actor, action="members_added",
                    members=[
                        {"username": r.username, "role": r.role, "created": r.status == "created"}
                        for r in good
                    ],
                )  # fmt: skip
    except IntegrityError:
        # Another request added one of these users (or created the account) meanwhile.
        raise Conflict(
            "Someone else changed these members at the same time; try again.", code="busy"
        )
    return results


def _membership_locked(*, campaign: Campaign, username: str) -> Membership:
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(campaign=campaign, user__username=username)
        .first()
    )
    if membership is None:
        raise NotFound(f"No member {username!r} in this campaign.")
    return membership


def _keep_an_admin(*, campaign: Campaign, membership: Membership) -> None:
    if membership.role != Role.ADMIN:
        return
    # Lock every admin row: two admins removing each other at once cannot both succeed.
    admins = list(
        Membership.objects.select_for_update()
        .filter(campaign=campaign, role=Role.ADMIN)
        .values_list("pk", flat=True)
    )
    if admins == [membership.pk]:
        raise Conflict("A campaign keeps at least one admin.", code="last_admin")


_KEEP = object()


def member_update(
    *,
    campaign: Campaign,
    actor: AbstractBaseUser,
    username: str,
    role: str | None = None,
    daily_quota: int | None | object = _KEEP,
) -> Membership:
    """Change a member's role (the last admin stays admin) or daily quota (None: the
    campaign's)."""
    with transaction.atomic():
        membership = _membership_locked(campaign=campaign, username=username)
        if daily_quota is not _KEEP and daily_quota != membership.daily_quota:
            AuditEntry.record(
                campaign=campaign, actor=actor, action="member_quota_changed",
                username=username, before=membership.daily_quota, after=daily_quota,
            )  # fmt: skip
            membership.daily_quota = daily_quota
            membership.save(update_fields=["daily_quota"])
        if role is None or membership.role == role:
            return membership
        if role != Role.ADMIN:
            _keep_an_admin(campaign=campaign, membership=membership)
        AuditEntry.record(
            campaign=campaign, actor=actor, action="member_role_changed",
            username=username, before=membership.role, after=role,
        )  # fmt: skip
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def member_remove(*, campaign: Campaign, actor: AbstractBaseUser, username: str) -> int:
    """Remove a member; release their open leases at once; return how many were released.

    Their votes stay and keep counting. The released slots are given back in the same
    transaction, so the clips go to other annotators straight away.
    """
    with transaction.atomic():
        membership = _membership_locked(campaign=campaign, username=username)
        _keep_an_admin(campaign=campaign, membership=membership)
        open_ids = list(
            Assignment.objects.filter(
                campaign=campaign, annotator_id=membership.user_id, state=Assignment.State.ACTIVE
            ).values_list("pk", flat=True)
        )
        for assignment_id in open_ids:
            lease_close(assignment_id=assignment_id, state=Assignment.State.EXPIRED)
        AuditEntry.record(
            campaign=campaign, actor=actor, action="member_removed",
            username=username, role=membership.role, leases_released=len(open_ids),
        )  # fmt: skip
        membership.delete()
    return len(open_ids)
