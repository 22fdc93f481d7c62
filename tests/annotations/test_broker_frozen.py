"""A broker that stops answering (SIGSTOP: the TCP connection stays open) freezes no request."""

import os
import signal
import time

import pytest
from rest_framework.authtoken.models import Token

from annotations.models import Role, Task, Vote
from tests.annotations.test_broker_outage import call
from tests.conftest import RedisProcess, ServerProcess, WorkerProcess, wait_for
from tests.factories import CampaignFactory, MembershipFactory, TaskFactory, UserFactory


def answer_next(server: ServerProcess, token: str, campaign_id: int, label: str) -> None:
    """Take the next clip and answer it; both requests must complete, and succeed."""
    status, offer = call(server, token, f"/api/v1/campaigns/{campaign_id}/next/", timeout=15)
    assert status == 200
    status, _ = call(
        server, token, f"/api/v1/assignments/{offer['assignment']['id']}/answer/",
        {"label": label}, timeout=15,
    )  # fmt: skip
    assert status == 201


@pytest.mark.worker
def test_answers_complete_while_the_broker_is_frozen_and_are_counted_after(live_db, tmp_path):
    campaign = CampaignFactory(votes_per_clip=1, max_votes=1)
    alice = UserFactory(username="alice")
    MembershipFactory(campaign=campaign, user=alice, role=Role.ANNOTATOR)
    tasks = TaskFactory.create_batch(4, campaign=campaign)
    token = Token.objects.create(user=alice).key

    broker = RedisProcess().start()
    env = {"CELERY_BROKER_URL": broker.url, "CELERY_TASK_ALWAYS_EAGER": "0"}
    # One web worker: its pooled broker connection, opened by the first answer, is the one that
    # hangs on the frozen broker. The Celery worker (and beat) run through the freeze too.
    server = ServerProcess(workers=1, **env).start()
    worker = WorkerProcess(
        args=("-B", "--schedule", str(tmp_path / "beat-schedule")),
        CONSENSUS_SWEEP_SECONDS="1",
        **env,
    ).start()
    try:
        answer_next(server, token, campaign.pk, "happy")  # broker answering
        wait_for(lambda: Task.objects.filter(campaign=campaign, status="trusted").exists())
        os.kill(broker.proc.pid, signal.SIGSTOP)
        try:
            for label in ["sad", "angry", "fear"]:
                answer_next(server, token, campaign.pk, label)
            time.sleep(3)  # the worker's own reads and beat's publishes meet the frozen broker
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        assert Vote.objects.filter(task__in=tasks).count() == 4  # every answer stored once

        def caught_up() -> bool:
            # As compose's `restart: unless-stopped` does: a Celery worker may exit when its
            # broker stops answering (README, Reliability); the votes wait in the database.
            if worker.proc.poll() is not None:
                worker.start()
            return (
                not Task.objects.filter(campaign=campaign, consensus_stale=True).exists()
                and Task.objects.filter(campaign=campaign, status="trusted").count() == 4
            )

        try:
            wait_for(caught_up, timeout=90)
        except pytest.fail.Exception:
            pytest.fail(f"not caught up; the worker's log ends:\n{worker.log.read_text()[-3000:]}")
    finally:
        server.stop()
        worker.stop()
        broker.stop()
    stored = Task.objects.filter(campaign=campaign)
    assert sorted(t.label for t in stored) == [0, 2, 3, 5]
    assert all(t.vote_count == 1 and sum(t.counts) == 1 for t in stored)  # counted once each
