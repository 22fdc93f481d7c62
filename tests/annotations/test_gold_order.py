"""Gold that cannot be gamed: each annotator's own order, classes in turn, worn gold retired."""

from datetime import timedelta

import pytest

from annotations.models import GoldTurn, Membership, Task, Vote
from annotations.statements import GOLD_QUEUE_MAX_AGE_S, gold_order
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


def queue(campaign, user):
    """The member's gold queue, task ids in order."""
    rows = GoldTurn.objects.filter(campaign=campaign, annotator=user).order_by("rank")
    return list(rows.values_list("task_id", flat=True))


def test_the_gold_queue_is_taken_from_the_front_and_skips_what_the_campaign_stopped_serving(api):
    campaign = CampaignFactory(gold_share=1.0, gold_max_answers=0)
    golds = [GoldTaskFactory(campaign=campaign, gold_label=i % 2) for i in range(6)]
    TaskFactory(campaign=campaign)
    alice = member(campaign)
    [first] = gold_stream(api, alice, campaign, 1)
    order = gold_order(alice.pk, [(t.pk, t.gold_label) for t in golds])
    assert first == order[0]
    # Built once, at the first gold claim: the rest of her order, unseen clips only.
    assert queue(campaign, alice) == order[1:]
    # The campaign stops serving her next two: one retired, one no longer gold.
    Task.objects.filter(pk=order[1]).update(gold_retired=True)
    Task.objects.filter(pk=order[2]).update(is_gold=False, gold_label=None)
    [second] = gold_stream(api, alice, campaign, 1)
    assert second == order[3]
    assert queue(campaign, alice) == order[4:]  # the rows up to the clip served are gone


def test_gold_made_by_a_reviewer_reaches_a_member_whose_queue_was_built(api, rita, campaign):
    campaign.gold_share, campaign.gold_max_answers = 1.0, 0
    campaign.save()
    GoldTaskFactory(campaign=campaign)
    plain = TaskFactory(campaign=campaign)
    TaskFactory.create_batch(3, campaign=campaign)
    alice = member(campaign)
    gold_stream(api, alice, campaign, 1)
    assert Membership.objects.get(campaign=campaign, user=alice).gold_queue_at is not None
    response = api(rita).put(
        f"/api/v1/campaigns/{campaign.pk}/tasks/{plain.pk}/gold/",
        {"gold_label": "sad"},
        format="json",
    )
    assert response.status_code == 200
    # Her queue was dropped with the new gold, so her next gold claim ranks it.
    assert Membership.objects.get(campaign=campaign, user=alice).gold_queue_at is None
    assert gold_stream(api, alice, campaign, 1) == [plain.pk]
    assert queue(campaign, alice) == []


def test_a_stale_queue_is_rebuilt_and_a_dry_one_is_not_ranked_again_at_once(api):
    campaign = CampaignFactory(gold_share=1.0, gold_max_answers=0)
    gold = GoldTaskFactory(campaign=campaign)
    TaskFactory.create_batch(4, campaign=campaign)
    alice = member(campaign)
    assert gold_stream(api, alice, campaign, 1) == [gold.pk]
    membership = Membership.objects.get(campaign=campaign, user=alice)
    built = membership.gold_queue_at
    # No gold left: her queue is dry but was just built, so it is not ranked again...
    client = api(alice)
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/next/")
    assert not Task.objects.get(assignments__pk=response.json()["assignment"]["id"]).is_gold
    membership.refresh_from_db()
    assert membership.gold_queue_at == built
    # ... until it is older than the maximum age: gold made without a reset (here, in the
    # database) then joins it.
    later = Task.objects.filter(campaign=campaign, is_gold=False).exclude(
        assignments__annotator=alice
    )[0]
    Task.objects.filter(pk=later.pk).update(is_gold=True, gold_label=2)
    stale = built - timedelta(seconds=GOLD_QUEUE_MAX_AGE_S + 1)
    Membership.objects.filter(pk=membership.pk).update(gold_queue_at=stale)
    client.post(
        f"/api/v1/assignments/{response.json()['assignment']['id']}/answer/",
        {"label": "happy"},
        format="json",
    )
    assert gold_stream(api, alice, campaign, 1) == [later.pk]
    membership.refresh_from_db()
    assert membership.gold_queue_at >= built > stale  # rebuilt (the test's transaction: now())


def test_each_clip_handed_out_is_counted_on_the_membership_gold_apart(api):
    """The claim counts what it hands out (served, gold_served: the gold draw's inputs) in its
    own statement, the clip ahead included; a request that finds its lease open counts nothing."""
    campaign = CampaignFactory(gold_share=0.25, gold_max_answers=0)
    GoldTaskFactory.create_batch(6, campaign=campaign, gold_label=2)
    TaskFactory.create_batch(20, campaign=campaign)
    user = member(campaign)
    client = api(user)
    offer = client.post(f"/api/v1/campaigns/{campaign.pk}/next/?ahead=1").json()
    # Asked again, the same two leases come back: nothing more is counted.
    assert client.post(f"/api/v1/campaigns/{campaign.pk}/next/?ahead=1").json() == offer
    for _ in range(9):
        url = f"/api/v1/assignments/{offer['assignment']['id']}/answer-and-next/?ahead=1"
        response = client.post(url, {"label": "happy"}, format="json")
        assert response.status_code == 201
        offer = response.json()["next"]
    handed = Task.objects.filter(assignments__annotator=user)
    row = Membership.objects.get(campaign=campaign, user=user)
    assert row.served == handed.count() == 11  # 10 answered, 1 held ahead
    assert row.gold_served == handed.filter(is_gold=True).count() > 0
