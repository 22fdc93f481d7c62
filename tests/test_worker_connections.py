"""A worker keeps one database session across tasks, and gets a new one when it breaks."""

import os

import pytest
import redis
from django.db import connection

from annotations.consensus import consensus_enqueue
from annotations.models import Task
from tests.conftest import wait_for
from tests.factories import CampaignFactory, TaskFactory

pytestmark = pytest.mark.worker


def sessions() -> int:
    """Sessions PostgreSQL has opened on the test database so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def run_consensus_messages(tasks) -> None:
    """Send one consensus message per task and wait until the worker has taken them all."""
    queue = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    for task in tasks:
        consensus_enqueue(task_id=task.pk)  # outside a transaction: sent at once
    wait_for(lambda: queue.llen(os.environ["CELERY_QUEUE"]) == 0)
    wait_for(lambda: not Task.objects.filter(consensus_stale=True).exists())


def test_tasks_share_one_session_and_a_broken_one_is_replaced(celery_worker):
    tasks = TaskFactory.create_batch(30, campaign=CampaignFactory())
    run_consensus_messages(tasks[:1])  # the worker's first task opens its session
    before = sessions()
    run_consensus_messages(tasks)
    # 30 tasks: not a session each (Celery's default), the one already open.
    assert sessions() - before <= 1

    # PostgreSQL drops the worker's session (a restart, a failover): the next task reconnects.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
    run_consensus_messages(tasks[:5])
    assert not Task.objects.filter(consensus_stale=True).exists()
