"""Members of a campaign over the API: list, add in bulk (creating accounts), change, remove."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotations.models import Assignment, AuditEntry, Membership, Task, Vote
from tests.factories import TaskFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def url(campaign, username=None):
    base = f"/api/v1/campaigns/{campaign.pk}/members/"
    return base + f"{username}/" if username else base


def roles(campaign):
    return dict(Membership.objects.filter(campaign=campaign).values_list("user__username", "role"))


def test_an_admin_adds_users_and_creates_accounts_with_one_time_passwords(api, adam, campaign):
    UserFactory(username="rosa")
    body = {
        "members": [
            {"username": "rosa", "role": "reviewer"},
            {"username": "new1"},
            {"username": "new2", "role": "annotator"},
        ],
        "create_missing": True,
    }
    response = api(adam).post(url(campaign), body, format="json")
    assert response.status_code == 201, response.json()
    assert response["Cache-Control"] == "no-store"
    rows = response.json()["rows"]
    assert [(r["username"], r["status"]) for r in rows] == [
        ("rosa", "added"), ("new1", "created"), ("new2", "created"),
    ]  # fmt: skip
    assert rows[0]["password"] is None
    assert roles(campaign) == {"adam": "admin", "rosa": "reviewer", "new1": "annotator",
                               "new2": "annotator"}  # fmt: skip
    # The password works once shown, and is stored only as a hash.
    new1 = get_user_model().objects.get(username="new1")
    assert rows[1]["password"] not in new1.password and new1.check_password(rows[1]["password"])
    token = APIClient().post(
        "/api/v1/auth/token/", {"username": "new1", "password": rows[1]["password"]}, format="json"
    )
    assert token.status_code == 200
    listed = api(adam).get(url(campaign)).json()
    assert [(m["username"], m["role"]) for m in listed][:2] == [
        ("adam", "admin"),
        ("new1", "annotator"),
    ]
    assert "password" not in listed[0]
    entry = AuditEntry.objects.get(campaign=campaign, action="members_added")
    assert entry.actor == adam and len(entry.details["members"]) == 3


def test_a_bulk_add_with_a_bad_row_changes_nothing_and_reports_every_row(api, adam, campaign):
    UserFactory(username="rosa")
    body = {
        "members": [
            {"username": "rosa"},
            {"username": "ghost"},
            {"username": "adam"},
            {"username": "rosa"},
            {"username": "bad name!"},
        ]
    }
    response = api(adam).post(url(campaign), body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("members[1].username: No user 'ghost'")
    assert [r["status"] for r in error["details"]["rows"]] == ["added", "error", "error", "error",
                                                               "error"]  # fmt: skip
    assert roles(campaign) == {"adam": "admin"}
    assert not get_user_model().objects.filter(username="ghost").exists()
    # Asked to, the valid rows are applied and the others reported.
    partial = api(adam).post(url(campaign) + "?partial=1", body, format="json")
    assert partial.status_code == 201
    assert [r["status"] for r in partial.json()["rows"]][:2] == ["added", "error"]
    assert roles(campaign) == {"adam": "admin", "rosa": "annotator"}


@pytest.mark.parametrize(
    "body",
    [{}, {"members": []}, {"members": [{"username": "x", "role": "boss"}]}, {"members": "x"}],
)
def test_malformed_member_input_is_a_400(api, adam, campaign, body):
    response = api(adam).post(url(campaign), body, format="json")
    assert response.status_code == 400 and response.json()["error"]["message"]
    assert roles(campaign) == {"adam": "admin"}


def test_roles_change_but_the_last_admin_stays(api, adam, alice, campaign):
    assert (
        api(adam).patch(url(campaign, "alice"), {"role": "reviewer"}, format="json").json()["role"]
        == "reviewer"
    )
    refused = api(adam).patch(url(campaign, "adam"), {"role": "annotator"}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "last_admin"
    assert api(adam).delete(url(campaign, "adam")).status_code == 409
    assert (
        api(adam).patch(url(campaign, "nobody"), {"role": "admin"}, format="json").status_code
        == 404
    )
    assert roles(campaign) == {"adam": "admin", "alice": "reviewer"}
    entry = AuditEntry.objects.get(campaign=campaign, action="member_role_changed")
    assert entry.details == {"username": "alice", "before": "annotator", "after": "reviewer"}


def test_removing_a_member_releases_their_leases_and_keeps_their_votes(
    api, adam, alice, bob, campaign
):
    first, _ = TaskFactory.create_batch(2, campaign=campaign)
    offer = api(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/?ahead=1").json()
    api(alice).post(f"/api/v1/assignments/{offer['assignment']['id']}/answer/", {"label": "sad"},
                    format="json")  # fmt: skip
    held = Task.objects.filter(campaign=campaign, lease_count=1)
    assert held.count() == 1
    assert api(adam).delete(url(campaign, "alice")).status_code == 204
    assert "alice" not in roles(campaign)
    assert not Task.objects.filter(campaign=campaign, lease_count__gt=0).exists()
    assert not Assignment.objects.filter(annotator=alice, state="active").exists()
    assert Vote.objects.filter(annotator=alice, campaign=campaign).count() == 1
    # The released clip goes to bob at once.
    assert api(bob).post(f"/api/v1/campaigns/{campaign.pk}/next/").status_code == 200
    # alice is now a stranger there.
    assert api(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/").status_code == 404
    entry = AuditEntry.objects.get(campaign=campaign, action="member_removed")
    assert entry.details["leases_released"] == 1


def test_people_endpoints_refuse_strangers_and_lower_roles(api, stranger, alice, rita, campaign):
    for user, code in [(stranger, 404), (alice, 403)]:
        assert api(user).get(url(campaign)).status_code == code
    for user, code in [(stranger, 404), (alice, 403), (rita, 403)]:
        client = api(user)
        add = client.post(url(campaign), {"members": [{"username": user.username,
                          "role": "admin"}]}, format="json")  # fmt: skip
        assert add.status_code == code
        assert (
            client.patch(url(campaign, "alice"), {"role": "admin"}, format="json").status_code
            == code
        )
        assert client.delete(url(campaign, "rita")).status_code == code
    assert api(rita).get(url(campaign)).status_code == 200
    assert roles(campaign) == {"alice": "annotator", "rita": "reviewer"}
