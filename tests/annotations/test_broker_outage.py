"""A vote that arrives while Redis is down is kept, and its clip's consensus catches up."""

import json
import urllib.request

import pytest
from rest_framework.authtoken.models import Token

from annotations.models import Role, Task, Vote
from tests.conftest import RedisProcess, ServerProcess, WorkerProcess, wait_for
from tests.factories import CampaignFactory, MembershipFactory, TaskFactory, UserFactory


def call(
    server: ServerProcess, token: str, path: str, body: dict | None = None, timeout: float = 30
) -> tuple:
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body or {}).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
        raw = response.read()
        return response.status, json.loads(raw) if raw else None


@pytest.mark.worker
def test_a_vote_during_a_broker_outage_is_stored_and_counted_once_redis_is_back(live_db, tmp_path):
    campaign = CampaignFactory(votes_per_clip=1, max_votes=1)
    alice = UserFactory(username="alice")
    MembershipFactory(campaign=campaign, user=alice, role=Role.ANNOTATOR)
    task = TaskFactory(campaign=campaign)
    token = Token.objects.create(user=alice).key

    broker = RedisProcess()  # not started: the broker is down
    env = {"CELERY_BROKER_URL": broker.url, "CELERY_TASK_ALWAYS_EAGER": "0"}
    server = ServerProcess(**env).start()
    try:
        status, offer = call(server, token, f"/api/v1/campaigns/{campaign.pk}/next/")
        assert status == 200
        status, vote = call(
            server, token, f"/api/v1/assignments/{offer['assignment']['id']}/answer/",
            {"label": "surprise"},
        )  # fmt: skip
        assert status == 201
    finally:
        server.stop()
    stored = Task.objects.get(pk=task.pk)
    assert Vote.objects.filter(task=task, annotator=alice, answer=6).count() == 1
    assert stored.consensus_stale and stored.counts[6] == 0  # not counted yet

    broker.start()
    worker = WorkerProcess(
        args=("-B", "--schedule", str(tmp_path / "beat-schedule")),
        CONSENSUS_SWEEP_SECONDS="1",
        **env,
    ).start()
    try:
        caught_up = wait_for(
            lambda: Task.objects.filter(pk=task.pk, consensus_stale=False).first(), timeout=60
        )
    finally:
        worker.stop()
        broker.stop()
    assert caught_up.counts[6] == 1 and caught_up.vote_count == 1
    assert (caught_up.status, caught_up.label) == ("trusted", 6)
    assert Vote.objects.filter(task=task).count() == 1  # stored once, counted once
