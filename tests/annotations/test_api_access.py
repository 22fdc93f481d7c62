"""Who may do what: tokens, the campaign list, strangers, roles and the reviewer endpoints."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotations.models import Assignment, Task, Vote
from tests.factories import CampaignFactory, GoldTaskFactory, TaskFactory, VoteFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def campaign_urls(campaign, task=None):
    """Every campaign-scoped endpoint as (method, url, body)."""
    task_id = task.pk if task else 1
    return [
        ("post", f"/api/v1/campaigns/{campaign.pk}/next/", None),
        ("get", f"/api/v1/campaigns/{campaign.pk}/last-answer/", None),
        ("get", f"/api/v1/campaigns/{campaign.pk}/progress/", None),
        ("put", f"/api/v1/campaigns/{campaign.pk}/tasks/{task_id}/gold/", {"gold_label": "sad"}),
    ]


def call(client, method, url, body):
    return getattr(client, method)(url, body, format="json")


def test_a_token_is_issued_for_a_username_and_password(alice):
    client = APIClient()
    response = client.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "pw-for-tests"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/campaigns/").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"username": "alice", "password": "wrong"},
        {"username": "nobody", "password": "pw-for-tests"},
        {"username": "alice"},
        {},
    ],
)
def test_a_token_is_refused_for_wrong_or_missing_credentials(alice, body):
    response = APIClient().post("/api/v1/auth/token/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert "token" not in response.json()


def test_without_credentials_every_endpoint_answers_401(campaign):
    client = APIClient()
    urls = campaign_urls(campaign) + [
        ("get", "/api/v1/campaigns/", None),
        ("post", "/api/v1/assignments/1/answer/", {"label": "sad"}),
        ("post", "/api/v1/assignments/1/answer-and-next/", {"label": "sad"}),
        ("post", "/api/v1/assignments/1/skip/", None),
    ]
    for method, url, body in urls:
        response = call(client, method, url, body)
        assert response.status_code == 401, url
        assert response.json()["error"]["code"] == "not_authenticated"
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert bad.get("/api/v1/campaigns/").status_code == 401


def test_the_campaign_list_shows_role_and_own_progress_only(api, alice, bob, rita, campaign):
    other = CampaignFactory(name="Not alice's")
    task = TaskFactory(campaign=campaign)
    TaskFactory(campaign=campaign)
    TaskFactory(campaign=other)
    VoteFactory(task=task, annotator=alice)
    VoteFactory(task=task, annotator=bob)
    yesterday = VoteFactory(task=TaskFactory(campaign=campaign), annotator=alice)
    before_midnight = timezone.localtime().replace(hour=0, minute=0, second=0) - timedelta(
        seconds=1
    )
    Vote.objects.filter(pk=yesterday.pk).update(created_at=before_midnight)
    listed = api(alice).get("/api/v1/campaigns/").json()
    assert listed == [
        {
            "id": campaign.pk,
            "name": campaign.name,
            "description": "",
            "role": "annotator",
            "progress": {"answered": 2, "answered_today": 1, "clips": 3},
            "reinstated": None,
        }
    ]
    assert api(rita).get("/api/v1/campaigns/").json()[0]["role"] == "reviewer"


def test_a_stranger_gets_404_for_everything_in_a_campaign(api, stranger, alice, campaign):
    task = TaskFactory(campaign=campaign)
    assert api(stranger).get("/api/v1/campaigns/").json() == []
    for method, url, body in campaign_urls(campaign, task):
        response = call(api(stranger), method, url, body)
        assert response.status_code == 404, url
        assert response.json()["error"] == {"code": "not_found", "message": "Campaign not found."}
    # Exactly what a campaign that does not exist answers.
    missing = api(stranger).post("/api/v1/campaigns/999999/next/")
    assert (
        missing.status_code == 404 and missing.json()["error"]["message"] == "Campaign not found."
    )
    # Nor can a stranger touch a member's assignment.
    assignment_id = api(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/").json()
    assignment_id = assignment_id["assignment"]["id"]
    for path in ["answer", "answer-and-next", "skip"]:
        response = api(stranger).post(
            f"/api/v1/assignments/{assignment_id}/{path}/", {"label": "sad"}, format="json"
        )
        assert response.status_code == 404
    assert Assignment.objects.get(pk=assignment_id).state == "active"
    task.refresh_from_db()
    assert not task.is_gold


def test_an_annotator_gets_403_on_reviewer_endpoints(api, alice, campaign):
    task = TaskFactory(campaign=campaign)
    progress = api(alice).get(f"/api/v1/campaigns/{campaign.pk}/progress/")
    assert progress.status_code == 403
    assert progress.json()["error"]["code"] == "permission_denied"
    gold = api(alice).put(
        f"/api/v1/campaigns/{campaign.pk}/tasks/{task.pk}/gold/",
        {"gold_label": "sad"},
        format="json",
    )
    assert gold.status_code == 403
    task.refresh_from_db()
    assert (task.is_gold, task.gold_label) == (False, None)


def test_a_reviewer_sees_progress_without_anyone_s_answers(api, rita, alice, campaign):
    task = TaskFactory(campaign=campaign, status="trusted", label=3, vote_count=3)
    TaskFactory(campaign=campaign)
    GoldTaskFactory(campaign=campaign)
    api(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/")
    progress = api(rita).get(f"/api/v1/campaigns/{campaign.pk}/progress/").json()
    assert progress == {
        "clips": 3,
        "failed": 0,
        "gold": 1,
        "votes": task.vote_count,
        "live_assignments": 1,
        "collecting": 1,
        "trusted": 1,
        "disputed": 0,
        "discarded": 0,
        "adjudicated": 0,
    }


def test_a_reviewer_sets_and_clears_a_gold_label(api, rita, campaign):
    task = TaskFactory(campaign=campaign)
    url = f"/api/v1/campaigns/{campaign.pk}/tasks/{task.pk}/gold/"
    response = api(rita).put(url, {"gold_label": "fear"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"task": task.pk, "clip": task.clip_id, "gold_label": "fear"}
    task.refresh_from_db()
    assert (task.is_gold, task.gold_label) == (True, 2)

    assert api(rita).put(url, {"gold_label": None}, format="json").json()["gold_label"] is None
    task.refresh_from_db()
    assert (task.is_gold, task.gold_label) == (False, None)


@pytest.mark.parametrize("body", [{"gold_label": "pass"}, {"gold_label": "calm"}, {}, [1]])
def test_a_gold_label_must_be_a_class(api, rita, campaign, body):
    task = TaskFactory(campaign=campaign)
    url = f"/api/v1/campaigns/{campaign.pk}/tasks/{task.pk}/gold/"
    response = api(rita).put(url, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert not Task.objects.get(pk=task.pk).is_gold


def test_gold_on_a_clip_of_another_campaign_is_404(api, rita, campaign):
    elsewhere = TaskFactory(campaign=CampaignFactory())
    for task_id in [elsewhere.pk, 999999, -1]:
        response = api(rita).put(
            f"/api/v1/campaigns/{campaign.pk}/tasks/{task_id}/gold/",
            {"gold_label": "sad"},
            format="json",
        )
        assert response.status_code == 404
    assert not Task.objects.get(pk=elsewhere.pk).is_gold


def test_reviewers_and_admins_may_annotate_too(api, rita, adam, campaign):
    TaskFactory.create_batch(2, campaign=campaign)
    for user in (rita, adam):
        assert api(user).post(f"/api/v1/campaigns/{campaign.pk}/next/").status_code == 200


def test_an_inactive_user_gets_no_token(alice):
    alice.is_active = False
    alice.save()
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "alice", "password": "pw-for-tests"}, format="json"
    )
    assert response.status_code == 400


def test_a_session_login_works_with_csrf(alice, campaign):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get("/api/v1/campaigns/").status_code == 200
    refused = client.post(f"/api/v1/campaigns/{campaign.pk}/next/")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
