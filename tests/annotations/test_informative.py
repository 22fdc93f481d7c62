"""Extra votes go to the annotators the trust model rates informative.

Each fit of a confidence campaign's model rates its annotators (``Membership.informative``:
estimated accuracy in the top third of the working annotators'). A clip that already
holds ``votes_per_clip`` votes is offered to informative members first; the others get it only
when nothing else is left for them.
"""

import pytest

from annotations import consensus
from annotations.models import Assignment, Campaign, Membership, Role, Task, Vote
from labelstudio_ferv.expressions import Answer
from tests.factories import CampaignFactory, MembershipFactory, TaskFactory, UserFactory

H, S = Answer.HAPPY, Answer.SAD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def confidence_campaign():
    return CampaignFactory(aggregation=Campaign.Aggregation.CONFIDENCE, gold_share=0)


def member(campaign, *, informative=True):
    user = UserFactory()
    MembershipFactory(campaign=campaign, user=user, role=Role.ANNOTATOR, informative=informative)
    return user


def extra_vote_task(campaign):
    """A clip with 3 votes, happy, happy, sad: the rule asks for a 4th (an extra) vote."""
    task = TaskFactory(campaign=campaign)
    for answer in (H, H, S):
        Vote.objects.create(task=task, campaign=campaign, annotator=member(campaign), answer=answer)
    task = consensus.consensus_update(task_id=task.pk)
    assert (task.status, task.vote_count, task.votes_needed) == ("collecting", 3, 4)
    return task


def offered_task(api, user, campaign) -> Task | None:
    response = api(user).post(f"/api/v1/campaigns/{campaign.pk}/next/")
    if response.status_code == 204:
        return None
    assert response.status_code == 200, response.content
    lease = Assignment.objects.get(pk=response.json()["assignment"]["id"])
    assert lease.annotator_id == user.pk and lease.state == "active"
    return lease.task


@pytest.fixture
def informative_extras(settings):
    settings.TRUST_INFORMATIVE_EXTRAS = True


@pytest.mark.usefixtures("informative_extras")
def test_an_extra_vote_goes_to_the_informative_annotator_not_the_weak_one(api):
    campaign = confidence_campaign()
    extra = extra_vote_task(campaign)
    fresh = TaskFactory(campaign=campaign)
    weak, strong = member(campaign, informative=False), member(campaign)
    # The fullest clip comes first, but not for a member the model does not rate informative.
    assert offered_task(api, weak, campaign) == fresh
    assert offered_task(api, strong, campaign) == extra
    assert Task.objects.get(pk=extra.pk).lease_count == 1
    assert Task.objects.get(pk=fresh.pk).lease_count == 1


def test_without_the_setting_the_fullest_clip_comes_first_for_everyone(api):
    campaign = confidence_campaign()
    extra = extra_vote_task(campaign)
    TaskFactory(campaign=campaign)
    assert offered_task(api, member(campaign, informative=False), campaign) == extra


@pytest.mark.usefixtures("informative_extras")
def test_the_weak_annotator_still_gets_an_extra_vote_when_nothing_else_is_left(api):
    campaign = confidence_campaign()
    extra = extra_vote_task(campaign)
    weak = member(campaign, informative=False)
    assert offered_task(api, weak, campaign) == extra
    lease = Assignment.objects.get(annotator=weak, state="active")
    response = api(weak).post(f"/api/v1/assignments/{lease.pk}/answer/", {"label": "happy"},
                              format="json")  # fmt: skip
    assert response.status_code == 201
    assert Vote.objects.filter(task=extra, annotator=weak, answer=H).exists()
    assert offered_task(api, weak, campaign) is None


def test_each_fit_rates_the_annotators_against_those_working():
    campaign = confidence_campaign()
    steady = [member(campaign) for _ in range(3)]
    wrong, paused, newcomer = (member(campaign) for _ in range(3))
    Membership.objects.filter(user=wrong).update(informative=True)
    for n in range(30):
        task = TaskFactory(campaign=campaign)
        truth = (H, S, Answer.ANGRY)[n % 3]
        for user in steady:
            Vote.objects.create(task=task, campaign=campaign, annotator=user, answer=truth)
        Vote.objects.create(task=task, campaign=campaign, annotator=wrong,
                            answer=Answer.NEUTRAL)  # fmt: skip
    Membership.objects.filter(user=paused).update(paused_at="2026-01-01T00:00:00Z")
    consensus.campaign_recompute(campaign_id=campaign.pk)
    rated = dict(Membership.objects.filter(campaign=campaign).values_list("user_id", "informative"))
    assert all(rated[u.pk] for u in steady)
    # Always wrong: out of the top third. A member without votes is rated as a newcomer
    # (70 % right), below these steady voters; a paused one is not working.
    assert not rated[wrong.pk] and not rated[newcomer.pk] and not rated[paused.pk]


@pytest.mark.usefixtures("informative_extras")
@pytest.mark.parametrize("informative", [False, True])
def test_answer_and_next_claims_the_extra_vote_clip_ahead_for_the_informative_only(
    api, informative
):
    """answer-and-next/?ahead=1 claims the clip ahead in its answer's statement, with the same
    bound: the fullest clip (an extra vote) for an informative member, a fresh one otherwise."""
    campaign = confidence_campaign()
    TaskFactory.create_batch(4, campaign=campaign)
    user = member(campaign, informative=informative)
    client = api(user)
    offer = client.post(f"/api/v1/campaigns/{campaign.pk}/next/?ahead=1").json()
    extra = extra_vote_task(campaign)  # the fullest clip, once two fresh ones are held
    url = f"/api/v1/assignments/{offer['assignment']['id']}/answer-and-next/?ahead=1"
    body = client.post(url, {"label": "happy"}, format="json").json()["next"]
    ahead = Assignment.objects.get(pk=body["ahead"]["assignment"]["id"]).task
    assert (ahead == extra) is informative
    assert ahead.lease_count == 1
