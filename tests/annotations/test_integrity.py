"""Integrity the database enforces on its own, whatever the code above it does."""

import pytest
from django.db import IntegrityError, transaction

from annotations.models import Task, Vote
from tests.factories import CampaignFactory, TaskFactory, UserFactory, VoteFactory


@pytest.mark.django_db
def test_a_second_vote_by_the_same_annotator_on_the_same_clip_is_refused(alice, campaign):
    task = TaskFactory(campaign=campaign)
    VoteFactory(task=task, annotator=alice, answer=3)
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(task=task, campaign=campaign, annotator=alice, answer=5)
    assert list(Vote.objects.filter(task=task).values_list("answer", flat=True)) == [3]


@pytest.mark.django_db
def test_votes_by_different_annotators_on_one_clip_are_kept(alice, bob, campaign):
    task = TaskFactory(campaign=campaign)
    VoteFactory(task=task, annotator=alice, answer=3)
    VoteFactory(task=task, annotator=bob, answer=7)
    assert sorted(task.votes.values_list("answer", flat=True)) == [3, 7]


@pytest.mark.django_db
def test_an_unknown_answer_is_refused():
    task = TaskFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(task=task, campaign=task.campaign, annotator=UserFactory(), answer=8)


@pytest.mark.django_db
def test_a_clip_is_in_a_campaign_once_and_a_trusted_task_has_a_label():
    task = TaskFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.create(campaign=task.campaign, clip=task.clip)
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.filter(pk=task.pk).update(status="trusted", label=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.filter(pk=task.pk).update(label=7)  # PASS is never a label


@pytest.mark.django_db
def test_campaign_rules_are_checked_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignFactory(votes_per_clip=3, max_votes=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignFactory(gold_share=1.5)
    campaign = CampaignFactory()
    assert (campaign.votes_per_clip, campaign.max_votes, campaign.gold_share) == (3, 5, 0.05)
    assert campaign.lease_seconds == 600
