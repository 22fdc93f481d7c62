"""The assignment rules and a real Celery worker keeping each clip's consensus.

Answers go through the API; the consensus is computed by a worker process from Redis, and the
next claims follow what it decided: settled clips are no longer offered, split ones ask for
one more vote.
"""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.models import Membership, Role, Task
from tests.conftest import wait_for
from tests.factories import CampaignFactory, TaskFactory, UserFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.worker,
    pytest.mark.usefixtures("celery_worker", "fast_password_hasher"),
]


def client_for(campaign, username):
    user = UserFactory(username=username)
    Membership.objects.create(campaign=campaign, user=user, role=Role.ANNOTATOR)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def answer_next(client, campaign, answers: dict) -> tuple[int, int]:
    """Take the next clip and give it the next answer queued for it; return (clip, assignment)."""
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/next/")
    assert response.status_code == 200
    clip_id, assignment_id = response.json()["clip"]["id"], response.json()["assignment"]["id"]
    stored = client.post(
        f"/api/v1/assignments/{assignment_id}/answer/",
        {"label": answers[clip_id].pop(0)},
        format="json",
    )
    assert stored.status_code == 201
    return clip_id, assignment_id


def test_settled_clips_leave_the_queue_and_split_clips_ask_for_one_more_vote():
    campaign = CampaignFactory(votes_per_clip=3, max_votes=5)
    settled = TaskFactory(campaign=campaign)
    split = TaskFactory(campaign=campaign)
    clients = [client_for(campaign, f"annotator{i}") for i in range(4)]

    # The first three annotators each answer both clips (in whichever order they come).
    answers = {settled.clip_id: ["happy", "happy", "sad"], split.clip_id: ["happy", "sad", "fear"]}
    last = {}
    for client in clients[:3]:
        for _ in range(2):
            clip_id, assignment_id = answer_next(client, campaign, answers)
            last[client] = (clip_id, assignment_id)
    wait_for(lambda: Task.objects.get(pk=settled.pk).status == "trusted")
    settled.refresh_from_db()
    assert (settled.label, settled.vote_count) == (3, 3)
    # The split clip asks for a fourth vote, and only the fourth annotator can give it.
    wait_for(lambda: Task.objects.get(pk=split.pk).votes_needed == 4)
    response = clients[3].post(f"/api/v1/campaigns/{campaign.pk}/next/")
    assert response.json()["clip"]["id"] == split.clip_id
    assert clients[0].post(f"/api/v1/campaigns/{campaign.pk}/next/").status_code == 204

    # An annotator may correct their last answer within the correction window whatever the
    # clip's consensus (a refusal would tell them how the others voted): to PASS here.
    by_clip = {
        clip_id: (client, assignment_id) for client, (clip_id, assignment_id) in last.items()
    }
    for clip_id, expected in [(split.clip_id, 200), (settled.clip_id, 200)]:
        if clip_id in by_clip:
            client, assignment_id = by_clip[clip_id]
            corrected = client.post(
                f"/api/v1/assignments/{assignment_id}/answer/", {"label": "pass"}, format="json"
            )
            assert corrected.status_code == expected, corrected.json()
