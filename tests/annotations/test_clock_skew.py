"""Timestamps that another process compares come from the database's clock, not the caller's."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.consensus import consensus_sweep
from annotations.models import Task, Vote
from tests.factories import CampaignFactory, MembershipFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("skew", [timedelta(hours=1), timedelta(hours=-1)], ids=["ahead", "behind"])
def test_the_sweep_counts_a_vote_from_a_web_server_with_a_wrong_clock(api, monkeypatch, skew):
    """Issue 16: with the web clock an hour ahead and the vote's message lost, the sweep skipped
    the clip until the sweeper's clock caught up with the web server's stamp."""
    campaign = CampaignFactory(votes_per_clip=1, max_votes=1)
    alice = UserFactory(username="alice")
    MembershipFactory(campaign=campaign, user=alice)
    task = TaskFactory(campaign=campaign)
    offer = api(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/").json()

    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + skew)  # the web server's clock
    answered = api(alice).post(
        f"/api/v1/assignments/{offer['assignment']['id']}/answer/", {"label": "sad"}, format="json"
    )
    monkeypatch.setattr(timezone, "now", real_now)
    assert answered.status_code == 201
    # The test's transaction never commits, so the vote's message is never sent: the sweep,
    # run by beat on a worker with a right clock, is what must count it.
    assert Task.objects.get(pk=task.pk).consensus_stale

    assert consensus_sweep(older_than_s=0) == 1
    stored = Task.objects.get(pk=task.pk)
    assert not stored.consensus_stale
    assert (stored.status, stored.label, stored.vote_count) == ("trusted", 5, 1)
    assert Vote.objects.filter(task=task).count() == 1


@pytest.mark.parametrize("skew", [timedelta(hours=1), timedelta(hours=-1)], ids=["ahead", "behind"])
def test_a_dead_workers_lease_runs_out_by_the_database_clock(monkeypatch, skew):
    """Issue 16: leases stamped heartbeats with the worker's clock; a worker an hour ahead that
    died looked alive for an hour (one an hour behind looked dead while it worked)."""
    from django.db.models import F, Q

    from clips.models import Clip, MediaStatus
    from clips.services import CLIP_LEASE_S, clips_requeue_stale
    from labelstudio_ferv import leases
    from tests.factories import ClipFactory

    clip = ClipFactory(status=MediaStatus.PENDING, video="", poster="")
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + skew)  # the worker's clock
    lease = leases.claim(
        Clip,
        pk=clip.pk,
        free=Q(status=MediaStatus.PENDING),
        held=Q(status=MediaStatus.PROCESSING),
        fields={"status": MediaStatus.PROCESSING},
        keep=("status",),
        beat_field="updated_at",
        lease_s=CLIP_LEASE_S,
    )
    assert lease is not None
    lease.beat(force=True)
    monkeypatch.setattr(timezone, "now", real_now)
    # Alive: nobody takes it over, the sweep leaves it alone.
    assert clips_requeue_stale() == 0
    assert leases.is_live(Clip.objects.get(pk=clip.pk).updated_at, lease_s=CLIP_LEASE_S)
    # It dies: its last heartbeat ages past the lease (as if 31 s went by).
    Clip.objects.filter(pk=clip.pk).update(
        updated_at=F("updated_at") - timedelta(seconds=CLIP_LEASE_S + 1)
    )
    lease.beat_at -= timedelta(seconds=CLIP_LEASE_S + 1)
    assert clips_requeue_stale() == 1  # sent again, free to claim
    assert Clip.objects.get(pk=clip.pk).status == MediaStatus.PENDING
    with pytest.raises(leases.LeaseLost):
        lease.beat(force=True)  # the presumed-dead worker is fenced off


def _answer_with_a_skewed_clock(api, monkeypatch, skew):
    """An annotator's answer taken by a web server whose clock is off by ``skew``."""
    campaign = CampaignFactory(votes_per_clip=3, gold_share=0, qualification_clips=0)
    alice = UserFactory(username="alice")
    MembershipFactory(campaign=campaign, user=alice)
    TaskFactory(campaign=campaign)
    offer = api(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/").json()
    url = f"/api/v1/assignments/{offer['assignment']['id']}/answer/"
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + skew)
    answered = api(alice).post(url, {"label": "sad"}, format="json")
    monkeypatch.setattr(timezone, "now", real_now)
    assert answered.status_code == 201
    return alice, url


@pytest.mark.postgres
def test_a_correction_is_timed_by_the_database_clock(api, monkeypatch):
    # The vote was stamped by a web server an hour behind; a correction a moment later, through
    # another web server, is within the window (it was refused as "answer_final").
    alice, url = _answer_with_a_skewed_clock(api, monkeypatch, timedelta(hours=-1))
    corrected = api(alice).post(url, {"label": "happy"}, format="json")
    assert corrected.status_code == 200, corrected.json()
    assert Vote.objects.get(annotator=alice).answer == 3  # happy


@pytest.mark.postgres
def test_an_idle_tail_is_cut_by_the_database_clock(api, monkeypatch):
    # The vote was stamped by a web server an hour behind: beat, on a worker with a right
    # clock, took its annotator for idle at once and closed the batch under them.
    from annotations.batches import batches_close_idle

    _answer_with_a_skewed_clock(api, monkeypatch, timedelta(hours=-1))
    assert batches_close_idle() == 0
    assert Vote.objects.get().batch_id is None
