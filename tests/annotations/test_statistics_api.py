"""Statistics and recompute endpoints: reviewers and admins only; strangers learn nothing."""

import pytest

from annotations.models import Task, Vote
from tests.factories import TaskFactory


@pytest.mark.django_db
def test_reviewers_refresh_and_read_statistics_and_admins_recompute(
    api, alice, bob, rita, adam, stranger, campaign, django_capture_on_commit_callbacks
):
    url = f"/api/v1/campaigns/{campaign.pk}/statistics/"
    assert api(rita).get(url).json() == {"computed_at": None, "duration_ms": None, "data": None}
    tasks = [TaskFactory(campaign=campaign) for _ in range(3)]
    for task, (a, b) in zip(tasks, [(3, 3), (3, 5), (5, 5)], strict=True):
        Vote.objects.create(task=task, campaign=campaign, annotator=alice, answer=a)
        Vote.objects.create(task=task, campaign=campaign, annotator=bob, answer=b)
    assert api(rita).post(url + "refresh/").status_code == 202  # eager in tests
    body = api(rita).get(url).json()
    assert body["data"]["votes"] == 6 and body["computed_at"] is not None
    assert body["data"]["alpha"] is not None
    assert api(adam).get(url).status_code == 200

    assert api(rita).post(f"/api/v1/campaigns/{campaign.pk}/recompute/").status_code == 403
    assert api(adam).post(f"/api/v1/campaigns/{campaign.pk}/recompute/").status_code == 202
    assert Task.objects.get(pk=tasks[0].pk).counts[3] == 2

    assert api(alice).get(url).status_code == 403
    assert api(alice).post(url + "refresh/").status_code == 403
    for response in (api(stranger).get(url), api(stranger).post(url + "refresh/")):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
