"""Qualification before real work (issue 14): a newcomer's first clips are gold, with the right
answer shown after each, and real clips come only after passing the campaign's line."""

import pytest

from annotations import agreement
from annotations.models import AnnotatorPause, Membership, Vote
from tests.factories import GoldTaskFactory, TaskFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


@pytest.fixture(autouse=True)
def run_consensus(django_capture_on_commit_callbacks):
    global _capture
    _capture = django_capture_on_commit_callbacks
    yield


_capture = None


@pytest.fixture
def qualifying(campaign):
    campaign.qualification_clips = 10
    campaign.gold_share = 0.05
    campaign.save()
    GoldTaskFactory.create_batch(14, campaign=campaign)  # gold_label happy
    TaskFactory.create_batch(5, campaign=campaign)
    return campaign


def work(client, campaign, labels, rounds):
    """Answer ``rounds`` clips with ``labels`` (one label, or one per clip); return the
    responses."""
    labels = [labels] * rounds if isinstance(labels, str) else labels
    responses = [client.post(f"/api/v1/campaigns/{campaign.pk}/next/")]
    for label in labels[:rounds]:
        offer = responses[-1].json()
        offer = offer if "assignment" in offer else offer["next"]
        with _capture(execute=True):
            responses.append(
                client.post(
                    f"/api/v1/assignments/{offer['assignment']['id']}/answer-and-next/",
                    {"label": label},
                    format="json",
                )
            )
        if responses[-1].status_code != 201:
            break
    return responses


def test_a_newcomer_answers_gold_with_feedback_first_then_real_clips(api, qualifying, alice):
    client = api(alice)
    responses = work(client, qualifying, "happy", 11)
    assert [r.status_code for r in responses] == [200] + [201] * 11
    votes = list(Vote.objects.filter(annotator=alice).order_by("id"))
    # The first ten clips are gold; each answer says the right answer.
    assert [v.task.is_gold for v in votes[:10]] == [True] * 10
    first = responses[1].json()["vote"]["feedback"]
    assert first == {
        "correct": True,
        "right_answer": "happy",
        "qualification": {"answered": 1, "right": 1, "clips": 10, "state": "qualifying"},
    }
    # The tenth answer says the qualification is passed: real clips come next.
    tenth = responses[10].json()["vote"]["feedback"]["qualification"]
    assert tenth == {"answered": 10, "right": 10, "clips": 10, "state": "qualified"}
    # Ten right: qualified, and the next clip is a real one, without feedback.
    member = Membership.objects.get(campaign=qualifying, user=alice)
    assert member.qualified_at is not None
    assert not votes[10].task.is_gold
    assert responses[11].json()["vote"]["feedback"] is None


def test_failing_the_qualification_pauses_with_the_reason(api, qualifying, alice):
    client = api(alice)
    # 3 of 10 right is neither a pass nor a fail: more gold clips are asked; 3 of 14 gives
    # P(accuracy < 0.4) = 0.91 >= 0.9: failed (the continuous check, at 0.97, has not fired).
    responses = work(client, qualifying, ["happy"] * 3 + ["sad"] * 11, 14)
    wrong = responses[4].json()["vote"]["feedback"]
    assert (wrong["correct"], wrong["right_answer"]) == (False, "happy")
    assert wrong["qualification"] == {
        "answered": 4, "right": 3, "clips": 10, "state": "qualifying"
    }  # fmt: skip
    # 3 of 10 is neither a pass nor a fail: the tenth answer says more clips come.
    assert responses[10].json()["vote"]["feedback"]["qualification"]["state"] == "qualifying"
    last = responses[-1]
    assert last.status_code == 403 and last.json()["error"]["code"] == "annotator_paused"
    assert "3 of your 14 qualification clips" in last.json()["error"]["message"]
    assert Vote.objects.filter(annotator=alice).count() == 14
    assert not Vote.objects.filter(annotator=alice, task__is_gold=False).exists()
    pause = AnnotatorPause.objects.get(campaign=qualifying, annotator=alice)
    assert pause.action == "pause" and "qualification" in pause.reason
    refused = client.post(f"/api/v1/campaigns/{qualifying.pk}/next/")
    assert refused.status_code == 403


def test_no_gold_left_means_nothing_to_qualify_on(api, campaign, alice):
    campaign.qualification_clips = 10
    campaign.save()
    TaskFactory.create_batch(2, campaign=campaign)
    response = api(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/")
    assert response.status_code == 200
    assert Membership.objects.get(campaign=campaign, user=alice).qualified_at is not None


@pytest.mark.parametrize(
    ("correct", "total", "state"),
    [
        (9, 9, agreement.QUALIFYING),  # before the 10th clip
        (1, 10, agreement.NOT_QUALIFIED),  # P(acc < 0.4) = 0.97
        (2, 10, agreement.QUALIFYING),  # 0.88: in between, another gold clip
        (3, 10, agreement.QUALIFYING),  # 0.70
        (4, 10, agreement.QUALIFIED),  # 0.47: more likely above the line than below
        (3, 14, agreement.NOT_QUALIFIED),  # 0.91
        (5, 20, agreement.NOT_QUALIFIED),  # 0.90
        (6, 20, agreement.QUALIFIED),  # 0.80, at twice the clips: the benefit of the doubt
    ],
)
def test_qualification_state(correct, total, state):
    assert agreement.qualification_state(correct, total, clips=10) == state


def test_the_default_campaign_asks_ten_qualification_clips():
    from annotations.models import Campaign

    assert Campaign(name="x").qualification_clips == 10


def test_the_workspace_page_brings_the_qualification_so_far(client, qualifying, alice):
    """The annotate page carries the newcomer's progress (shown before the first answer), and
    nothing once they passed."""
    import json
    import re

    from django.utils import timezone

    client.force_login(alice)
    page = client.get(f"/campaigns/{qualifying.pk}/annotate/").content.decode()
    data = re.search(
        r'<script id="qualification-data" type="application/json">(.*?)</script>', page
    )
    assert json.loads(data.group(1)) == {
        "answered": 0, "right": 0, "clips": 10, "state": "qualifying"
    }  # fmt: skip
    Membership.objects.filter(campaign=qualifying, user=alice).update(qualified_at=timezone.now())
    page = client.get(f"/campaigns/{qualifying.pk}/annotate/").content.decode()
    assert "qualification-data" not in page
