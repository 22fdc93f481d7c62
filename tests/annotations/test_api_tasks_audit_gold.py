"""The task list, the audit log and the gold set in bulk (import, export, retire)."""

import pytest

from annotations.models import AuditEntry, Task
from clips.models import Scene
from tests.factories import CampaignFactory, GoldTaskFactory, TaskFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def tasks(api, user, campaign, **params):
    return api(user).get(f"/api/v1/campaigns/{campaign.pk}/tasks/", params)


def test_the_task_list_filters_and_pages_by_cursor(api, rita, campaign):
    scene = Scene.objects.order_by("id").first()
    other_scene = Scene.objects.exclude(scenario=scene.scenario).order_by("id").first()
    trusted = TaskFactory(campaign=campaign, status="trusted", label=3, vote_count=3,
                          agreement=1.0, clip__scene=scene, clip__name="a.mp4")  # fmt: skip
    plain = TaskFactory.create_batch(4, campaign=campaign, clip__scene=other_scene)
    gold = GoldTaskFactory(campaign=campaign, is_gold=True, gold_label=2, clip__scene=scene)
    TaskFactory(campaign=CampaignFactory(), clip__scene=scene)  # another campaign's
    everything = tasks(api, rita, campaign).json()
    assert [t["id"] for t in everything["items"]] == [trusted.pk, *(t.pk for t in plain), gold.pk]
    assert everything["next_after"] is None
    row = everything["items"][0]
    assert row == {
        "id": trusted.pk, "clip": trusted.clip_id, "clip_name": "a.mp4", "scene": scene.name,
        "scenario": scene.scenario.name, "status": "trusted", "label": "happy", "gold": False,
        "gold_label": None, "votes": 3, "votes_needed": trusted.votes_needed, "agreement": 1.0,
    }  # fmt: skip

    def ids(**params):
        return [t["id"] for t in tasks(api, rita, campaign, **params).json()["items"]]

    assert ids(status="trusted") == [trusted.pk]
    assert ids(label="happy") == [trusted.pk]
    assert ids(gold="true") == [gold.pk]
    assert ids(scene=scene.name) == [trusted.pk, gold.pk]
    assert ids(scenario=other_scene.scenario.name) == [t.pk for t in plain]
    assert ids(clip="a.mp4") == ids(clip=str(trusted.clip_id)) == [trusted.pk]
    assert ids(agreement_min=0.5) == [trusted.pk]
    assert ids(agreement_max=0.5, gold="false") == [t.pk for t in plain]
    first = tasks(api, rita, campaign, limit=2).json()
    assert [t["id"] for t in first["items"]] == [trusted.pk, plain[0].pk]
    second = tasks(api, rita, campaign, limit=2, after=first["next_after"]).json()
    assert [t["id"] for t in second["items"]] == [plain[1].pk, plain[2].pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "great"}, "status"), ({"label": "pass"}, "label"),
     ({"agreement_min": 2}, "agreement_min"), ({"limit": 0}, "limit"), ({"after": "x"}, "after")],
)  # fmt: skip
def test_bad_task_filters_are_a_400_naming_the_field(api, rita, campaign, params, field):
    response = tasks(api, rita, campaign, **params)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(f"{field}:")


def test_the_task_list_and_audit_refuse_strangers_and_annotators(api, stranger, alice, campaign):
    TaskFactory(campaign=campaign)
    for path in ("tasks", "audit", "gold/export"):
        assert api(stranger).get(f"/api/v1/campaigns/{campaign.pk}/{path}/").status_code == 404
        assert api(alice).get(f"/api/v1/campaigns/{campaign.pk}/{path}/").status_code == 403
    for user, code in [(stranger, 404), (alice, 403)]:
        response = api(user).post(
            f"/api/v1/campaigns/{campaign.pk}/gold/import/", "1,happy\n", content_type="text/csv"
        )
        assert response.status_code == code
    assert not Task.objects.filter(is_gold=True).exists()


def test_the_audit_log_pages_newest_first(api, adam, rita, campaign):
    for _ in range(3):
        api(adam).post(f"/api/v1/campaigns/{campaign.pk}/pause/")
        api(adam).post(f"/api/v1/campaigns/{campaign.pk}/resume/")
    page = api(rita).get(f"/api/v1/campaigns/{campaign.pk}/audit/", {"limit": 4}).json()
    assert [e["action"] for e in page["items"]] == ["campaign_resumed", "campaign_paused"] * 2
    assert page["items"][0]["actor"] == "adam"
    assert page["items"][0]["details"] == {"before": "paused", "after": "active"}
    rest = (
        api(rita)
        .get(f"/api/v1/campaigns/{campaign.pk}/audit/", {"before": page["next_before"]})
        .json()
    )
    assert len(rest["items"]) == 2 and rest["next_before"] is None
    assert AuditEntry.objects.filter(campaign=campaign).count() == 6


def test_gold_imports_all_or_nothing_exports_and_retires(api, rita, campaign):
    a = TaskFactory(campaign=campaign, clip__name="a.mp4")
    b = TaskFactory(campaign=campaign, clip__name="b.mp4")
    TaskFactory(campaign=campaign, clip__name="twin.mp4")
    TaskFactory(campaign=campaign, clip__name="twin.mp4")
    elsewhere = TaskFactory(campaign=CampaignFactory())
    url = f"/api/v1/campaigns/{campaign.pk}/gold/import/"
    bad = f"clip,label\na.mp4,happy\n{b.clip_id},calm\ntwin.mp4,sad\n{elsewhere.clip_id},sad\n"
    response = api(rita).post(url, bad, content_type="text/csv")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("row 3: label: 'calm' is not a class")
    assert [(r["row"], r["status"], r["field"]) for r in error["details"]["rows"]] == [
        (2, "gold", None), (3, "error", "label"), (4, "error", "clip"), (5, "error", "clip"),
    ]  # fmt: skip
    assert not Task.objects.filter(is_gold=True).exists()

    partial = api(rita).post(url + "?partial=1", bad, content_type="text/csv")
    assert partial.status_code == 200
    good = f"a.mp4,happy\n{b.clip_id},Fear\n"
    assert [r["status"] for r in api(rita).post(url, good, content_type="text/csv").json()[
        "rows"]] == ["unchanged", "gold"]  # fmt: skip
    assert {t.pk: t.gold_label for t in Task.objects.filter(is_gold=True)} == {a.pk: 3, b.pk: 2}

    export = api(rita).get(f"/api/v1/campaigns/{campaign.pk}/gold/export/")
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    lines = export.content.decode().splitlines()
    assert lines[0] == "clip,clip_name,label"
    assert sorted(lines[1:]) == sorted([f"{a.clip_id},a.mp4,happy", f"{b.clip_id},b.mp4,fear"])

    retired = api(rita).delete(f"/api/v1/campaigns/{campaign.pk}/tasks/{a.pk}/gold/")
    assert retired.status_code == 200 and retired.json()["gold_label"] is None
    assert list(Task.objects.filter(is_gold=True).values_list("pk", flat=True)) == [b.pk]
    actions = list(AuditEntry.objects.filter(campaign=campaign).order_by("id")
                   .values_list("action", flat=True))  # fmt: skip
    assert actions == ["gold_imported", "gold_imported", "gold_retired"]


def test_review_decisions_reach_the_audit_log(api, rita, campaign):
    task = TaskFactory(campaign=campaign, status="disputed", vote_count=5)
    decided = api(rita).post(
        f"/api/v1/campaigns/{campaign.pk}/review/tasks/{task.pk}/decisions/",
        {"action": "label", "label": "sad", "version": 0},
        format="json",
    )
    assert decided.status_code == 200, decided.json()
    entry = api(rita).get(f"/api/v1/campaigns/{campaign.pk}/audit/").json()["items"][0]
    assert (entry["action"], entry["actor"]) == ("review_decision", "rita")
    assert entry["details"]["label"] == "sad" and entry["details"]["task"] == task.pk
