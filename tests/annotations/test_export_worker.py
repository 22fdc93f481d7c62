"""An export started from the API is written by a real Celery worker, with its progress saved."""

import csv
import io

import pytest
from django.core.files.storage import default_storage

from annotations.models import ExportJob, Role
from labelstudio_ferv.expressions import Answer
from tests.conftest import wait_for
from tests.factories import CampaignFactory, MembershipFactory, UserFactory, voted_task

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("fast_password_hasher")]


def test_a_worker_writes_the_export_and_the_status_endpoint_follows_it(celery_worker, api):
    campaign = CampaignFactory()
    rita = UserFactory(username="rita")
    MembershipFactory(campaign=campaign, user=rita, role=Role.REVIEWER)
    voters = [UserFactory(username=f"voter{i}") for i in range(3)]
    for _ in range(4):
        voted_task(campaign, [Answer.HAPPY, Answer.HAPPY, Answer.SAD], voters)
    url = f"/api/v1/campaigns/{campaign.pk}/exports/"
    created = api(rita).post(url, {"kind": "votes"}, format="json")
    assert created.status_code == 202
    job_url = url + f"{created.json()['id']}/"

    body = wait_for(lambda: (r := api(rita).get(job_url).json())["status"] == "done" and r)
    assert (body["rows_done"], body["rows_total"], body["progress"]) == (12, 12, 1.0)
    assert body["download_url"]
    job = ExportJob.objects.get(pk=body["id"])
    assert job.attempt == 1 and job.finished_at is not None
    with default_storage.open(job.file.name) as fh:
        rows = list(csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8")))
    assert len(rows) == 12 and {r["answer"] for r in rows} == {"happy", "sad"}
