"""The Celery application, configured from Django settings (the CELERY_ namespace)."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelstudio_ferv.settings")

app = Celery("labelstudio_ferv")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connections(task=None, **kwargs) -> None:
    """Around each task, what Django does around each request: a connection that broke or
    outlived ``CONN_MAX_AGE`` is closed (and reopened on next use), a healthy one is kept.

    Celery's own Django fix-up closes the connection after every task (settings.py turns that
    off with ``CELERY_DB_REUSE_MAX``), which costs PostgreSQL a new session per task. An eager
    task runs inside the caller's request and transaction, so it is left alone.
    """
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
