"""An annotator let back after a pause is told so: the campaign list carries the latest
reinstatement (the workspace says welcome back once)."""

import pytest
from django.db import transaction

from annotations.models import AnnotatorPause, Membership
from annotations.quality import annotator_pause_locked

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def pause(campaign, user, reason="3 of 10 gold answers right in batch 1."):
    with transaction.atomic():
        member = Membership.objects.select_for_update().get(campaign=campaign, user=user)
        annotator_pause_locked(member=member, reason=reason)


def reinstated(api, user):
    [mine] = api(user).get("/api/v1/campaigns/").json()
    return mine["reinstated"]


def test_the_campaign_list_says_when_and_why_a_paused_annotator_was_let_back(
    api, alice, bob, rita, campaign
):
    assert reinstated(api, alice) is None
    pause(campaign, alice)
    assert reinstated(api, alice) is None  # paused now: nothing to welcome back to
    url = f"/api/v1/campaigns/{campaign.pk}/annotators/alice/reinstate/"
    assert api(rita).post(url, {"note": "Look at the eyes too."}, format="json").status_code == 200
    record = AnnotatorPause.objects.get(campaign=campaign, annotator=alice, action="reinstate")
    back = reinstated(api, alice)
    assert back["note"] == "Look at the eyes too."
    assert back["at"].replace("Z", "+00:00") == record.created_at.isoformat()
    assert reinstated(api, bob) is None  # someone else's reinstatement is not theirs
    # Paused again: no welcome until the next reinstatement.
    pause(campaign, alice, reason="Again.")
    assert reinstated(api, alice) is None
