"""Creating, editing, pausing, resuming and closing campaigns over the API."""

import pytest
from django.contrib.auth.models import Permission

from annotations.models import AuditEntry, Campaign, Membership, Vote
from tests.factories import CampaignFactory, TaskFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def carla(db):
    """A user allowed to create campaigns (Django's annotations.add_campaign permission)."""
    user = UserFactory(username="carla")
    user.user_permissions.add(Permission.objects.get(codename="add_campaign"))
    return user


def test_a_permitted_user_creates_a_campaign_and_becomes_its_admin(api, carla):
    response = api(carla).post(
        "/api/v1/campaigns/",
        {"name": "Street scenes", "description": "Look at faces.", "gold_share": 0.1},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    campaign = Campaign.objects.get(pk=body["id"])
    assert (body["state"], body["votes_per_clip"], body["max_votes"]) == ("active", 3, 5)
    assert campaign.gold_share == 0.1 and campaign.created_by == carla
    assert Membership.objects.get(campaign=campaign, user=carla).role == "admin"
    listed = api(carla).get("/api/v1/campaigns/").json()
    assert [(c["id"], c["role"]) for c in listed] == [(campaign.pk, "admin")]
    entry = AuditEntry.objects.get(campaign=campaign)
    assert (entry.action, entry.actor, entry.details["rules"]["gold_share"]) == (
        "campaign_created", carla, 0.1,
    )  # fmt: skip


def test_a_user_without_the_permission_cannot_create_one(api, alice, stranger):
    for user in (alice, stranger):
        response = api(user).post("/api/v1/campaigns/", {"name": "Mine"}, format="json")
        assert response.status_code == 403
    assert not Campaign.objects.filter(name="Mine").exists()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"votes_per_clip": 3, "max_votes": 2}, "max_votes", "at least votes_per_clip"),
        (
            {"votes_per_clip": 3, "max_votes": 5, "aggregation": "majority"},
            "max_votes",
            "split 1-1-1",
        ),
        (
            {"votes_per_clip": 3, "max_votes": 4, "aggregation": "majority"},
            "max_votes",
            "2-1-1 (50%)",
        ),
        ({"min_agreement": 1.5}, "min_agreement", ""),
        ({"min_agreement": "high"}, "min_agreement", ""),
        ({"aggregation": "vibes"}, "aggregation", ""),
        ({"lease_seconds": 1}, "lease_seconds", ""),
        ({"max_votes": 31}, "max_votes", ""),
        ({"name": ""}, "name", ""),
        ({"name": "Scenes of daily life"}, "name", "exists already"),
        ({"target_precision": 1}, "target_precision", "below 1"),
        ({"target_precision": 0.5}, "target_precision", "above 0.5"),
        ({"target_precision": 0.2}, "target_precision", ""),
        ({"audit_share": -0.1}, "audit_share", ""),
        ({"quality_confidence": 1}, "quality_confidence", "below 1"),
        ({"qualification_clips": -1}, "qualification_clips", ""),
        ({"gold_max_answers": "many"}, "gold_max_answers", ""),
    ],
)
def test_bad_rules_are_refused_naming_the_field(api, root, campaign, body, field, words):
    response = api(root).post("/api/v1/campaigns/", {"name": "New", **body}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith(f"{field}:"), error
    assert field in error["details"] and words in error["message"]
    assert Campaign.objects.count() == 1


def test_unsettleable_rules_pass_under_dawid_skene(api, root):
    body = {"name": "DS", "votes_per_clip": 3, "max_votes": 5, "aggregation": "dawid_skene"}
    assert api(root).post("/api/v1/campaigns/", body, format="json").status_code == 201


def test_an_admin_edits_the_rules_and_the_change_is_audited(api, adam, rita, campaign):
    campaign.max_votes = 3
    campaign.save()
    url = f"/api/v1/campaigns/{campaign.pk}/"
    response = api(adam).patch(url, {"description": "New text", "gold_share": 0.2}, format="json")
    assert response.status_code == 200
    assert response.json()["description"] == "New text"
    campaign.refresh_from_db()
    assert (campaign.description, campaign.gold_share) == ("New text", 0.2)
    entry = AuditEntry.objects.get(campaign=campaign, action="campaign_edited")
    assert entry.details == {
        "before": {"description": "", "gold_share": 0.05},
        "after": {"description": "New text", "gold_share": 0.2},
    }
    # A reviewer may read the rules but not change them.
    assert api(rita).get(url).json()["gold_share"] == 0.2
    refused = api(rita).patch(url, {"gold_share": 0.5}, format="json")
    assert refused.status_code == 403
    bad = api(adam).patch(url, {"max_votes": 5}, format="json")
    assert bad.status_code == 400 and "1-1-1" in bad.json()["error"]["message"]
    campaign.refresh_from_db()
    assert (campaign.gold_share, campaign.max_votes) == (0.2, 3)


def test_a_stranger_learns_nothing_of_a_campaign(api, stranger, adam, campaign):
    base = f"/api/v1/campaigns/{campaign.pk}/"
    calls = [("get", base), ("patch", base)] + [
        ("post", base + action + "/") for action in ("pause", "resume", "close")
    ]
    for method, url in calls:
        response = getattr(api(stranger), method)(url, {"name": "x"}, format="json")
        assert response.status_code == 404, url
        assert response.json()["error"]["message"] == "Campaign not found."
    campaign.refresh_from_db()
    assert (campaign.name, campaign.state) == ("Scenes of daily life", "active")


def test_an_annotator_cannot_pause(api, alice, campaign):
    assert api(alice).post(f"/api/v1/campaigns/{campaign.pk}/pause/").status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).state == "active"


def test_a_paused_campaign_hands_out_nothing_but_takes_held_answers(api, adam, alice, campaign):
    TaskFactory.create_batch(3, campaign=campaign)
    next_url = f"/api/v1/campaigns/{campaign.pk}/next/"
    held = api(alice).post(next_url).json()["assignment"]["id"]
    paused = api(adam).post(f"/api/v1/campaigns/{campaign.pk}/pause/")
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    refused = api(alice).post(next_url)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "campaign_paused"
    assert "paused" in refused.json()["error"]["message"]
    # The clip alice holds is still answered, and the answer counts; no next clip comes.
    answered = api(alice).post(
        f"/api/v1/assignments/{held}/answer-and-next/", {"label": "sad"}, format="json"
    )
    assert answered.status_code == 409 and answered.json()["error"]["code"] == "campaign_paused"
    assert Vote.objects.filter(assignment_id=held, annotator=alice).exists()
    # Pausing twice changes nothing; resuming hands clips out again.
    assert api(adam).post(f"/api/v1/campaigns/{campaign.pk}/pause/").status_code == 200
    assert api(adam).post(f"/api/v1/campaigns/{campaign.pk}/resume/").json()["state"] == "active"
    assert api(alice).post(next_url).status_code == 200
    actions = list(
        AuditEntry.objects.filter(campaign=campaign).order_by("id").values_list("action", flat=True)
    )
    assert actions == ["campaign_paused", "campaign_resumed"]


def test_a_closed_campaign_stays_closed(api, adam, alice, campaign):
    TaskFactory(campaign=campaign)
    assert api(adam).post(f"/api/v1/campaigns/{campaign.pk}/close/").json()["state"] == "closed"
    refused = api(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "campaign_closed"
    resume = api(adam).post(f"/api/v1/campaigns/{campaign.pk}/resume/")
    assert resume.status_code == 409 and resume.json()["error"]["code"] == "campaign_closed"
    assert Campaign.objects.get(pk=campaign.pk).state == "closed"


def test_a_superuser_sees_every_campaign_and_its_dashboard(api, root, campaign, alice):
    other = CampaignFactory(name="Another")
    listed = api(root).get("/api/v1/campaigns/").json()
    assert {(c["name"], c["role"]) for c in listed} == {
        ("Scenes of daily life", "admin"), ("Another", "admin"),
    }  # fmt: skip
    assert api(root).get(f"/api/v1/campaigns/{other.pk}/progress/").status_code == 200
    assert api(root).get(f"/api/v1/campaigns/{other.pk}/").status_code == 200
    assert api(root).post(f"/api/v1/campaigns/{other.pk}/pause/").status_code == 200
    client = api(root)
    client.force_login(root)
    assert client.get(f"/campaigns/{other.pk}/dashboard/").status_code == 200
    # Annotating needs a membership: leases and votes belong to members.
    refused = api(root).post(f"/api/v1/campaigns/{campaign.pk}/next/")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_a_member"
    assert api(root).get("/api/v1/campaigns/999999/").status_code == 404


def test_an_older_unsettleable_rule_does_not_block_other_edits(api, adam, campaign):
    # The fixture's campaign asks for up to 5 votes at 2/3 (built before the check existed).
    url = f"/api/v1/campaigns/{campaign.pk}/"
    assert api(adam).patch(url, {"description": "x"}, format="json").status_code == 200
    refused = api(adam).patch(url, {"min_agreement": 0.7}, format="json")
    assert refused.status_code == 400 and "1-1-1" in refused.json()["error"]["message"]
    fixed = api(adam).patch(url, {"max_votes": 3}, format="json")
    assert fixed.status_code == 200 and fixed.json()["max_votes"] == 3


def test_a_campaign_made_in_the_django_admin_has_its_creator_as_admin(client, root):
    client.force_login(root)
    form = {
        "name": "From the admin", "description": "", "votes_per_clip": 3, "max_votes": 3,
        "min_agreement": 0.67, "gold_share": 0.05, "lease_seconds": 600, "batch_size": 100,
        "aggregation": "majority", "ds_threshold": 0.9, "state": "active",
        "gold_max_answers": 20, "quality_confidence": 0.97, "target_precision": 0.97,
        "qualification_clips": 10, "audit_share": 0.02,
        "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0,
    }  # fmt: skip
    response = client.post("/admin/annotations/campaign/add/", form)
    assert response.status_code == 302, response.content[:2000]
    campaign = Campaign.objects.get(name="From the admin")
    assert campaign.created_by == root
    assert Membership.objects.get(campaign=campaign).user == root


def test_an_admin_sets_the_precision_audit_and_qualification_rules(api, adam, campaign):
    url = f"/api/v1/campaigns/{campaign.pk}/"
    body = {
        "target_precision": 0.99, "audit_share": 0.1, "qualification_clips": 4,
        "gold_max_answers": 50, "quality_confidence": 0.9,
    }  # fmt: skip
    response = api(adam).patch(url, body, format="json")
    assert response.status_code == 200
    assert {k: response.json()[k] for k in body} == body
    campaign.refresh_from_db()
    assert {k: getattr(campaign, k) for k in body} == body
    entry = AuditEntry.objects.get(campaign=campaign, action="campaign_edited")
    assert entry.details["after"] == body
