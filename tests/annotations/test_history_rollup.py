"""The progress history's per-hour rollup: the same answer with and without it, each hour
rolled once, votes after the mark read live (annotations/history.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.history import ROLLUP_LAG, votes_roll_up
from annotations.models import Vote, VoteHour, VoteHourMark
from annotations.tasks import roll_up_vote_hours
from tests.factories import TaskFactory, UserFactory, VoteFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def vote_at(campaign, user, at):
    vote = VoteFactory(task=TaskFactory(campaign=campaign), annotator=user)
    Vote.objects.filter(pk=vote.pk).update(created_at=at)
    return vote


def history(api, user, campaign):
    body = api(user).get(f"/api/v1/campaigns/{campaign.pk}/progress/history/").json()
    # The estimate moves with the clock between two calls; the figures must not.
    body.pop("finish_at")
    return body


def test_the_rollup_gives_the_same_history_and_each_hour_is_counted_once(api, campaign, rita):
    hour = timezone.localtime().replace(minute=0, second=0, microsecond=0)
    ann, bea = UserFactory(username="ann"), UserFactory(username="bea")
    # ann: a stretch of 4 answers a minute apart across an hour boundary (its gaps count in
    # both hours), one alone, and two in the hour now open; bea: two answers 2 minutes apart.
    stretch = hour - timedelta(hours=5, minutes=2)
    for m in range(4):
        vote_at(campaign, ann, stretch + timedelta(minutes=m))
    vote_at(campaign, ann, hour - timedelta(hours=2, minutes=30))
    vote_at(campaign, bea, hour - timedelta(hours=3, minutes=10))
    vote_at(campaign, bea, hour - timedelta(hours=3, minutes=8))
    vote_at(campaign, UserFactory(username="old"), hour - timedelta(days=9))  # outside the week
    live = history(api, rita, campaign)

    assert roll_up_vote_hours() > 0
    mark = VoteHourMark.objects.get(campaign=campaign).rolled_until
    assert mark == timezone.localtime(timezone.now() - ROLLUP_LAG).replace(
        minute=0, second=0, microsecond=0
    )
    cells = {
        (c.annotator.username, c.hour): (c.answers, c.active_s)
        for c in VoteHour.objects.filter(campaign=campaign).select_related("annotator")
    }
    assert cells[("ann", hour - timedelta(hours=6))] == (2, 60)
    assert cells[("ann", hour - timedelta(hours=5))] == (2, 120)  # one gap crosses the hour
    assert cells[("bea", hour - timedelta(hours=4))] == (2, 120)
    assert history(api, rita, campaign) == live
    # Hours older than the window are never read, so never rolled up.
    assert not VoteHour.objects.filter(campaign=campaign, annotator__username="old").exists()

    # New answers after the mark are read live; a second roll-up at once adds nothing.
    last = timezone.now()
    vote_at(campaign, ann, last - timedelta(seconds=30))
    vote_at(campaign, ann, last)
    straddle = (
        timezone.localtime(last - timedelta(seconds=30)).hour != timezone.localtime(last).hour
    )
    assert roll_up_vote_hours() == 0
    now = history(api, rita, campaign)
    assert sum(h["answers"] for h in now["hours"]) == sum(h["answers"] for h in live["hours"]) + 2
    [ann_row] = [a for a in now["annotators"] if a["username"] == "ann"]
    assert (ann_row["answers"], ann_row["active_s"]) == (7, pytest.approx(210, abs=1))
    # Two hours later the open hour is rolled too, and the history is still the same.
    later = timezone.now() + timedelta(hours=2)
    assert votes_roll_up(campaign_id=campaign.pk, now=later) == 1 + straddle
    rows = VoteHour.objects.filter(campaign=campaign, annotator__username="ann").count()
    assert rows == 4 + straddle
    assert history(api, rita, campaign) == now


def test_a_campaign_without_votes_is_not_marked(campaign):
    assert votes_roll_up(campaign_id=campaign.pk) == 0
    assert not VoteHourMark.objects.filter(campaign=campaign).exists()
