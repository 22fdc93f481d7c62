"""Clips whose media failed are no work for anyone: no progress number counts them as to do."""

import pytest

from clips.models import MediaStatus
from tests.factories import ClipFactory, TaskFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def failed_clip():
    return ClipFactory(status=MediaStatus.FAILED, video="", poster="", error="ffmpeg failed")


def test_failed_clips_are_not_counted_as_work_in_the_campaign_progress(api, rita, campaign):
    TaskFactory(campaign=campaign)
    TaskFactory(campaign=campaign, status="trusted", label=3, vote_count=3)
    for _ in range(2):
        TaskFactory(campaign=campaign, clip=failed_clip())
    progress = api(rita).get(f"/api/v1/campaigns/{campaign.pk}/progress/").json()
    assert (progress["clips"], progress["failed"]) == (2, 2)
    assert (progress["collecting"], progress["trusted"]) == (1, 1)


def test_an_annotator_s_clip_total_leaves_failed_clips_out(api, alice, campaign):
    TaskFactory(campaign=campaign)
    TaskFactory(campaign=campaign, clip=failed_clip())
    campaigns = api(alice).get("/api/v1/campaigns/").json()
    mine = next(c for c in campaigns if c["id"] == campaign.pk)
    assert mine["progress"]["clips"] == 1
    # The failed clip is never offered either: one clip, then none.
    first = api(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/")
    assert first.status_code == 200
    answer = api(alice).post(
        f"/api/v1/assignments/{first.json()['assignment']['id']}/answer/",
        {"label": "happy", "time_ms": 900},
        format="json",
    )
    assert answer.status_code in (200, 201)
    assert api(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/").status_code == 204
