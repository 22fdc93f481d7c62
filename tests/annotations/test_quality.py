"""Annotators stopped and reinstated: the gold evidence, the pause, the record, the tail."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from annotations import agreement
from annotations.batches import batches_close_idle
from annotations.models import AnnotatorPause, Assignment, GoldBatch, Membership, Task, Vote
from tests.factories import GoldTaskFactory, TaskFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def next_clip(client, campaign):
    return client.post(f"/api/v1/campaigns/{campaign.pk}/next/")


def answer_next(client, assignment_id, label):
    with _capture(execute=True):
        return client.post(
            f"/api/v1/assignments/{assignment_id}/answer-and-next/", {"label": label}, format="json"
        )


def spam(api, user, campaign, rounds):
    """Answer every clip "sad" (gold clips are "happy"); return the last response."""
    client = api(user)
    response = next_clip(client, campaign)
    for _ in range(rounds):
        if response.status_code not in (200, 201):
            return response
        body = response.json()
        offer = body if "assignment" in body else body["next"]
        if offer is None:
            return response
        response = answer_next(client, offer["assignment"]["id"], "sad")
    return response


@pytest.fixture(autouse=True)
def run_consensus(django_capture_on_commit_callbacks):
    """Run each vote's consensus message (eager) after its request, as a worker would."""
    global _capture
    _capture = django_capture_on_commit_callbacks
    yield
    _capture = None


_capture = None


@pytest.fixture
def spam_campaign(campaign):
    campaign.gold_share = 0.5
    campaign.batch_size = 100
    campaign.save()
    GoldTaskFactory.create_batch(12, campaign=campaign)  # gold_label happy
    TaskFactory.create_batch(20, campaign=campaign)
    return campaign


def test_an_annotator_confidently_below_the_line_is_paused_at_once(api, alice, rita, spam_campaign):
    campaign = spam_campaign
    response = spam(api, alice, campaign, 30)
    # Six wrong gold answers (P(accuracy < 0.4) = 0.972) stop the stream, long before a full
    # batch of 100 answers would have been scored.
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "annotator_paused"
    assert "paused" in error["message"] and "check clips" in error["message"]
    # The answer that came with the request is stored all the same.
    answered = Vote.objects.filter(annotator=alice).count()
    assert answered < 30
    assert next_clip(api(alice), campaign).status_code == 403
    member = Membership.objects.get(campaign=campaign, user=alice)
    assert member.paused_at is not None
    (pause,) = AnnotatorPause.objects.filter(campaign=campaign, annotator=alice)
    assert (pause.action, pause.by, pause.batch.verdict) == ("pause", None, "unacceptable")
    # The partial batch was scored: every vote is in a batch and none counts any more.
    assert not Vote.objects.filter(annotator=alice, batch__isnull=True).exists()
    assert not Vote.objects.filter(annotator=alice, is_valid=True).exists()
    # The paused annotator holds no clip.
    assert not Assignment.objects.filter(annotator=alice, state="active").exists()
    assert sum(Task.objects.values_list("lease_count", flat=True)) == 0


def test_a_reviewer_reinstates_and_every_action_is_recorded(api, alice, bob, rita, spam_campaign):
    campaign = spam_campaign
    assert spam(api, alice, campaign, 30).status_code == 403
    url = f"/api/v1/campaigns/{campaign.pk}/annotators/alice/reinstate/"
    assert api(bob).post(url, {}, format="json").status_code == 403  # annotators cannot
    response = api(rita).post(url, {"note": "talked to her"}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "username": "alice", "paused": False, "paused_at": None, "pause_reason": "",
    }  # fmt: skip
    # Reinstating someone not paused is a conflict; an unknown member is not found.
    again = api(rita).post(url, {}, format="json")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_paused")
    missing = f"/api/v1/campaigns/{campaign.pk}/annotators/nobody/reinstate/"
    assert api(rita).post(missing, {}, format="json").status_code == 404
    # The evidence starts afresh: alice works again.
    assert next_clip(api(alice), campaign).status_code == 200
    history = api(rita).get(f"/api/v1/campaigns/{campaign.pk}/pauses/").json()
    assert [(h["action"], h["by"], h["annotator"]) for h in history] == [
        ("reinstate", "rita", "alice"),
        ("pause", None, "alice"),
    ]
    assert history[0]["reason"] == "talked to her" and history[1]["batch"] is not None


def test_a_good_annotator_is_not_paused_on_a_few_misses(api, alice, spam_campaign):
    campaign = spam_campaign
    client = api(alice)
    response = next_clip(client, campaign)
    gold_seen = 0
    for _ in range(24):
        offer = response.json() if "assignment" in response.json() else response.json()["next"]
        if offer is None:
            break
        task = Assignment.objects.get(pk=offer["assignment"]["id"]).task
        # Right on 2 of every 3 gold clips (about the accuracy of a good annotator on hard
        # clips): never confidently below 0.4.
        label = "happy" if not task.is_gold or gold_seen % 3 else "sad"
        gold_seen += task.is_gold
        response = answer_next(client, offer["assignment"]["id"], label)
        assert response.status_code == 201
    assert Membership.objects.get(campaign=campaign, user=alice).paused_at is None


def test_an_idle_annotators_last_partial_batch_is_scored(alice, campaign):
    campaign.batch_size = 100
    campaign.save()
    tasks = TaskFactory.create_batch(4, campaign=campaign)
    gold = GoldTaskFactory(campaign=campaign)
    for task in [*tasks, gold]:
        Vote.objects.create(task=task, campaign=campaign, annotator=alice, answer=3)
    assert batches_close_idle() == 0  # just answered: not idle
    Vote.objects.filter(annotator=alice).update(created_at=timezone.now() - timedelta(hours=1))
    assert batches_close_idle() == 1
    (batch,) = GoldBatch.objects.filter(annotator=alice)
    assert (batch.size, batch.gold_total, batch.gold_correct, batch.verdict) == (5, 1, 1, "accept")
    assert not Vote.objects.filter(annotator=alice, batch__isnull=True).exists()
    assert batches_close_idle() == 0


@pytest.mark.parametrize(("correct", "total"), [(0, 0), (0, 5), (3, 5), (17, 20), (40, 100)])
@pytest.mark.parametrize("line", [0.4, 0.8])
def test_accuracy_below_is_the_beta_posterior_cdf(correct, total, line):
    grid = np.linspace(0, 1, 200_001)
    density = grid**correct * (1 - grid) ** (total - correct)
    expected = np.trapezoid(density[grid < line], grid[grid < line]) / np.trapezoid(density, grid)
    assert agreement.accuracy_below(correct, total, line) == pytest.approx(expected, abs=1e-4)


def test_the_verdict_needs_strong_evidence():
    assert agreement.score_annotator(3, 5) == "accept"  # 60 % on 5 clips is not evidence
    assert agreement.score_annotator(0, 5) == "improper"
    assert agreement.score_annotator(0, 6) == "unacceptable"
    assert agreement.score_annotator(0, 0) == "accept"
    assert agreement.score_annotator(14, 20) == "accept"  # 70 %: P(acc < 0.8) = 0.87
    assert agreement.score_annotator(26, 40) == "improper"  # 65 % on 40 clips: 0.99
    assert agreement.accuracy_below(0, 0, 0.0) == 0.0 and agreement.accuracy_below(1, 1, 1) == 1
    with pytest.raises(ValueError):
        agreement.accuracy_below(3, 2, 0.5)
    with pytest.raises(ValueError):
        agreement.score_annotator(1, 2, confidence=1.0)
