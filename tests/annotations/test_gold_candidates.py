"""The gold set builder: a stratified sample to label (gold/candidates/), labelled through the
task's gold PUT, audited."""

import pytest

from annotations.models import AuditEntry, Task
from clips.models import MediaStatus, Scene
from tests.factories import GoldTaskFactory, TaskFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def candidates(api, user, campaign, **params):
    return api(user).get(f"/api/v1/campaigns/{campaign.pk}/gold/candidates/", params)


@pytest.fixture
def scenes():
    first = Scene.objects.order_by("position").first()
    return first, Scene.objects.exclude(pk=first.pk).order_by("position").first()


def test_the_sample_covers_every_scene_and_likely_class_before_repeating(
    api, rita, campaign, scenes
):
    school, other = scenes
    happy = TaskFactory.create_batch(
        3, campaign=campaign, clip__scene=school, status="trusted", label=3, vote_count=3
    )
    unknown = TaskFactory.create_batch(2, campaign=campaign, clip__scene=school)
    sad = TaskFactory.create_batch(2, campaign=campaign, clip__scene=other, ds_label=5)
    # Never offered: already gold, retired gold, discarded, media that failed.
    GoldTaskFactory(campaign=campaign, clip__scene=school)
    TaskFactory(campaign=campaign, clip__scene=school, gold_retired=True)
    TaskFactory(campaign=campaign, clip__scene=other, status="discarded")
    TaskFactory(campaign=campaign, clip__scene=other, clip__status=MediaStatus.FAILED)

    body = candidates(api, rita, campaign, limit=5).json()
    items = body["items"]
    assert len(items) == 5
    first_round = {(i["scene"], i["stratum"]) for i in items[:3]}
    assert first_round == {(school.name, "happy"), (school.name, None), (other.name, "sad")}
    offered = {i["task"] for i in candidates(api, rita, campaign, limit=50).json()["items"]}
    assert offered == {t.pk for t in happy + unknown + sad}
    assert items[0]["clip"]["video_url"] and items[0]["clip_name"]
    assert body["coverage"] == {"clips": 10, "gold": 1, "target": 1}  # 5% of 10, rounded up
    # The same call gives the same sample.
    assert candidates(api, rita, campaign, limit=5).json()["items"] == items


def test_a_reviewers_answer_becomes_the_gold_label_audited_and_leaves_the_sample(
    api, rita, campaign
):
    TaskFactory.create_batch(3, campaign=campaign)
    pick = candidates(api, rita, campaign).json()["items"][0]
    response = api(rita).put(
        f"/api/v1/campaigns/{campaign.pk}/tasks/{pick['task']}/gold/",
        {"gold_label": "fear"},
        format="json",
    )
    assert response.status_code == 200
    task = Task.objects.get(pk=pick["task"])
    assert (task.is_gold, task.gold_label) == (True, 2)
    entry = AuditEntry.objects.get(campaign=campaign, action="gold_set")
    assert entry.actor == rita
    assert entry.details["task"] == task.pk and entry.details["label"] == "fear"
    after = candidates(api, rita, campaign).json()
    assert pick["task"] not in {i["task"] for i in after["items"]}
    assert after["coverage"]["gold"] == 1


def test_the_sample_is_for_reviewers_only_and_checks_its_limit(
    api, alice, stranger, rita, campaign
):
    TaskFactory(campaign=campaign)
    assert candidates(api, stranger, campaign).status_code == 404
    assert candidates(api, alice, campaign).status_code == 403
    for limit in (0, 201, "x"):
        response = candidates(api, rita, campaign, limit=limit)
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith("limit:")
