"""A clip held ahead for preloading (`ahead=1`): the annotator holds at most two, in order."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.models import Assignment, Task, Vote
from tests.factories import GoldTaskFactory, TaskFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def next_ahead(client, campaign):
    return client.post(f"/api/v1/campaigns/{campaign.pk}/next/?ahead=1")


def answer_next(client, assignment_id, label="happy"):
    url = f"/api/v1/assignments/{assignment_id}/answer-and-next/?ahead=1"
    return client.post(url, {"label": label}, format="json")


def ids(body) -> tuple[int, int | None]:
    ahead = body["ahead"]
    return body["assignment"]["id"], None if ahead is None else ahead["assignment"]["id"]


def active(user) -> list[tuple[int, bool]]:
    rows = Assignment.objects.filter(annotator=user, state="active").order_by("ahead", "id")
    return list(rows.values_list("id", "ahead"))


def test_ahead_holds_a_second_clip_and_asking_again_returns_the_same_two(api, alice, campaign):
    TaskFactory.create_batch(4, campaign=campaign)
    body = next_ahead(api(alice), campaign).json()
    current, ahead = ids(body)
    assert ahead is not None and ahead != current
    assert body["ahead"]["clip"]["id"] != body["clip"]["id"]
    assert "ahead" not in body["ahead"]  # never nested further
    assert ids(next_ahead(api(alice), campaign).json()) == (current, ahead)
    assert active(alice) == [(current, False), (ahead, True)]
    assert sum(Task.objects.values_list("lease_count", flat=True)) == 2
    # Without ahead=1 the current clip alone comes back; the one ahead stays held.
    plain = api(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/").json()
    assert (plain["assignment"]["id"], plain["ahead"]) == (current, None)
    assert len(active(alice)) == 2


def test_answering_the_current_clip_makes_the_one_ahead_current(api, alice, campaign):
    TaskFactory.create_batch(3, campaign=campaign)
    first, second = ids(next_ahead(api(alice), campaign).json())
    response = answer_next(api(alice), first)
    assert response.status_code == 201
    now, third = ids(response.json()["next"])
    assert now == second and third not in (None, first, second)
    assert active(alice) == [(second, False), (third, True)]
    # The last clips: the one ahead runs out before the current one does.
    now, ahead = ids(answer_next(api(alice), second).json()["next"])
    assert (now, ahead) == (third, None)
    assert answer_next(api(alice), third).json()["next"] is None
    assert Vote.objects.filter(annotator=alice).count() == 3
    assert active(alice) == []
    assert set(Task.objects.values_list("lease_count", flat=True)) == {0}


def test_a_skip_or_an_expiry_of_the_current_clip_brings_the_one_ahead(api, alice, campaign):
    TaskFactory.create_batch(4, campaign=campaign)
    first, second = ids(next_ahead(api(alice), campaign).json())
    assert api(alice).post(f"/api/v1/assignments/{first}/skip/").status_code == 204
    now, third = ids(next_ahead(api(alice), campaign).json())
    assert now == second and third not in (first, second)
    Assignment.objects.filter(pk=second).update(expires_at=timezone.now() - timedelta(seconds=1))
    now, fourth = ids(next_ahead(api(alice), campaign).json())
    assert now == third and fourth not in (first, second, third)
    assert Assignment.objects.get(pk=second).state == "expired"
    assert active(alice) == [(third, False), (fourth, True)]


def test_an_expired_clip_ahead_is_replaced_and_gives_its_slot_back(api, alice, campaign):
    tasks = TaskFactory.create_batch(3, campaign=campaign)
    first, second = ids(next_ahead(api(alice), campaign).json())
    Assignment.objects.filter(pk=second).update(expires_at=timezone.now() - timedelta(seconds=1))
    now, replaced = ids(next_ahead(api(alice), campaign).json())
    assert now == first and replaced not in (first, second)
    assert Assignment.objects.get(pk=second).state == "expired"
    leases = {t.pk: Task.objects.get(pk=t.pk).lease_count for t in tasks}
    assert sorted(leases.values()) == [0, 1, 1]


def test_an_answer_to_the_clip_ahead_is_stored_like_any_other(api, alice, campaign):
    TaskFactory.create_batch(3, campaign=campaign)
    first, second = ids(next_ahead(api(alice), campaign).json())
    # Answers sent out of order (a browser catching up) are each stored once.
    assert answer_next(api(alice), second).status_code == 201
    assert answer_next(api(alice), first).status_code == 201
    assert set(Vote.objects.values_list("assignment_id", flat=True)) == {first, second}
    current, ahead = ids(next_ahead(api(alice), campaign).json())
    assert current not in (first, second) and ahead is None  # one clip was left
    assert active(alice) == [(current, False)]


@pytest.mark.parametrize("value", ["maybe", "2", "yes please"])
def test_a_malformed_ahead_is_refused_with_a_message(api, alice, campaign, value):
    TaskFactory(campaign=campaign)
    response = api(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/?ahead={value}")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["ahead"]
    assert not Assignment.objects.exists()


def test_gold_keeps_its_share_when_a_clip_is_held_ahead(api, alice, campaign):
    campaign.gold_share = 0.5  # clips held ahead count as served, so the share holds
    campaign.save()
    gold_ids = {t.pk for t in GoldTaskFactory.create_batch(30, campaign=campaign)}
    TaskFactory.create_batch(40, campaign=campaign)
    body = next_ahead(api(alice), campaign).json()
    stream = []
    for _ in range(40):
        stream.append(Assignment.objects.get(pk=body["assignment"]["id"]).task_id in gold_ids)
        # Handed out so far: the clips answered plus the one on screen and the one ahead.
        handed = Assignment.objects.filter(annotator=alice)
        gold = handed.filter(task_id__in=gold_ids).count()
        assert abs(gold - 0.5 * handed.count()) <= 1.0 + 1e-9, (gold, handed.count())
        body = answer_next(api(alice), body["assignment"]["id"]).json()["next"]
    assert 18 <= sum(stream) <= 22


def _statements(client, assignment_id):
    """answer_next, and the SQL it ran."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = answer_next(client, assignment_id)
    return response, " ".join(q["sql"] for q in captured.captured_queries)


def test_the_answer_claims_the_clip_ahead_in_its_own_statement(api, alice, campaign):
    """answer-and-next/?ahead=1 in its usual case: the answer's statement also takes the next
    clip ahead (its slot, its lease, the member's count), and no separate claim runs."""
    from django.db import connection

    from annotations.models import Membership

    campaign.gold_share = 0
    campaign.save()
    TaskFactory.create_batch(5, campaign=campaign)
    first, second = ids(next_ahead(api(alice), campaign).json())
    served = Membership.objects.get(user=alice).served
    response, sql = _statements(api(alice), first)
    assert response.status_code == 201
    now, third = ids(response.json()["next"])
    assert now == second and third not in (None, first, second)
    if connection.vendor == "postgresql":
        assert "lsf_answer_claim_next" in sql and "lsf_claim" not in sql.replace("_claim_", "")
    lease = Assignment.objects.get(pk=third)
    assert (lease.state, lease.ahead, lease.holds_slot, lease.annotator_id) == (
        "active", True, True, alice.pk,
    )  # fmt: skip
    assert lease.expires_at > timezone.now() + timedelta(seconds=campaign.lease_seconds - 60)
    assert active(alice) == [(second, False), (third, True)]
    assert Membership.objects.get(user=alice).served == served + 1
    # Slots: the answered clip's lease gave its slot back, the two held clips hold one each.
    assert sorted(Task.objects.values_list("lease_count", flat=True)) == [0, 0, 0, 1, 1]
    assert Task.objects.get(assignments=first).vote_count == 1


@pytest.mark.parametrize("why", ["campaign_paused", "annotator_paused", "quota_reached"])
def test_a_refused_next_clip_leaves_no_clip_held_ahead(api, alice, campaign, why):
    """The answer is stored; when no next clip may be handed, the statement claims none."""
    from annotations.models import Membership

    TaskFactory.create_batch(5, campaign=campaign)
    first, second = ids(next_ahead(api(alice), campaign).json())
    if why == "campaign_paused":
        campaign.state = "paused"
        campaign.save()
    elif why == "annotator_paused":
        Membership.objects.filter(user=alice).update(paused_at=timezone.now())
    else:
        Membership.objects.filter(user=alice).update(daily_quota=1)
    response = answer_next(api(alice), first)
    assert response.status_code in (403, 409)
    assert response.json()["error"]["code"] == why
    assert Vote.objects.filter(annotator=alice, assignment_id=first).exists()
    assert active(alice) == [(second, False)]
    assert sorted(Task.objects.values_list("lease_count", flat=True)) == [0, 0, 0, 0, 1]


def test_with_gold_due_the_clip_ahead_is_gold(api, alice, campaign):
    """The statement claims only an ordinary clip; gold due by the same draw is claimed after."""
    campaign.gold_share = 1.0
    campaign.save()
    gold = {t.pk for t in GoldTaskFactory.create_batch(6, campaign=campaign)}
    TaskFactory.create_batch(4, campaign=campaign)
    body = next_ahead(api(alice), campaign).json()
    for _ in range(4):
        body = answer_next(api(alice), body["assignment"]["id"]).json()["next"]
        assert Assignment.objects.get(pk=body["ahead"]["assignment"]["id"]).task_id in gold
