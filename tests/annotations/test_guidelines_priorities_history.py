"""Guidelines (safe Markdown, example clips), scene priority in the claim, daily quotas and
progress over time, through the API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.models import AuditEntry, Campaign, Membership, Task, Vote
from clips.models import Scene
from tests.factories import ClipFactory, TaskFactory, UserFactory, VoteFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

XSS = (
    "# Look at the face\n\n<script>alert('x')</script>\n\n"
    "[click](javascript:alert(1)) <img src=x onerror=alert(2)>\n\n"
    "**Happy** is a smile that reaches the eyes. [FERV39k](https://example.org/ferv)"
)


def take(api, user, campaign):
    return api(user).post(f"/api/v1/campaigns/{campaign.pk}/next/")


def answer(api, user, offer, label="happy"):
    response = api(user).post(
        f"/api/v1/assignments/{offer['assignment']['id']}/answer/", {"label": label}, format="json"
    )
    assert response.status_code in (200, 201), response.json()


# --- guidelines ------------------------------------------------------------------------------


def test_admin_sets_guidelines_and_an_annotator_reads_them_with_scripts_neutralised(
    api, campaign, adam, alice
):
    clip = TaskFactory(campaign=campaign).clip
    response = api(adam).patch(
        f"/api/v1/campaigns/{campaign.pk}/",
        {"guidelines": XSS, "guideline_examples": {"happy": [clip.pk]}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    campaign.refresh_from_db()
    assert campaign.guidelines == XSS
    assert campaign.guideline_examples == {"happy": [clip.pk]}
    assert AuditEntry.objects.filter(campaign=campaign, action="campaign_edited").exists()

    body = api(alice).get(f"/api/v1/campaigns/{campaign.pk}/guidelines/").json()
    html = body["html"]
    assert "<h1>Look at the face</h1>" in html and "<strong>Happy</strong>" in html
    assert "<script" not in html and "<img" not in html
    assert "javascript:" not in html.replace("[click](javascript:alert(1))", "")
    assert 'href="javascript' not in html and "onerror=" not in html.replace("onerror=alert", "")
    assert '<a href="https://example.org/ferv" rel="noopener noreferrer nofollow">' in html
    assert body["markdown"] == XSS
    [example] = body["examples"]
    assert example["label"] == "happy" and example["clips"][0]["id"] == clip.pk
    assert example["clips"][0]["video_url"]
    version = body["version"]
    api(adam).patch(f"/api/v1/campaigns/{campaign.pk}/", {"guidelines": "New"}, format="json")
    assert api(alice).get(f"/api/v1/campaigns/{campaign.pk}/guidelines/").json()["version"] != (
        version
    )


@pytest.mark.parametrize(
    ("examples", "words"),
    [
        ({"smug": [1]}, "not a class"),
        ({"happy": [999999]}, "not in this campaign"),
        ({"happy": list(range(1, 9))}, ""),
    ],
)
def test_bad_example_clips_are_refused_naming_the_field(api, campaign, adam, examples, words):
    response = api(adam).patch(
        f"/api/v1/campaigns/{campaign.pk}/", {"guideline_examples": examples}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "guideline_examples" in error["message"] + str(error.get("details"))
    assert words in error["message"] + str(error.get("details"))
    campaign.refresh_from_db()
    assert campaign.guideline_examples == {}


def test_guidelines_are_for_members_only(api, campaign, alice, stranger):
    url = f"/api/v1/campaigns/{campaign.pk}/guidelines/"
    assert api(stranger).get(url).status_code == 404
    assert api().get(url).status_code in (401, 403)
    response = api(alice).patch(
        f"/api/v1/campaigns/{campaign.pk}/", {"guidelines": "mine"}, format="json"
    )
    assert response.status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).guidelines == ""


# --- scene priority --------------------------------------------------------------------------


def test_scenes_with_a_higher_priority_are_handed_out_first(api, campaign, adam, alice):
    low, high = Scene.objects.order_by("position")[:2]
    for _ in range(3):
        TaskFactory(campaign=campaign, clip=ClipFactory(scene=low))
    response = api(adam).patch(
        f"/api/v1/campaigns/{campaign.pk}/",
        {"scene_priority": {high.folder: 5}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["scene_priority"] == {str(high.pk): 5}
    # Clips added after the change take their scene's priority too.
    from annotations.services import campaign_add_clips

    late = [ClipFactory(scene=high) for _ in range(2)]
    campaign_add_clips(campaign=campaign, clips=late)
    assert set(Task.objects.filter(clip__in=late).values_list("priority", flat=True)) == {5}
    assert set(
        Task.objects.filter(campaign=campaign, clip__scene=low).values_list("priority", flat=True)
    ) == {0}

    scenes = []
    while (response := take(api, alice, campaign)).status_code == 200:
        offer = response.json()
        scenes.append(Task.objects.get(clip_id=offer["clip"]["id"]).clip.scene_id)
        answer(api, alice, offer)
    assert scenes == [high.pk, high.pk, low.pk, low.pk, low.pk]

    # Back to 0: the stored tasks follow.
    api(adam).patch(f"/api/v1/campaigns/{campaign.pk}/", {"scene_priority": {}}, format="json")
    assert set(Task.objects.filter(campaign=campaign).values_list("priority", flat=True)) == {0}


def test_an_unknown_scene_or_priority_out_of_range_is_refused(api, campaign, adam):
    for body in ({"Nowhere": 1}, {Scene.objects.first().folder: 1000}):
        response = api(adam).patch(
            f"/api/v1/campaigns/{campaign.pk}/", {"scene_priority": body}, format="json"
        )
        assert response.status_code == 400
        assert "scene_priority" in str(response.json()["error"])
    assert Campaign.objects.get(pk=campaign.pk).scene_priority == {}


# --- daily quota -----------------------------------------------------------------------------


def test_an_annotator_stops_at_the_daily_quota_with_a_clear_409(api, campaign, adam, alice, bob):
    campaign.gold_share = 0
    campaign.save()
    for _ in range(5):
        TaskFactory(campaign=campaign)
    response = api(adam).patch(
        f"/api/v1/campaigns/{campaign.pk}/", {"daily_quota": 3}, format="json"
    )
    assert response.status_code == 200 and response.json()["daily_quota"] == 3
    # Bob's own quota overrides the campaign's.
    response = api(adam).patch(
        f"/api/v1/campaigns/{campaign.pk}/members/bob/", {"daily_quota": 1}, format="json"
    )
    assert response.status_code == 200 and response.json()["daily_quota"] == 1
    assert Membership.objects.get(campaign=campaign, user=bob).daily_quota == 1
    assert AuditEntry.objects.filter(campaign=campaign, action="member_quota_changed").exists()

    for _ in range(3):
        answer(api, alice, take(api, alice, campaign).json())
    refused = take(api, alice, campaign)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "quota_reached"
    assert "3 answers for today" in refused.json()["error"]["message"]
    assert Vote.objects.filter(annotator=alice).count() == 3

    answer(api, bob, take(api, bob, campaign).json())
    assert take(api, bob, campaign).json()["error"]["code"] == "quota_reached"

    # Yesterday's answers do not count.
    Vote.objects.filter(annotator=alice).update(created_at=timezone.now() - timedelta(days=2))
    assert take(api, alice, campaign).status_code == 200

    # Null lifts the member's own quota back to the campaign's.
    response = api(adam).patch(
        f"/api/v1/campaigns/{campaign.pk}/members/bob/", {"daily_quota": None}, format="json"
    )
    assert response.json()["daily_quota"] is None
    assert take(api, bob, campaign).status_code == 200


def test_quota_edits_are_for_admins_and_validated(api, campaign, adam, alice, rita, stranger):
    url = f"/api/v1/campaigns/{campaign.pk}/members/alice/"
    assert api(rita).patch(url, {"daily_quota": 5}, format="json").status_code == 403
    assert api(stranger).patch(url, {"daily_quota": 5}, format="json").status_code == 404
    assert api(adam).patch(url, {"daily_quota": 0}, format="json").status_code == 400
    assert api(adam).patch(url, {}, format="json").status_code == 400
    response = api(adam).patch(
        f"/api/v1/campaigns/{campaign.pk}/", {"daily_quota": -1}, format="json"
    )
    assert response.status_code == 400 and "daily_quota" in str(response.json()["error"])
    assert Membership.objects.get(campaign=campaign, user=alice).daily_quota is None
    assert Campaign.objects.get(pk=campaign.pk).daily_quota is None


# --- progress over time ----------------------------------------------------------------------


def test_progress_history_counts_answers_per_hour_trusted_days_and_active_time(api, campaign, rita):
    now = timezone.now()
    ann = UserFactory(username="ann")
    # ann answers 4 clips a minute apart (3 gaps of 60 s: 180 s active), then one 2 hours
    # later (a gap over 5 minutes: not active time).
    tasks = [TaskFactory(campaign=campaign, votes_needed=3) for _ in range(6)]
    times = [now - timedelta(hours=3, minutes=m) for m in (4, 3, 2, 1)] + [
        now - timedelta(minutes=30)
    ]
    for task, at in zip(tasks, times, strict=False):
        vote = VoteFactory(task=task, annotator=ann)
        Vote.objects.filter(pk=vote.pk).update(created_at=at)
    Task.objects.filter(pk=tasks[0].pk).update(vote_count=1)
    # An old vote, outside the 7-day window.
    old = VoteFactory(task=tasks[5], annotator=UserFactory(username="old"))
    Vote.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=9))
    Task.objects.filter(pk=tasks[1].pk).update(status="trusted", label=3)

    body = api(rita).get(f"/api/v1/campaigns/{campaign.pk}/progress/history/").json()
    assert sum(h["answers"] for h in body["hours"]) == 5
    assert len(body["hours"]) in (2, 3)  # the 4 quick answers may straddle an hour
    assert body["trusted_total"] == 1 and body["trusted"][-1]["trusted"] == 1
    # Votes still needed: 5 collecting tasks x 3, minus the one counted vote.
    assert body["votes_left"] == 5 * 3 - 1
    assert body["rate_per_hour"] == round(5 / 24, 2)
    assert body["finish_at"] is not None
    [row] = body["annotators"]
    assert (row["username"], row["answers"]) == ("ann", 5)
    assert row["active_s"] == pytest.approx(180, abs=1)
    assert row["per_hour"] == pytest.approx(5 / (180 / 3600), rel=0.01)


def test_progress_history_is_for_reviewers(api, campaign, alice, stranger):
    url = f"/api/v1/campaigns/{campaign.pk}/progress/history/"
    assert api(alice).get(url).status_code == 403
    assert api(stranger).get(url).status_code == 404


def test_scenes_are_listed_for_any_logged_in_user(api, stranger):
    body = api(stranger).get("/api/v1/scenes/").json()
    assert len(body) == Scene.objects.count() and {"id", "folder", "name"} <= set(body[0])
    assert api().get("/api/v1/scenes/").status_code in (401, 403)
