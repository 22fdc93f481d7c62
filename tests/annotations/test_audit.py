"""The blind audit (issue 14): a fixed share of trusted clips goes to reviewers without votes or
label; their answers give measured precision with a Wilson interval, per scenario and scene, on
the statistics and in the release export."""

import pytest

from annotations import audit_sample, statistics
from annotations.models import AuditAnswer, ConsensusStatus
from labelstudio_ferv.expressions import Answer
from tests.factories import TaskFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def trusted(campaign, n, label=Answer.HAPPY):
    return [
        TaskFactory(campaign=campaign, status=ConsensusStatus.TRUSTED, label=label)
        for _ in range(n)
    ]


def test_the_sample_is_the_share_and_blind(api, campaign, rita, alice):
    campaign.audit_share = 0.1
    campaign.save()
    tasks = trusted(campaign, 200)
    TaskFactory.create_batch(20, campaign=campaign)  # collecting: never audited
    sample = {t.pk for t in tasks if audit_sample.in_sample(t.pk, 0.1)}
    assert 10 <= len(sample) <= 30  # 10 % of 200 consecutive ids, give or take the wrap
    assert set(audit_sample.sampled(campaign).values_list("pk", flat=True)) == sample
    body = api(rita).get(f"/api/v1/campaigns/{campaign.pk}/audit-queue/").json()
    assert {c["task"] for c in body["clips"]} <= sample and len(body["clips"]) == min(
        20, len(sample)
    )
    # Blind: the clip and its media, nothing of the votes or the label.
    assert set(body["clips"][0]) == {"task", "clip"}
    assert "label" not in body["clips"][0]["clip"] and "counts" not in body["clips"][0]["clip"]
    assert body["precision"]["audited"] == 0 and body["precision"]["interval_95"] is None
    # Annotators cannot see it.
    assert api(alice).get(f"/api/v1/campaigns/{campaign.pk}/audit-queue/").status_code == 403


def test_reviewer_answers_measure_precision_with_a_wilson_interval(api, campaign, rita):
    campaign.audit_share = 0.5
    campaign.save()
    trusted(campaign, 40)
    client = api(rita)
    url = f"/api/v1/campaigns/{campaign.pk}/audit-queue/"
    queue = client.get(url).json()["clips"]
    answers = ["happy"] * 8 + ["sad"] * 2
    for clip, label in zip(queue, answers, strict=False):
        assert (
            client.post(url, {"task": clip["task"], "label": label}, format="json").status_code
            == 201
        )
    again = client.post(url, {"task": queue[0]["task"], "label": "happy"}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_audited"
    outside = TaskFactory(campaign=campaign)  # not trusted: not in the sample
    assert (
        client.post(url, {"task": outside.pk, "label": "happy"}, format="json").status_code == 404
    )
    assert (
        client.post(url, {"task": queue[1]["task"], "label": "pass"}, format="json").status_code
        == 400
    )
    precision = client.get(url).json()["precision"]
    assert (precision["audited"], precision["right"], precision["precision"]) == (10, 8, 0.8)
    assert precision["interval_95"] == [0.4902, 0.9433]  # Wilson, 8 of 10
    # The factory gives each clip a scene: the groups add up to the whole.
    assert sum(g["audited"] for g in precision["per_scene"]) == 10
    assert sum(g["right"] for g in precision["per_scenario"]) == 8
    assert AuditAnswer.objects.filter(campaign=campaign).count() == 10
    # On the dashboard's statistics too.
    stats = statistics.statistics_refresh(campaign_id=campaign.pk)
    assert stats.data["audit"]["precision"] == 0.8
    # Audited clips leave the queue.
    assert not {c["task"] for c in client.get(url).json()["clips"]} & {
        c["task"] for c in queue[:10]
    }


def test_wilson_interval():
    assert audit_sample.wilson(0, 0) is None
    assert audit_sample.wilson(10, 10) == [0.7225, 1.0]
