"""The trust rule, gold batches and the bulk recompute, on small hand-made campaigns."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from annotations import agreement, consensus
from annotations.batches import batch_review, batches_close
from annotations.models import ConsensusStatus, GoldBatch, Role, Task, Vote
from labelstudio_ferv.errors import Conflict
from labelstudio_ferv.expressions import Answer
from tests.factories import CampaignFactory, MembershipFactory, TaskFactory, UserFactory

H, S, N, P, F, SU = (
    Answer.HAPPY,
    Answer.SAD,
    Answer.NEUTRAL,
    Answer.PASS,
    Answer.FEAR,
    Answer.SURPRISE,
)


def voters(campaign, n):
    users = [UserFactory() for _ in range(n)]
    for user in users:
        MembershipFactory(campaign=campaign, user=user, role=Role.ANNOTATOR)
    return users


def vote_all(task, answers, users):
    for user, answer in zip(users, answers, strict=False):
        Vote.objects.create(task=task, campaign=task.campaign, annotator=user, answer=answer)
    return consensus.consensus_update(task_id=task.pk)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("answers", "status", "label", "needed", "share"),
    [
        ([H, H, S], ConsensusStatus.TRUSTED, H, 3, 2 / 3),
        ([H, H, H], ConsensusStatus.TRUSTED, H, 3, 1.0),
        ([H, H, P], ConsensusStatus.TRUSTED, H, 3, 2 / 3),
        ([P, P, H], ConsensusStatus.DISCARDED, None, 3, 2 / 3),
        ([H, S, N], ConsensusStatus.COLLECTING, None, 4, 1 / 3),  # asks for one more vote
        ([H, S], ConsensusStatus.COLLECTING, None, 3, 1 / 2),  # not enough votes yet
        ([H, S, N, H], ConsensusStatus.COLLECTING, None, 5, 1 / 2),
        ([H, S, N, H, H], ConsensusStatus.TRUSTED, H, 3, 3 / 5),  # the fifth vote settles it
        ([F, SU, F, SU, N], ConsensusStatus.DISPUTED, None, 3, 2 / 5),  # undecided at the cap
    ],
)
def test_each_branch_of_the_trust_rule(answers, status, label, needed, share):
    campaign = CampaignFactory(min_agreement=0.6)
    task = TaskFactory(campaign=campaign)
    task = vote_all(task, answers, voters(campaign, len(answers)))
    assert (task.status, task.label, task.votes_needed) == (status, label, needed)
    assert task.agreement == pytest.approx(share)
    assert task.vote_count == len(answers) and sum(task.counts) == len(answers)
    assert Task.objects.get(pk=task.pk).consensus_stale is False


@pytest.mark.django_db
def test_the_default_minimum_agreement_is_two_thirds():
    campaign = CampaignFactory()  # min_agreement 2/3
    task = vote_all(TaskFactory(campaign=campaign), [H, S, N, H, H], voters(campaign, 5))
    assert (task.status, task.label) == (ConsensusStatus.DISPUTED, None)  # 3/5 < 2/3


@pytest.mark.django_db
def test_a_reviewers_decision_and_a_gold_reference_are_kept():
    campaign = CampaignFactory()
    users = voters(campaign, 3)
    decided = TaskFactory(campaign=campaign, status=ConsensusStatus.ADJUDICATED, label=S)
    gold = TaskFactory(campaign=campaign, is_gold=True, gold_label=F)
    decided = vote_all(decided, [H, H, H], users)
    gold = vote_all(gold, [H, H, H], users)
    assert (decided.status, decided.label, decided.counts[H]) == ("adjudicated", S, 3)
    assert (gold.status, gold.label, gold.gold_label) == ("collecting", None, F)


@pytest.mark.django_db
def test_the_update_is_idempotent_and_a_stale_mark_is_swept():
    campaign = CampaignFactory()
    task = TaskFactory(campaign=campaign)
    task = vote_all(task, [H, H, S], voters(campaign, 3))
    again = consensus.consensus_update(task_id=task.pk)
    assert (again.status, again.counts, again.vote_count) == (task.status, task.counts, 3)
    # A vote whose message was lost: marked stale in its transaction, never processed.
    Task.objects.filter(pk=task.pk).update(counts=[0] * 8, vote_count=0, consensus_stale=True)
    assert consensus.consensus_sweep(older_than_s=0) == 1
    swept = Task.objects.get(pk=task.pk)
    assert (swept.counts[H], swept.vote_count, swept.consensus_stale) == (2, 3, False)
    assert consensus.consensus_update(task_id=10**9) is None  # a task gone is not an error


@pytest.mark.django_db
def test_one_vote_message_catches_up_every_stale_task_and_the_others_find_nothing_to_do():
    campaign = CampaignFactory()
    users = voters(campaign, 3)
    tasks = [TaskFactory(campaign=campaign) for _ in range(4)]
    for task, answers in zip(tasks, [[H, H, S], [P, P, H], [H, S], [S, S, S]], strict=True):
        for user, answer in zip(users, answers, strict=False):
            Vote.objects.create(task=task, campaign=campaign, annotator=user, answer=answer)
            consensus.consensus_enqueue(task_id=task.pk)  # as the vote's transaction does
    assert Task.objects.filter(consensus_stale=True).count() == 4
    # A fresh vote: the worker keeps up, so the message does its own task only.
    assert consensus.consensus_catch_up(task_id=tasks[1].pk) == 1
    assert Task.objects.filter(consensus_stale=True).count() == 3
    # Votes marked a while ago: the worker is behind, the first message takes every stale task.
    Task.objects.update(updated_at=timezone.now() - timedelta(seconds=1))
    assert consensus.consensus_catch_up(task_id=tasks[2].pk) == 3
    got = {t.pk: t for t in Task.objects.filter(campaign=campaign)}
    assert [got[t.pk].status for t in tasks] == ["trusted", "discarded", "collecting", "trusted"]
    assert [got[t.pk].vote_count for t in tasks] == [3, 3, 2, 3]
    assert [got[t.pk].vote_seq for t in tasks] == [3, 3, 2, 3]
    assert not any(t.consensus_stale for t in got.values())
    # The messages of the other votes arrive later: nothing left, nothing written again.
    assert [consensus.consensus_catch_up(task_id=t.pk) for t in tasks] == [0, 0, 0, 0]
    # A limit of one does the message's own task only.
    Vote.objects.create(task=tasks[2], campaign=campaign, annotator=users[2], answer=H)
    consensus.consensus_enqueue(task_id=tasks[2].pk)
    consensus.consensus_enqueue(task_id=tasks[0].pk)
    Task.objects.update(updated_at=timezone.now() - timedelta(seconds=1))
    assert consensus.consensus_catch_up(task_id=tasks[2].pk, limit=1) == 1
    assert Task.objects.get(pk=tasks[2].pk).status == "trusted"
    assert Task.objects.get(pk=tasks[0].pk).consensus_stale is True
    # A late message whose own task is done still brings the other stale tasks up to date.
    assert consensus.consensus_catch_up(task_id=tasks[3].pk) == 1
    assert Task.objects.get(pk=tasks[0].pk).consensus_stale is False


@pytest.mark.django_db
def test_a_recompute_leaves_alone_a_task_voted_on_while_it_ran():
    campaign = CampaignFactory()
    users = voters(campaign, 3)
    quiet, voted = TaskFactory(campaign=campaign), TaskFactory(campaign=campaign)
    vote_all(quiet, [H, H, H], users)
    vote_all(voted, [S, S], users)
    Task.objects.filter(pk=quiet.pk).update(status="collecting", label=None, counts=[0] * 8)

    def vote_meanwhile(step):
        if step == "aggregating":  # the votes are read; a third one lands on ``voted``
            Vote.objects.create(task=voted, campaign=campaign, annotator=users[2], answer=S)
            consensus.consensus_enqueue(task_id=voted.pk)

    consensus.campaign_recompute(campaign_id=campaign.pk, progress=vote_meanwhile)
    quiet, voted = Task.objects.get(pk=quiet.pk), Task.objects.get(pk=voted.pk)
    assert (quiet.status, quiet.label, quiet.counts[H]) == ("trusted", H, 3)
    # Written from the older arrays, ``voted`` would read 2 votes and lose its stale mark.
    assert (voted.consensus_stale, voted.counts[S]) == (True, 2)
    assert consensus.consensus_catch_up(task_id=voted.pk) == 1
    voted = Task.objects.get(pk=voted.pk)
    assert (voted.status, voted.label, voted.counts[S], voted.consensus_stale) == (
        "trusted", S, 3, False,
    )  # fmt: skip


def batch_campaign(size=10, gold_every=2):
    """A campaign whose gold clips come every ``gold_every`` clips (answered in that order)."""
    campaign = CampaignFactory(batch_size=size, votes_per_clip=3)
    tasks = [
        TaskFactory(
            campaign=campaign,
            is_gold=i % gold_every == 0,
            gold_label=H if i % gold_every == 0 else None,
        )
        for i in range(size)
    ]
    return campaign, tasks


def answer_batch(campaign, tasks, user, gold_right):
    """Answer every task; the first ``gold_right`` gold clips right, the others wrong."""
    right = 0
    for task in tasks:
        answer = H
        if task.is_gold:
            answer = H if right < gold_right else S
            right += 1
        Vote.objects.create(task=task, campaign=campaign, annotator=user, answer=answer)
    return batches_close(campaign_id=campaign.pk, annotator_id=user.pk)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("gold_every", "gold_right", "verdict", "review", "valid"),
    [
        (2, 5, "accept", "", True),  # 5 of 5
        (2, 4, "accept", "", True),
        # 3 of 5 gold (a good annotator on a bad draw): P(accuracy < 0.8) is only 0.90, not
        # the 0.97 a verdict needs (the per-batch share of 60 % made it Improper before).
        (2, 3, "accept", "", True),
        (2, 2, "improper", "pending", True),  # P(accuracy < 0.8) = 0.983: a reviewer looks
        # 0 of 5 is not yet enough evidence of an accuracy below 0.4 (0.953 < 0.97) ...
        (2, 0, "improper", "pending", True),
        # ... 0 of 10 is (0.996): the votes stop counting and the annotator is paused.
        (1, 0, "unacceptable", "", False),
    ],
)
def test_batches_are_judged_on_the_gold_evidence(gold_every, gold_right, verdict, review, valid):
    campaign, tasks = batch_campaign(gold_every=gold_every)
    (alice,) = voters(campaign, 1)
    (batch,) = answer_batch(campaign, tasks, alice, gold_right)
    assert (batch.gold_total, batch.gold_correct, batch.size) == (10 // gold_every, gold_right, 10)
    assert (batch.verdict, batch.review) == (verdict, review)
    votes = Vote.objects.filter(annotator=alice)
    assert {v.is_valid for v in votes} == {valid}
    assert all(v.batch_id == batch.pk for v in votes)
    if not valid:
        assert all(v.invalidated_at is not None and v.invalidated_by is None for v in votes)


@pytest.mark.django_db
def test_an_unacceptable_batch_reopens_the_clips_it_touched(django_capture_on_commit_callbacks):
    campaign, tasks = batch_campaign(size=14)  # 7 gold clips, all answered wrong
    careful = voters(campaign, 2)
    plain = [t for t in tasks if not t.is_gold]
    for task in plain:
        for user in careful:
            Vote.objects.create(task=task, campaign=campaign, annotator=user, answer=H)
    (spammer,) = voters(campaign, 1)
    with django_capture_on_commit_callbacks(execute=True):
        answer_batch(campaign, tasks, spammer, gold_right=0)
    for task in plain:
        task.refresh_from_db()
        # The spammer's vote no longer counts: 2 votes, the clip asks for a third again.
        assert (task.vote_count, task.status, task.votes_needed) == (2, "collecting", 3)
    assert Vote.objects.filter(annotator=spammer, is_valid=True).count() == 0
    assert Vote.objects.filter(annotator=spammer).count() == 14  # marked, never deleted


@pytest.mark.django_db
def test_a_reviewer_rejects_or_accepts_an_improper_batch_once(
    rita, django_capture_on_commit_callbacks
):
    campaign, tasks = batch_campaign()
    (alice, bob) = voters(campaign, 2)
    (first,) = answer_batch(campaign, tasks, alice, gold_right=2)
    (second,) = answer_batch(campaign, tasks, bob, gold_right=2)
    with django_capture_on_commit_callbacks(execute=True):
        rejected = batch_review(batch_id=first.pk, reviewer=rita, accept=False, note="sloppy")
    assert (rejected.review, rejected.reviewed_by, rejected.review_note) == (
        "rejected",
        rita,
        "sloppy",
    )
    assert not Vote.objects.filter(annotator=alice, is_valid=True).exists()
    assert set(Vote.objects.filter(annotator=alice).values_list("invalidated_by", flat=True)) == {
        rita.pk
    }
    accepted = batch_review(batch_id=second.pk, reviewer=rita, accept=True)
    assert accepted.review == "accepted"
    assert Vote.objects.filter(annotator=bob, is_valid=True).count() == 10
    with pytest.raises(Conflict, match="already rejected"):
        batch_review(batch_id=first.pk, reviewer=rita, accept=True)
    assert GoldBatch.objects.get(pk=first.pk).review == "rejected"


@pytest.mark.django_db
def test_only_full_batches_close_and_numbers_follow_each_other():
    campaign, tasks = batch_campaign(size=4)
    (alice,) = voters(campaign, 1)
    for task in tasks[:3]:
        Vote.objects.create(task=task, campaign=campaign, annotator=alice, answer=H)
    assert batches_close(campaign_id=campaign.pk, annotator_id=alice.pk) == []
    extra = [TaskFactory(campaign=campaign) for _ in range(5)]
    for task in [tasks[3], *extra]:
        Vote.objects.create(task=task, campaign=campaign, annotator=alice, answer=H)
    closed = batches_close(campaign_id=campaign.pk, annotator_id=alice.pk)
    assert [b.number for b in closed] == [1, 2]
    assert Vote.objects.filter(annotator=alice, batch__isnull=True).count() == 1


@pytest.mark.django_db
def test_the_bulk_recompute_matches_the_incremental_path_on_a_random_campaign():
    rng = random.Random(11)
    campaign = CampaignFactory(votes_per_clip=3, max_votes=5)
    users = voters(campaign, 7)
    tasks = [TaskFactory(campaign=campaign) for _ in range(120)]
    tasks[0].status, tasks[0].label = ConsensusStatus.ADJUDICATED, S
    tasks[0].save()
    for task in tasks:
        n = rng.choice([0, 1, 2, 3, 3, 3, 4, 5])
        for user in rng.sample(users, n):
            answer = rng.choice([H, H, H, S, N, P])
            Vote.objects.create(task=task, campaign=campaign, annotator=user, answer=answer)
    some = Vote.objects.order_by("?")[:15]
    Vote.objects.filter(pk__in=[v.pk for v in some]).update(is_valid=False)
    incremental = {}
    for task in tasks:
        t = consensus.consensus_update(task_id=task.pk)
        incremental[t.pk] = (
            t.status,
            t.label,
            t.counts,
            t.vote_count,
            t.votes_needed,
            round(t.agreement, 9),
        )
    Task.objects.filter(campaign=campaign).update(
        status="collecting", label=None, counts=[0] * 8, vote_count=0, votes_needed=3, agreement=0
    )
    Task.objects.filter(pk=tasks[0].pk).update(status="adjudicated", label=S)
    changed = consensus.campaign_recompute(campaign_id=campaign.pk)
    assert changed > 0
    bulk = {
        t.pk: (t.status, t.label, t.counts, t.vote_count, t.votes_needed, round(t.agreement, 9))
        for t in Task.objects.filter(campaign=campaign)
    }
    assert bulk == incremental
    assert {s for s, *_ in bulk.values()} >= {"trusted", "collecting", "adjudicated"}
    assert consensus.campaign_recompute(campaign_id=campaign.pk) == 0  # nothing left to change


@pytest.mark.django_db
def test_beat_recomputes_campaigns_with_new_votes_and_a_ds_campaign_decides_by_ds():
    from annotations.models import Campaign, CampaignStatistics
    from annotations.tasks import refresh_active_campaigns

    campaign = CampaignFactory(aggregation=Campaign.Aggregation.DAWID_SKENE, ds_threshold=1.0)
    users = voters(campaign, 3)
    task = vote_all(TaskFactory(campaign=campaign), [H, H, S], users)
    quiet = CampaignFactory()  # no votes: nothing to do
    assert (task.status, task.ds_label) == ("trusted", None)  # the per-vote path: the rule
    assert refresh_active_campaigns() == 1  # runs the recompute (eagerly here)
    task = Task.objects.get(pk=task.pk)
    # Dawid-Skene labels it, short of the (strict) threshold: the clip asks for one more vote.
    assert task.ds_label == H and task.ds_confidence < 1.0
    assert (task.status, task.votes_needed) == ("collecting", 4)
    assert CampaignStatistics.objects.filter(campaign=campaign).exists()
    assert not CampaignStatistics.objects.filter(campaign=quiet).exists()
    assert refresh_active_campaigns() == 0  # no vote since


def test_the_stored_statuses_and_verdicts_are_those_of_the_numerics():
    """One definition each: the model's choices are the keys of agreement's codes."""
    assert [(s.name, s.value) for s in ConsensusStatus] == [
        (s.name, s.key) for s in agreement.Status
    ]
    assert [(v.name, v.value) for v in GoldBatch.Verdict] == [
        (v.name, v.value) for v in agreement.Verdict
    ]
