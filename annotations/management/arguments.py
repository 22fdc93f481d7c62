"""Argument helpers shared by the management commands."""

from django.core.management.base import CommandError

from annotations.models import Campaign


def campaign_argument(value: str) -> Campaign:
    """Return the campaign named ``value``, else the one with that id; refuse anything else.

    The name is tried first, so a campaign named "2024" is found by its name.
    """
    campaign = Campaign.objects.filter(name=value).first()
    if campaign is None and value.isdigit():
        campaign = Campaign.objects.filter(pk=int(value)).first()
    if campaign is None:
        raise CommandError(f"No campaign with id or name {value!r}.")
    return campaign
