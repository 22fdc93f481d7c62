"""Collusion and fatigue signals (issue 14): computed in the statistics refresh, served to
reviewers at GET /campaigns/{id}/signals/ with the evidence."""

import random

import pytest

from annotations import consensus, statistics
from annotations.models import Campaign, Role, TrustModel, Vote
from tests.factories import CampaignFactory, MembershipFactory, TaskFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def crowd(campaign, n):
    users = [UserFactory(username=f"crowd-{i}") for i in range(n)]
    for user in users:
        MembershipFactory(campaign=campaign, user=user, role=Role.ANNOTATOR)
    return users


def test_a_colluding_pair_and_a_tiring_annotator_are_flagged(api):
    rng = random.Random(7)
    campaign = CampaignFactory(votes_per_clip=3, max_votes=9)
    users = crowd(campaign, 8)
    colluders, tiring = users[:2], users[2]
    tasks = [TaskFactory(campaign=campaign) for _ in range(90)]
    truth = [rng.randrange(7) for _ in tasks]
    for n, (task, true) in enumerate(zip(tasks, truth, strict=True)):
        shared_wrong = (true + 1 + n % 6) % 7
        for user in users:
            if user in colluders and n % 3 == 0:
                answer = shared_wrong  # the pair's shared wrong answer
            elif user is tiring:
                answer = true if n < 45 else rng.choice([c for c in range(7) if c != true])
            else:
                answer = true if rng.random() < 0.8 else rng.randrange(7)
            Vote.objects.create(task=task, campaign=campaign, annotator=user, answer=answer)
    consensus.campaign_recompute(campaign_id=campaign.pk)
    statistics.statistics_refresh(campaign_id=campaign.pk)

    reviewer = UserFactory()
    MembershipFactory(campaign=campaign, user=reviewer, role=Role.REVIEWER)
    body = api(reviewer).get(f"/api/v1/campaigns/{campaign.pk}/signals/").json()
    flagged = [p for p in body["collusion"] if p["flagged"]]
    assert [set(p["annotators"]) for p in flagged] == [{"crowd-0", "crowd-1"}]
    top = flagged[0]
    assert top["shared_clips"] == 90 and top["agreed"] > top["expected"] + 20
    tired = [r for r in body["fatigue"] if r["flagged"]]
    assert [r["annotator"] for r in tired] == ["crowd-2"]
    assert tired[0]["accuracy_first_half"] > 0.9 > 0.5 > tired[0]["accuracy_second_half"]
    assert len(tired[0]["accuracy_by_quarter"]) == 4
    # Annotators see nothing of it.
    assert api(users[3]).get(f"/api/v1/campaigns/{campaign.pk}/signals/").status_code == 403


def test_no_statistics_yet_means_no_signals(api, campaign, rita):
    body = api(rita).get(f"/api/v1/campaigns/{campaign.pk}/signals/").json()
    assert body == {"computed_at": None, "collusion": [], "fatigue": [], "rules": {}}


def test_the_signals_use_the_stored_model_and_fit_none(api, monkeypatch):
    """The statistics refresh refitted the model for the collusion signal (doubling its cost
    on a large campaign): a confidence campaign's stored model (the last recompute's) is
    used, and a campaign without one still gets a fit."""
    rng = random.Random(3)
    campaign = CampaignFactory(aggregation=Campaign.Aggregation.CONFIDENCE)
    users = crowd(campaign, 5)
    for _ in range(30):
        task = TaskFactory(campaign=campaign)
        true = rng.randrange(7)
        for user in rng.sample(users, 3):
            answer = true if rng.random() < 0.8 else rng.randrange(7)
            Vote.objects.create(task=task, campaign=campaign, annotator=user, answer=answer)
    consensus.campaign_recompute(campaign_id=campaign.pk)
    fits = []
    real_fit = consensus.model_fit
    monkeypatch.setattr(consensus, "model_fit", lambda **kw: fits.append(1) or real_fit(**kw))
    stats = statistics.statistics_refresh(campaign_id=campaign.pk)
    assert fits == [] and stats.data["signals"]["rules"]["min_overlap"] == 15
    TrustModel.objects.filter(campaign=campaign).delete()
    statistics.statistics_refresh(campaign_id=campaign.pk)
    assert fits == [1]
