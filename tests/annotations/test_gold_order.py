"""Gold that cannot be gamed: each annotator's own order, classes in turn, worn gold retired."""

import pytest

from annotations.models import Task, Vote
from annotations.statements import gold_order
from tests.factories import (
    CampaignFactory,
    GoldTaskFactory,
    MembershipFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db]


def gold_stream(api, user, campaign, n):
    """The gold clips (task ids) a user is handed, answering each, in order."""
    seen = []
    client = api(user)
    for _ in range(n):
        response = client.post(f"/api/v1/campaigns/{campaign.pk}/next/")
        assert response.status_code == 200
        assignment = response.json()["assignment"]["id"]
        task = Task.objects.get(assignments__pk=assignment)
        assert task.is_gold
        seen.append(task.pk)
        client.post(f"/api/v1/assignments/{assignment}/answer/", {"label": "happy"}, format="json")
    return seen


def member(campaign):
    user = UserFactory()
    MembershipFactory(campaign=campaign, user=user)
    return user


def test_each_annotator_gets_gold_in_its_own_reproducible_order_classes_in_turn(api):
    campaign = CampaignFactory(gold_share=1.0, gold_max_answers=0)
    golds = [GoldTaskFactory(campaign=campaign, gold_label=i % 3) for i in range(12)]
    TaskFactory.create_batch(2, campaign=campaign)
    label = {t.pk: t.gold_label for t in golds}
    alice, bob = member(campaign), member(campaign)
    first, second = gold_stream(api, alice, campaign, 6), gold_stream(api, bob, campaign, 6)
    assert first != second  # not everybody's order (it was ORDER BY id for all)
    pool = [(t.pk, t.gold_label) for t in golds]
    # The statement serves exactly the documented order (the same as its twin computes).
    assert first == gold_order(alice.pk, pool)[:6]
    assert second == gold_order(bob.pk, pool)[:6]
    # The classes take turns: every 3 consecutive gold clips cover the 3 classes.
    for stream in (first, second):
        assert {label[t] for t in stream[:3]} == {0, 1, 2} == {label[t] for t in stream[3:]}


def test_over_many_annotators_every_gold_clip_is_shown(api):
    campaign = CampaignFactory(gold_share=1.0, gold_max_answers=0)
    golds = [GoldTaskFactory(campaign=campaign, gold_label=i % 7) for i in range(30)]
    TaskFactory(campaign=campaign)
    shown = set()
    for _ in range(25):
        shown.update(gold_stream(api, member(campaign), campaign, 3))
    # With one order for all, 3 gold clips each would show only 3 of the 30.
    assert len(shown) >= 25
    assert shown <= {t.pk for t in golds}


def test_gold_answered_by_too_many_is_retired_and_a_unanimous_trusted_clip_replaces_it(api):
    from annotations.consensus import consensus_update

    campaign = CampaignFactory(gold_share=1.0, gold_max_answers=2, votes_per_clip=3)
    gold = GoldTaskFactory(campaign=campaign, gold_label=3)
    split = TaskFactory(campaign=campaign)
    clear = TaskFactory(campaign=campaign)
    voters = [member(campaign) for _ in range(3)]
    for user, answer in zip(voters, [3, 3, 5], strict=True):
        Vote.objects.create(task=split, campaign=campaign, annotator=user, answer=answer)
        Vote.objects.create(task=clear, campaign=campaign, annotator=user, answer=3)
    consensus_update(task_id=split.pk)
    consensus_update(task_id=clear.pk)
    for user in voters[:2]:
        Vote.objects.create(task=gold, campaign=campaign, annotator=user, answer=3)
    gold = consensus_update(task_id=gold.pk)
    assert gold.gold_retired and gold.is_gold
    clear.refresh_from_db()
    split.refresh_from_db()
    assert (clear.is_gold, clear.gold_label, clear.status) == (True, 3, "trusted")
    assert not split.is_gold  # 2 of 3 is not unanimous
    # A newcomer is never handed the retired clip, only its replacement.
    newcomer = member(campaign)
    response = api(newcomer).post(f"/api/v1/campaigns/{campaign.pk}/next/")
    assert Task.objects.get(assignments__pk=response.json()["assignment"]["id"]) == clear
