"""The order clips are handed out in: random but reproducible per campaign, never id order, and
pieces cut from one source video spread apart."""

import pytest

from annotations.models import Task
from annotations.services import campaign_add_clips, task_draw
from clips.models import Scene, SourceVideo
from tests.factories import CampaignFactory, ClipFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

SOURCES, PIECES = 4, 4


def cut_sources(campaign):
    """Add 4 source videos of 4 consecutive pieces each, in id order source by source."""
    scene = Scene.objects.order_by("id").first()
    clips = []
    for s in range(SOURCES):
        video = SourceVideo.objects.create(
            scene=scene, original=f"sources/v{s}.mp4", checksum=f"src-{campaign.pk}-{s}"
        )
        clips += [
            ClipFactory(scene=scene, source_video=video, start_s=float(p)) for p in range(PIECES)
        ]
    campaign_add_clips(campaign=campaign, clips=clips)
    return clips


def served_sources(api, user, campaign) -> list[int]:
    """Let ``user`` take and answer every clip; return the source video of each, in order."""
    order = []
    while True:
        response = api(user).post(f"/api/v1/campaigns/{campaign.pk}/next/")
        if response.status_code == 204:
            return order
        offer = response.json()
        order.append(Task.objects.get(clip_id=offer["clip"]["id"]).clip.source_video_id)
        api(user).post(
            f"/api/v1/assignments/{offer['assignment']['id']}/answer/", {"label": "sad"},
            format="json",
        )  # fmt: skip


def test_pieces_of_one_source_never_come_in_a_row(api, alice, campaign):
    clips = cut_sources(campaign)
    order = served_sources(api, alice, campaign)
    assert len(order) == SOURCES * PIECES
    assert all(a != b for a, b in zip(order, order[1:], strict=False)), order
    # Round by round: each source's k-th piece before any source's (k+1)-th.
    for k in range(PIECES):
        assert sorted(order[k * SOURCES : (k + 1) * SOURCES]) == sorted(
            {c.source_video_id for c in clips}
        )
    # Not id order (which would give 4 pieces of the first source first).
    assert order[:PIECES] != [clips[0].source_video_id] * PIECES


def test_the_order_is_reproducible_per_campaign_and_differs_between_campaigns():
    a = [task_draw(campaign_id=1, source=f"video-{s}", round_=0) for s in range(20)]
    assert a == [task_draw(campaign_id=1, source=f"video-{s}", round_=0) for s in range(20)]
    b = [task_draw(campaign_id=2, source=f"video-{s}", round_=0) for s in range(20)]
    assert sorted(range(20), key=a.__getitem__) != sorted(range(20), key=b.__getitem__)
    assert sorted(range(20), key=a.__getitem__) != list(range(20))
    assert task_draw(campaign_id=1, source="x", round_=1) > max(a)


def test_clips_added_later_continue_their_source_s_rounds(db):
    campaign = CampaignFactory()
    clips = cut_sources(campaign)
    video = clips[0].source_video
    later = ClipFactory(scene=video.scene, source_video=video, start_s=9.0)
    campaign_add_clips(campaign=campaign, clips=[later])
    draws = dict(Task.objects.filter(campaign=campaign).values_list("clip_id", "draw"))
    assert draws[later.pk] // 2**32 == PIECES
    assert [draws[c.pk] // 2**32 for c in clips[:PIECES]] == list(range(PIECES))
