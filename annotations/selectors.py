"""Read paths for campaigns, tasks and votes."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from .models import Campaign, Membership, Task, Vote


def _count(queryset: QuerySet) -> Coalesce:
    """Return a correlated COUNT subquery (avoids the row explosion of joining two relations)."""
    counted = queryset.order_by().values("campaign").annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def campaigns_for_user(*, user: AbstractBaseUser) -> QuerySet[Campaign]:
    """Return the user's campaigns with the user's ``role``, clip total and own vote count."""
    role = Membership.objects.filter(campaign=OuterRef("pk"), user=user).values("role")[:1]
    return (
        Campaign.objects.filter(memberships__user=user)
        .annotate(
            role=Subquery(role),
            clip_total=_count(Task.objects.filter(campaign=OuterRef("pk"))),
            my_votes=_count(Vote.objects.filter(campaign=OuterRef("pk"), annotator=user)),
        )
        .order_by("name")
    )
