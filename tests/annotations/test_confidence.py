"""The confidence rule: each clip's posterior from its voters' confusions, to a target precision.

The per-vote path and the recompute decide with the same model, so a recompute changes a
decision only when the fitted model changed, and it counts those changes.
"""

import itertools
import random

import numpy as np
import pytest

from annotations import agreement, consensus
from annotations.models import AnnotatorModel, Campaign, Role, Task, TrustModel, Vote
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
K = len(Answer)


def voters(campaign, n):
    users = [UserFactory() for _ in range(n)]
    for user in users:
        MembershipFactory(campaign=campaign, user=user, role=Role.ANNOTATOR)
    return users


def vote_all(task, answers, users):
    for user, answer in zip(users, answers, strict=False):
        Vote.objects.create(task=task, campaign=task.campaign, annotator=user, answer=answer)
    return consensus.consensus_update(task_id=task.pk)


def confidence_campaign(**rules):
    return CampaignFactory(aggregation=Campaign.Aggregation.CONFIDENCE, **rules)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("answers", "status", "label", "needed"),
    [
        ([H, H, H], "trusted", H, 3),  # posterior 0.9985 >= 0.97
        ([H, H], "collecting", None, 3),  # not enough votes yet
        ([H, H, S], "collecting", None, 4),  # 0.925: one more vote
        ([H, H, S, H], "trusted", H, 3),  # 0.995
        ([P, P, P], "discarded", None, 3),  # PASS is the most probable truth
        # Split 2-2-1 at the cap: nothing is sure, the clip goes to review.
        ([F, SU, F, SU, N], "disputed", None, 3),
    ],
)
def test_each_branch_of_the_confidence_rule(answers, status, label, needed):
    campaign = confidence_campaign()  # target_precision 0.97, 3 to 5 votes
    task = vote_all(TaskFactory(campaign=campaign), answers, voters(campaign, len(answers)))
    assert (task.status, task.label, task.votes_needed) == (status, label, needed)
    # The clip's posterior is stored where reviewers see it (top class and its probability).
    assert task.ds_confidence is not None and 0 < task.ds_confidence <= 1


def test_the_default_campaign_uses_the_confidence_rule_at_097():
    campaign = Campaign(name="x")
    assert (campaign.aggregation, campaign.target_precision) == ("confidence", 0.97)


@pytest.mark.django_db
def test_a_2_1_split_under_the_share_rule_settles_under_the_confidence_rule():
    """Defect 1: at 3 votes the share rule (2/3) leaves only 1-1-1 open, and 2-1-1 / 3-1-1 can
    never reach 2/3: two wasted votes. The confidence rule settles 1-1-1 + two agreeing votes."""
    share = CampaignFactory()  # majority, min_agreement 2/3, 3..5 votes
    confident = confidence_campaign()
    answers = [H, S, N, H, H]
    shared = vote_all(TaskFactory(campaign=share), answers, voters(share, 5))
    settled = vote_all(TaskFactory(campaign=confident), answers, voters(confident, 5))
    assert shared.status == "disputed"
    assert (settled.status, settled.label) == ("trusted", H)


def random_campaign(seed=3, n_tasks=60):
    rng = random.Random(seed)
    campaign = confidence_campaign(votes_per_clip=3, max_votes=5)
    users = voters(campaign, 8)
    levels = [0.9, 0.85, 0.8, 0.8, 0.75, 0.7, 0.2, 0.1]
    accuracy = {u.pk: a for u, a in zip(users, levels, strict=True)}
    tasks = [
        TaskFactory(campaign=campaign, is_gold=i < 10, gold_label=(i % 7) if i < 10 else None)
        for i in range(n_tasks)
    ]
    for i, task in enumerate(tasks):
        truth = i % 7
        for user in rng.sample(users, rng.choice([2, 3, 3, 4, 5])):
            answer = truth if rng.random() < accuracy[user.pk] else rng.randrange(8)
            Vote.objects.create(task=task, campaign=campaign, annotator=user, answer=answer)
    return campaign, tasks, accuracy


def decisions(campaign):
    return {
        t.pk: (t.status, t.label, t.votes_needed, t.ds_label, round(t.ds_confidence or 0, 9))
        for t in Task.objects.filter(campaign=campaign)
    }


@pytest.mark.django_db
def test_the_recompute_and_the_per_vote_path_decide_with_the_same_model():
    campaign, tasks, accuracy = random_campaign()
    for task in tasks:
        consensus.consensus_update(task_id=task.pk)
    # The first recompute fits each annotator's confusion: decisions change only through it,
    # and it counts them.
    changed_rows = consensus.campaign_recompute(campaign_id=campaign.pk)
    model = TrustModel.objects.get(campaign=campaign)
    assert model.recomputes == 1 and model.last_changes > 0 and changed_rows > 0
    assert AnnotatorModel.objects.filter(campaign=campaign).count() == 8
    after_fit = decisions(campaign)
    # The per-vote path, with the stored model, agrees with the recompute on every clip ...
    for task in tasks:
        consensus.consensus_update(task_id=task.pk)
    assert decisions(campaign) == after_fit
    # ... and with nothing new, a recompute changes nothing (it flip-flopped under DS).
    assert consensus.campaign_recompute(campaign_id=campaign.pk) == 0
    model.refresh_from_db()
    assert (model.recomputes, model.last_changes) == (2, 0)
    # The confusions are learnt: the two careless annotators come out least accurate.
    confusion = {m.annotator_id: np.array(m.confusion) for m in AnnotatorModel.objects.all()}
    ranked = sorted(confusion, key=lambda a: np.trace(confusion[a]))
    assert set(ranked[:2]) == {a for a, acc in accuracy.items() if acc < 0.5}


# --- the numerics, without the database ------------------------------------------------------


def brute_posterior(votes, confusion, priors):
    post = np.array(priors, dtype=float)
    for worker, answer in votes:
        post = post * confusion[worker][:, answer]
    return post / post.sum()


def test_clip_posteriors_match_a_product_of_likelihoods():
    rng = np.random.default_rng(0)
    confusion = rng.dirichlet(np.ones(K), size=(4, K))
    priors = rng.dirichlet(np.ones(K))
    clips = [[(0, 3), (1, 3), (2, 5)], [], [(3, 7)], [(1, 0), (0, 1), (2, 0), (3, 0)]]
    flat = [(c, w, a) for c, votes in enumerate(clips) for w, a in votes]
    clip, worker, answer = (np.array(x, dtype=np.int64) for x in zip(*flat, strict=True))
    post = agreement.clip_posteriors(clip, worker, answer, len(clips), confusion, priors)
    for c, votes in enumerate(clips):
        assert post[c] == pytest.approx(brute_posterior(votes, confusion, priors))
    assert post[1] == pytest.approx(priors)  # no votes: the prior


def test_clip_posteriors_edge_cases():
    confusion = np.eye(K)[None]  # a perfect annotator: other states are impossible
    priors = agreement.default_priors(K)
    post = agreement.clip_posteriors([0, 1, 1], [0, 0, 0], [2, 2, 3], 2, confusion, priors)
    assert post[0] == pytest.approx(np.eye(K)[2])
    assert post[1] == pytest.approx(priors)  # contradictory votes exclude every state: prior
    with pytest.raises(ValueError):
        agreement.clip_posteriors([0], [1], [2], 1, confusion, priors)  # no worker 1


def test_decide_by_posterior_branches_and_edge_cases():
    post = np.array(
        [
            [0.98, 0.02] + [0] * 6,  # sure, enough votes: trusted
            [0.98, 0.02] + [0] * 6,  # sure, too few votes: collecting
            [0.6, 0.4] + [0] * 6,  # unsure, under the cap: one more
            [0.6, 0.4] + [0] * 6,  # unsure at the cap: disputed
            [0.01] + [0] * 6 + [0.99],  # PASS: discarded
        ]
    )
    status, label, confidence, needed = agreement.decide_by_posterior(
        post, [3, 2, 3, 5, 3], 3, 5, 0.97
    )
    assert status.tolist() == [1, 0, 0, 2, 3]
    assert label.tolist() == [0, -1, -1, -1, -1]
    assert needed.tolist() == [3, 3, 4, 3, 3]
    assert confidence == pytest.approx([0.98, 0.98, 0.6, 0.6, 0.99])
    # needed above the cap is capped: a clip at the cap is always decided
    assert agreement.decide_by_posterior(post[2:3], [5], 9, 5)[0].tolist() == [2]
    for bad in (0.5, 1.0):
        with pytest.raises(ValueError):
            agreement.decide_by_posterior(post, 3, 3, 5, bad)


def test_the_newcomer_prior_is_a_proper_confusion():
    table = agreement.prior_confusion(K)
    assert table.sum(axis=1) == pytest.approx([agreement.NEWCOMER_STRENGTH] * K)
    rows = table / table.sum(axis=1, keepdims=True)
    assert np.diag(rows) == pytest.approx([agreement.NEWCOMER_ACCURACY] * K)
    assert agreement.default_priors(K).sum() == pytest.approx(1.0)
    assert list(itertools.islice(agreement.default_priors(K), K - 1, None)) == [0.05]


# --- issue 14, defect 1 under the confidence rule: no vote that cannot settle the clip ------------


@pytest.mark.django_db
def test_a_clip_no_remaining_votes_can_settle_goes_to_review_at_once():
    """2-2 at 4 of 5 votes: a fifth vote gives at best 3-2 (posterior 0.94 < 0.97), so the
    clip goes to review now instead of asking for a vote that cannot settle it."""
    campaign = confidence_campaign()
    task = vote_all(TaskFactory(campaign=campaign), [H, S, H, S], voters(campaign, 4))
    assert (task.status, task.votes_needed) == ("disputed", 3)
    # With a higher cap two more votes could still settle it: one more vote is asked.
    roomy = confidence_campaign(max_votes=6)
    task = vote_all(TaskFactory(campaign=roomy), [H, S, H, S], voters(roomy, 4))
    assert (task.status, task.votes_needed) == ("collecting", 5)


def test_best_case_confidence_and_the_stop():
    newcomer = agreement.TrustSettings().newcomer(K)
    joint = np.log(brute_posterior([(0, H), (1, S), (2, H), (3, S)], [newcomer] * 4,
                                   agreement.default_priors(K)))[None]  # fmt: skip
    one_more = agreement.best_case_confidence(joint, 1, newcomer, 1.0)[0]
    expected = brute_posterior([(0, H), (1, S), (2, H), (3, S), (4, H)], [newcomer] * 5,
                               agreement.default_priors(K))[H]  # fmt: skip
    assert one_more == pytest.approx(expected) and one_more < 0.97
    assert agreement.best_case_confidence(joint, 2, newcomer, 1.0)[0] > 0.97
    status, *_ = agreement.decide_confident(joint, 4, 3, 5, 0.97, newcomer)
    assert status[0] == agreement.DISPUTED


def test_the_stop_asks_for_a_vote_when_another_state_than_the_top_can_still_settle():
    """The stop looked only at the top state. Here the clip leans happy (0.6 against sad's
    0.35), but a newcomer's happy vote says little (they say happy on a quarter of every
    clip) while a sad vote says much: one more vote cannot settle it as happy, it can as sad."""
    newcomer = np.full((K, K), 0.1)
    newcomer[:, H] = 2.5
    newcomer[H, H] = 3.0
    newcomer[:, S] = 0.01
    newcomer[S, S] = 9.0
    newcomer /= newcomer.sum(axis=1, keepdims=True)
    post = np.full(K, 0.05 / (K - 2))
    post[H], post[S] = 0.6, 0.35
    joint = np.log(post)[None]
    assert agreement.best_case_confidence(joint, 1, newcomer, 1.0)[0] < 0.97
    best = agreement.best_reachable(joint, 1, newcomer, 1.0)[0]
    expected = post * newcomer[:, S]
    assert best == pytest.approx(expected[S] / expected.sum()) and best >= 0.97
    status, _, _, needed = agreement.decide_confident(joint, 3, 3, 4, 0.97, newcomer)
    assert (status[0], needed[0]) == (agreement.COLLECTING, 4)


def test_the_stop_margin_wants_the_best_case_clear_of_the_target():
    """H, S, H, S at 4 of 6: two more happy votes would give 0.996 (log-odds 2.0 above
    0.97's): one more vote is asked with a margin of 1, none with a margin of 3."""
    newcomer = agreement.TrustSettings().newcomer(K)
    joint = np.log(brute_posterior([(0, H), (1, S), (2, H), (3, S)], [newcomer] * 4,
                                   agreement.default_priors(K)))[None]  # fmt: skip
    for margin, status in ((0.0, agreement.COLLECTING), (1.0, agreement.COLLECTING),
                           (3.0, agreement.DISPUTED)):  # fmt: skip
        got, *_ = agreement.decide_confident(joint, 4, 3, 6, 0.97, newcomer, 1.0, margin)
        assert got[0] == status, margin


def test_clip_settleable_is_the_stop_of_the_rule():
    """The bench counts unsettleable votes with ``clip_settleable``: on every clip the rule
    leaves open below its cap it says yes, on every clip the stop sends to review no."""
    rng = np.random.default_rng(11)
    confusion = {a: np.stack([rng.dirichlet(np.ones(K) + 8 * np.eye(K)[k]) for k in range(K)])
                 for a in range(1, 7)}  # fmt: skip
    model = consensus.FittedModel(agreement.default_priors(K), confusion, scene_shift={5: -0.4})
    seen = set()
    for _ in range(300):
        n = int(rng.integers(3, 5))
        who = rng.choice(np.arange(1, 9), size=n, replace=False)  # 7 and 8 are newcomers
        answers = rng.choice([H, S, N, F], size=n)
        scene = int(rng.choice([5, 6]))
        status, *_ = consensus.confidence_decide(
            model, np.zeros(n, dtype=np.int64), who, answers, np.array([n]), np.array([3]),
            np.array([5]), 0.97, vote_scene=np.full(n, scene),
        )  # fmt: skip
        settleable = consensus.clip_settleable(
            model, annotators=who, answers=answers, scene=scene, cap=5, target=0.97
        )
        assert settleable == (int(status[0]) != agreement.DISPUTED), (who, answers)
        seen.add(int(status[0]))
    assert {agreement.TRUSTED, agreement.COLLECTING, agreement.DISPUTED} <= seen


def test_the_log_likelihood_table_matches_the_vote_by_vote_formula():
    """The joint is built from a table per voter and scene shift (few shifts), or vote by vote
    when nearly every vote has its own shift: both give the formula of the scene term."""
    rng = np.random.default_rng(5)
    conf = rng.dirichlet(np.ones(K) * 2, size=(3, K))
    priors = agreement.default_priors(K)
    for n, shifts in ((400, np.array([-0.5, 0.0, 0.3])), (5000, rng.normal(size=5000))):
        clip = rng.integers(0, 50, size=n)
        worker = rng.integers(0, 3, size=n)
        answer = rng.integers(0, K, size=n)
        shift = shifts[rng.integers(0, len(shifts), size=n)] if n == 400 else shifts
        got = agreement.tempered_log_joint(clip, worker, answer, 50, conf, priors, 1.0, shift)
        want = np.tile(np.log(priors), (50, 1))
        for c, w, a, d in zip(clip, worker, answer, shift, strict=True):
            diag = np.clip(np.diag(conf[w]), 1e-9, 1 - 1e-9)
            right = 1 / (1 + np.exp(-(np.log(diag / (1 - diag)) + d)))
            row = np.log(conf[w][:, a]) + np.log1p(-right) - np.log1p(-diag)
            row[a] = np.log(right[a])
            want[c] += np.log(conf[w][:, a]) if d == 0 else row
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


# --- the scene term ---------------------------------------------------------------------------


def test_a_scene_shift_moves_the_log_odds_of_a_right_answer():
    rng = np.random.default_rng(3)
    conf = rng.dirichlet(np.ones(K) * 2, size=(2, K))
    priors = agreement.default_priors(K)
    clip, worker, answer = np.array([0, 0, 1]), np.array([0, 1, 1]), np.array([H, S, N])
    shift = np.array([-0.7, 0.4, 0.0])
    got = agreement.tempered_log_joint(clip, worker, answer, 2, conf, priors, 1.0, shift)
    expit = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    want = np.tile(np.log(priors), (2, 1))
    for c, w, a, d in zip(clip, worker, answer, shift, strict=True):
        for k in range(K):
            right = expit(np.log(conf[w, k, k] / (1 - conf[w, k, k])) + d)
            p = right if k == a else (1 - right) * conf[w, k, a] / (1 - conf[w, k, k])
            want[c, k] += np.log(p)
    np.testing.assert_allclose(got, want)
    # Without a shift it is the plain product of likelihoods; tempering scales the votes.
    plain = agreement.tempered_log_joint(clip, worker, answer, 2, conf, priors)
    half = agreement.tempered_log_joint(clip, worker, answer, 2, conf, priors, 0.5)
    np.testing.assert_allclose(half - np.log(priors), (plain - np.log(priors)) / 2)


def test_group_shifts_find_the_harder_scene():
    # Two scenes; in scene 1 the voters answer against the (known) truth twice as often.
    post = np.eye(K)[[H] * 200]
    clip = np.repeat(np.arange(200), 3)
    group = (np.arange(200) >= 100).astype(int)
    wrong = np.where(group[clip] == 1, np.arange(600) % 2 == 0, np.arange(600) % 4 == 0)
    answer = np.where(wrong, S, H)
    shift = agreement.group_shifts(post, clip, answer, group, 2, strength=50)
    assert shift[0] > 0 > shift[1]


@pytest.mark.django_db
def test_a_campaign_is_refitted_once_its_votes_grow():
    campaign = confidence_campaign()
    users = voters(campaign, 3)
    tasks = [TaskFactory(campaign=campaign) for _ in range(70)]
    for task in tasks:
        vote_all(task, [H, H, H], users)
    assert campaign.pk in consensus.campaigns_due_refit()  # 210 votes, never fitted
    consensus.campaign_recompute(campaign_id=campaign.pk)
    assert TrustModel.objects.get(campaign=campaign).votes_at_fit == 210
    assert campaign.pk not in consensus.campaigns_due_refit()
