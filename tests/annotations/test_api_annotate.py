"""The annotator's loop through the API: next, answer, retry, skip, correct; state in the DB."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from annotations.models import Assignment, Role, Task, Vote
from clips.models import MediaStatus
from tests.factories import (
    CampaignFactory,
    ClipFactory,
    GoldTaskFactory,
    MembershipFactory,
    TaskFactory,
    UserFactory,
    VoteFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

ASSIGNMENT_KEYS = {"id", "expires_at"}
CLIP_KEYS = {"id", "video_url", "poster_url", "duration_s", "fps", "frame_count", "width", "height"}


def next_clip(client, campaign):
    return client.post(f"/api/v1/campaigns/{campaign.pk}/next/")


def answer(client, assignment_id, label="happy", **extra):
    body = {"label": label, **extra}
    return client.post(f"/api/v1/assignments/{assignment_id}/answer/", body, format="json")


def claimed_task(response) -> Task:
    return Assignment.objects.get(pk=response.json()["assignment"]["id"]).task


def test_next_hands_out_a_clip_and_shows_nothing_but_the_clip(api, alice, campaign):
    task = TaskFactory(campaign=campaign)
    response = next_clip(api(alice), campaign)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"assignment", "clip", "ahead"}
    assert body["ahead"] is None  # not asked for
    assert set(body["assignment"]) == ASSIGNMENT_KEYS
    assert set(body["clip"]) == CLIP_KEYS
    assert body["clip"]["id"] == task.clip_id
    assert urlsplit(body["clip"]["video_url"]).path.endswith(task.clip.video.name)
    assignment = Assignment.objects.get(pk=body["assignment"]["id"])
    assert (assignment.task_id, assignment.annotator, assignment.state) == (
        task.pk,
        alice,
        "active",
    )
    assert assignment.expires_at > timezone.now() + timedelta(seconds=campaign.lease_seconds - 60)
    task.refresh_from_db()
    assert task.lease_count == 1


def test_asking_again_while_holding_a_clip_returns_the_same_assignment(api, alice, campaign):
    TaskFactory.create_batch(3, campaign=campaign)
    first = next_clip(api(alice), campaign).json()
    again = next_clip(api(alice), campaign).json()
    assert again == first
    assert Assignment.objects.filter(annotator=alice).count() == 1
    assert sum(Task.objects.values_list("lease_count", flat=True)) == 1


def test_an_answer_is_stored_once_and_frees_the_slot(api, alice, campaign):
    task = TaskFactory(campaign=campaign)
    assignment_id = next_clip(api(alice), campaign).json()["assignment"]["id"]

    response = answer(api(alice), assignment_id, "sad", time_ms=1800)
    assert response.status_code == 201
    vote = response.json()
    assert (vote["label"], vote["time_ms"], vote["assignment"]) == ("sad", 1800, assignment_id)

    retried = answer(api(alice), assignment_id, "sad", time_ms=1800)
    assert retried.status_code == 200
    assert retried.json() == vote
    stored = Vote.objects.get()
    assert (stored.pk, stored.answer, stored.annotator, stored.task_id) == (
        vote["id"],
        5,
        alice,
        task.pk,
    )
    task.refresh_from_db()
    assert (task.vote_count, task.lease_count) == (1, 0)
    assert Assignment.objects.get(pk=assignment_id).state == "answered"


def test_an_answer_asks_for_the_consensus_after_commit(
    api, alice, campaign, django_capture_on_commit_callbacks
):
    TaskFactory(campaign=campaign)
    assignment_id = next_clip(api(alice), campaign).json()["assignment"]["id"]
    with django_capture_on_commit_callbacks() as callbacks:
        answer(api(alice), assignment_id, "happy")
    assert len(callbacks) == 1


def test_no_clip_is_offered_twice_to_one_annotator_and_204_when_done(api, alice, campaign):
    tasks = TaskFactory.create_batch(3, campaign=campaign)
    seen = []
    for _ in tasks:
        response = next_clip(api(alice), campaign)
        seen.append(claimed_task(response).pk)
        assert answer(api(alice), response.json()["assignment"]["id"]).status_code == 201
    assert sorted(seen) == sorted(t.pk for t in tasks)
    assert next_clip(api(alice), campaign).status_code == 204


def test_clips_with_the_most_votes_come_first(api, alice, campaign):
    fresh = TaskFactory(campaign=campaign)
    started = TaskFactory(campaign=campaign, vote_count=2)
    half = TaskFactory(campaign=campaign, vote_count=1)
    order = []
    for _ in range(3):
        response = next_clip(api(alice), campaign)
        order.append(claimed_task(response).pk)
        answer(api(alice), response.json()["assignment"]["id"])
    assert order == [started.pk, half.pk, fresh.pk]


def test_a_clip_never_has_more_annotators_than_it_needs(api, alice, bob, campaign):
    campaign.votes_per_clip = 1
    campaign.save()
    only = TaskFactory(campaign=campaign, votes_needed=1)
    assert claimed_task(next_clip(api(alice), campaign)) == only
    assert next_clip(api(bob), campaign).status_code == 204  # alice holds its only slot


def test_a_clip_already_voted_on_by_the_annotator_is_not_offered(api, alice, campaign):
    task = TaskFactory(campaign=campaign)
    VoteFactory(task=task, annotator=alice)
    assert next_clip(api(alice), campaign).status_code == 204


def test_settled_clips_and_clips_not_ready_are_never_offered(api, alice, campaign):
    for status in ["trusted", "discarded", "disputed", "adjudicated"]:
        TaskFactory(campaign=campaign, status=status, label=3)
    TaskFactory(
        campaign=campaign, clip=ClipFactory(status=MediaStatus.PENDING, video="", poster="")
    )
    TaskFactory(campaign=campaign, vote_count=3)  # all votes in, consensus not yet computed
    assert next_clip(api(alice), campaign).status_code == 204


def test_a_clip_asking_for_another_vote_is_offered_again(api, alice, campaign):
    task = TaskFactory(campaign=campaign, vote_count=3, votes_needed=4)  # a split, one more
    assert claimed_task(next_clip(api(alice), campaign)) == task


def test_skip_releases_the_clip_and_it_is_not_offered_again(api, alice, bob, campaign):
    campaign.votes_per_clip = 1
    campaign.save()
    task = TaskFactory(campaign=campaign, votes_needed=1)
    assignment_id = next_clip(api(alice), campaign).json()["assignment"]["id"]

    response = api(alice).post(f"/api/v1/assignments/{assignment_id}/skip/")
    assert response.status_code == 204
    assert api(alice).post(f"/api/v1/assignments/{assignment_id}/skip/").status_code == 204
    task.refresh_from_db()
    assert task.lease_count == 0
    assert Assignment.objects.get(pk=assignment_id).state == "skipped"
    assert next_clip(api(alice), campaign).status_code == 204
    assert claimed_task(next_clip(api(bob), campaign)) == task

    refused = answer(api(alice), assignment_id)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "skipped"
    assert not Vote.objects.filter(annotator=alice).exists()


def test_an_answered_clip_cannot_be_skipped(api, alice, campaign):
    TaskFactory(campaign=campaign)
    assignment_id = next_clip(api(alice), campaign).json()["assignment"]["id"]
    answer(api(alice), assignment_id)
    response = api(alice).post(f"/api/v1/assignments/{assignment_id}/skip/")
    assert response.status_code == 409
    assert Assignment.objects.get(pk=assignment_id).state == "answered"


def test_an_expired_lease_goes_to_someone_else_and_a_late_answer_is_kept(api, alice, bob, campaign):
    campaign.votes_per_clip = 1
    campaign.save()
    task = TaskFactory(campaign=campaign, votes_needed=1)
    late_id = next_clip(api(alice), campaign).json()["assignment"]["id"]
    Assignment.objects.filter(pk=late_id).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert claimed_task(next_clip(api(bob), campaign)) == task  # no periodic job needed
    assert Assignment.objects.get(pk=late_id).state == "expired"
    task.refresh_from_db()
    assert task.lease_count == 1  # bob's lease only

    response = answer(api(alice), late_id, "fear")
    assert response.status_code == 201
    assert Vote.objects.get(annotator=alice).answer == 2
    task.refresh_from_db()
    assert (task.vote_count, task.lease_count) == (1, 1)
    assert next_clip(api(alice), campaign).status_code == 204  # never the same clip again


def test_an_expired_lease_of_the_asker_is_replaced_by_a_new_clip(api, alice, campaign):
    first, second = TaskFactory.create_batch(2, campaign=campaign)
    held = next_clip(api(alice), campaign).json()["assignment"]["id"]
    Assignment.objects.filter(pk=held).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = next_clip(api(alice), campaign)
    assert response.json()["assignment"]["id"] != held
    assert {first.pk, second.pk} == {
        claimed_task(response).pk,
        Assignment.objects.get(pk=held).task_id,
    }
    assert sorted(Task.objects.values_list("lease_count", flat=True)) == [0, 1]


def test_answer_and_next_in_one_round_trip(api, alice, campaign):
    TaskFactory.create_batch(2, campaign=campaign)
    first = next_clip(api(alice), campaign).json()["assignment"]["id"]
    url = f"/api/v1/assignments/{first}/answer-and-next/"

    response = api(alice).post(url, {"label": "neutral"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["vote"]["label"] == "neutral"
    second = body["next"]["assignment"]["id"]
    assert second != first

    retried = api(alice).post(url, {"label": "neutral"}, format="json")
    assert retried.status_code == 200
    assert retried.json()["next"]["assignment"]["id"] == second  # no second slot taken
    assert Vote.objects.count() == 1
    assert Assignment.objects.filter(annotator=alice).count() == 2

    last = api(alice).post(
        f"/api/v1/assignments/{second}/answer-and-next/", {"label": "pass"}, format="json"
    )
    assert last.status_code == 201
    assert last.json()["next"] is None
    assert sorted(Vote.objects.values_list("answer", flat=True)) == [4, 7]


def test_the_last_answer_can_be_corrected_within_the_window(api, alice, campaign, settings):
    TaskFactory.create_batch(2, campaign=campaign)
    first = next_clip(api(alice), campaign).json()["assignment"]["id"]
    answer(api(alice), first, "happy")

    shown = api(alice).get(f"/api/v1/campaigns/{campaign.pk}/last-answer/").json()
    assert shown["assignment"]["id"] == first
    assert shown["vote"]["label"] == "happy"
    assert set(shown["clip"]) == CLIP_KEYS

    corrected = answer(api(alice), first, "surprise")
    assert corrected.status_code == 200
    assert corrected.json()["label"] == "surprise"
    assert list(Vote.objects.values_list("answer", flat=True)) == [6]
    task = Assignment.objects.get(pk=first).task
    task.refresh_from_db()
    assert task.vote_count == 1  # a correction changes the answer, not the count

    # A trusted label does not close the correction (that would tell what the others voted).
    Task.objects.filter(pk=task.pk).update(status="trusted", label=6)
    assert answer(api(alice), first, "sad").status_code == 200
    assert answer(api(alice), first, "surprise").status_code == 200

    # The window closes by time only.
    window = settings.CORRECTION_WINDOW_SECONDS
    Vote.objects.update(created_at=timezone.now() - timedelta(seconds=window + 5))
    refused = answer(api(alice), first, "sad")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "answer_final"
    assert answer(api(alice), first, "surprise").status_code == 200  # a retry is still fine
    assert list(Vote.objects.values_list("answer", flat=True)) == [6]


def test_corrections_do_not_reveal_the_other_votes(
    api, django_capture_on_commit_callbacks, fast_password_hasher
):
    """Issue 16: with votes sad and happy, the third annotator tried labels until one was
    refused, learning that someone voted sad and that the clip had become trusted."""
    campaign = CampaignFactory(votes_per_clip=3, max_votes=3, min_agreement=0.6)
    task = TaskFactory(campaign=campaign)
    voters = [UserFactory(username=name) for name in ("ann", "ben", "cat")]
    for user in voters:
        MembershipFactory(campaign=campaign, user=user, role=Role.ANNOTATOR)
    assignments = []
    for user, label in zip(voters, ["sad", "happy", "angry"], strict=True):
        with django_capture_on_commit_callbacks(execute=True):
            assignment = next_clip(api(user), campaign).json()["assignment"]["id"]
            assert answer(api(user), assignment, label).status_code == 201
        assignments.append(assignment)
    assert Task.objects.get(pk=task.pk).status != "trusted"

    cat, mine = voters[2], assignments[2]
    seen = {}
    for label in ["fear", "disgust", "sad", "angry"]:
        with django_capture_on_commit_callbacks(execute=True):
            response = answer(api(cat), mine, label)
        seen[label] = (response.status_code, response.json())
        if label == "sad":
            assert Task.objects.get(pk=task.pk).status == "trusted"  # the state changed...
    # ... but every answer looked the same: the vote, changed.
    assert {label: status for label, (status, _) in seen.items()} == dict.fromkeys(seen, 200)
    assert all(
        set(body)
        == {"id", "assignment", "label", "time_ms", "created_at", "updated_at", "feedback"}
        for _, body in seen.values()
    )
    assert all(body["feedback"] is None for _, body in seen.values())
    stored = Task.objects.get(pk=task.pk)
    assert sorted(Vote.objects.filter(task=task).values_list("answer", flat=True)) == [0, 3, 5]
    assert stored.vote_count == 3 and sum(stored.counts) == 3  # none lost, none counted twice
    assert stored.status != "trusted"  # the consensus follows the corrected votes


def test_only_the_most_recent_answer_can_be_corrected(api, alice, campaign):
    TaskFactory.create_batch(2, campaign=campaign)
    first = next_clip(api(alice), campaign).json()["assignment"]["id"]
    answer(api(alice), first, "happy")
    second = next_clip(api(alice), campaign).json()["assignment"]["id"]
    answer(api(alice), second, "angry")

    refused = answer(api(alice), first, "sad")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "not_last_answer"
    assert sorted(Vote.objects.values_list("answer", flat=True)) == [0, 3]


def test_last_answer_is_204_before_any_answer(api, alice, campaign):
    assert api(alice).get(f"/api/v1/campaigns/{campaign.pk}/last-answer/").status_code == 204


def test_an_assignment_of_someone_else_is_not_found_and_untouched(api, alice, bob, campaign):
    TaskFactory(campaign=campaign)
    assignment_id = next_clip(api(alice), campaign).json()["assignment"]["id"]
    for path in ["answer", "answer-and-next"]:
        response = api(bob).post(
            f"/api/v1/assignments/{assignment_id}/{path}/", {"label": "happy"}, format="json"
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert api(bob).post(f"/api/v1/assignments/{assignment_id}/skip/").status_code == 404
    assert not Vote.objects.exists()
    assert Assignment.objects.get(pk=assignment_id).state == "active"


def test_a_member_removed_from_the_campaign_can_no_longer_answer(api, alice, campaign):
    TaskFactory(campaign=campaign)
    assignment_id = next_clip(api(alice), campaign).json()["assignment"]["id"]
    alice.memberships.all().delete()
    assert answer(api(alice), assignment_id).status_code == 404
    assert not Vote.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label": "contempt"}, "label"),
        ({"label": "Happy "}, "label"),
        ({"label": 3}, "label"),
        ({}, "label"),
        ({"label": "happy", "time_ms": -1}, "time_ms"),
        ({"label": "happy", "time_ms": "soon"}, "time_ms"),
        ({"label": "happy", "time_ms": 24 * 3600 * 1000 + 1}, "time_ms"),
        ({"label": "happy", "time_ms": True}, "time_ms"),
        ({"label": ["happy"]}, "label"),
        (["happy"], None),
        ("happy", None),
    ],
)
def test_malformed_answers_are_refused_with_a_message(api, alice, campaign, body, field):
    TaskFactory(campaign=campaign)
    assignment_id = next_clip(api(alice), campaign).json()["assignment"]["id"]
    response = api(alice).post(f"/api/v1/assignments/{assignment_id}/answer/", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] in {"invalid", "parse_error"}
    assert error["message"]
    if field:
        assert error["message"].startswith(field)
    assert not Vote.objects.exists()


def test_a_body_that_is_not_json_is_refused(api, alice, campaign):
    TaskFactory(campaign=campaign)
    assignment_id = next_clip(api(alice), campaign).json()["assignment"]["id"]
    url = f"/api/v1/assignments/{assignment_id}/answer/"
    broken = api(alice).post(url, "{label: happy", content_type="application/json")
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "parse_error"
    form = api(alice).post(url, {"label": "happy"}, format="multipart")
    assert form.status_code == 415
    assert form.json()["error"]["message"]
    assert not Vote.objects.exists()


@pytest.mark.parametrize("assignment_id", ["0", "-3", "999999", "99999999999999999999999"])
def test_unknown_assignment_ids_are_404(api, alice, assignment_id):
    for path in ["answer", "answer-and-next", "skip"]:
        response = api(alice).post(
            f"/api/v1/assignments/{assignment_id}/{path}/", {"label": "happy"}, format="json"
        )
        assert response.status_code == 404
        assert response.json()["error"]["message"]


def test_gold_clips_are_served_beyond_their_need_and_look_like_any_clip(api, alice, bob, campaign):
    campaign.gold_share = 1.0
    campaign.votes_per_clip = 1
    campaign.save()
    gold = GoldTaskFactory(campaign=campaign, votes_needed=1)
    TaskFactory(campaign=campaign, votes_needed=1)
    for annotator in (alice, bob):
        response = next_clip(api(annotator), campaign)
        body = response.json()
        assert set(body) == {"assignment", "clip", "ahead"} and set(body["clip"]) == CLIP_KEYS
        assert claimed_task(response) == gold
        assert answer(api(annotator), body["assignment"]["id"], "sad").status_code == 201
    gold.refresh_from_db()
    assert (gold.lease_count, gold.is_gold, gold.gold_label) == (0, True, 3)
    assert Vote.objects.filter(task=gold).count() == 2
    # With the gold seen, the stream goes on with real work.
    assert claimed_task(next_clip(api(alice), campaign)) != gold


def test_gold_keeps_close_to_the_campaign_share_of_each_stream(api, alice, campaign):
    campaign.gold_share = 0.1
    campaign.save()
    gold_ids = {t.pk for t in GoldTaskFactory.create_batch(15, campaign=campaign)}
    TaskFactory.create_batch(60, campaign=campaign)
    stream = []
    for _ in range(60):
        response = next_clip(api(alice), campaign)
        stream.append(claimed_task(response).pk in gold_ids)
        answer(api(alice), response.json()["assignment"]["id"])
        # After every clip, the gold so far is within one clip of its share.
        assert abs(sum(stream) - 0.1 * len(stream)) <= 1.0 + 1e-9
    assert 5 <= sum(stream) <= 7


@pytest.mark.parametrize(
    ("body", "time_ms"),
    [
        ({"label": "sad", "time_ms": 1200}, 1200),
        ({"label": "sad", "time_ms": "1200"}, 1200),  # a number sent as text, as DRF allows
        ({"label": "sad", "time_ms": None}, None),
        ({"label": "sad"}, None),
    ],
)
def test_an_answer_is_stored_with_its_time_however_the_number_comes(
    api, alice, campaign, body, time_ms
):
    TaskFactory(campaign=campaign)
    assignment_id = next_clip(api(alice), campaign).json()["assignment"]["id"]
    response = api(alice).post(f"/api/v1/assignments/{assignment_id}/answer/", body, format="json")
    assert response.status_code == 201
    vote = Vote.objects.get()
    assert (vote.answer, vote.time_ms) == (5, time_ms)
    assert response.json()["time_ms"] == time_ms
