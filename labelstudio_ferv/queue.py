"""Sending work to the Celery workers: the one way any service enqueues a task.

Every caller follows the same rule: the rows the task will read are committed first, so the
message is published from ``transaction.on_commit``; a broker that is down or does not answer
never fails the request that stored the data. Each kind of work has its own catch-up path (the
consensus sweep, the stale-clip and stale-video requeues, a failed export the user retries), so a
lost message delays work but never loses it.

Tasks are named, not imported: a service module never imports a tasks module (that is what made
the import cycles), and the worker registers each task under its explicit ``name=``.

After a failed publish the broker is skipped for ``BROKER_PUBLISH_BACKOFF`` seconds and the work
is left to its catch-up path, so a broker that is down costs one request the failure, not every
request.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerUnavailable

from .celery import app

logger = logging.getLogger(__name__)

# A failed publish closes the breaker until this monotonic time (one value per process).
_skip_until = 0.0
_lock = threading.Lock()

PUBLISH_ERRORS = (BrokerUnavailable, OSError, socket.timeout, TimeoutError)


_import_lock = threading.Lock()


def _task(name: str):
    """Return the registered task called ``name`` (importing every app's tasks on first use)."""
    try:
        return app.tasks[name]
    except KeyError:
        # One thread at a time: a gthread worker's first requests all land here at once, and a
        # thread looking while another is still importing the tasks modules found none.
        with _import_lock:
            app.loader.import_default_modules()
            return app.tasks[name]


def broker_skipped() -> bool:
    """Say if a recent publish failed, so messages are not tried until the back-off ends."""
    return time.monotonic() < _skip_until


def _open_breaker() -> None:
    global _skip_until
    with _lock:
        _skip_until = time.monotonic() + settings.BROKER_PUBLISH_BACKOFF


def reset_breaker() -> None:
    """Forget a recent failure (tests, and a worker that saw the broker come back)."""
    global _skip_until
    with _lock:
        _skip_until = 0.0


def send_now(
    task_name: str,
    *args: Any,
    on_unavailable: Callable[[], None] | None = None,
    **options: Any,
) -> bool:
    """Publish one message now; say if it was sent.

    When the broker is unavailable the failure is logged, ``on_unavailable`` runs (for work
    with no catch-up path of its own) and ``False`` is returned; nothing is raised.
    """
    task = _task(task_name)
    if not task.app.conf.task_always_eager and broker_skipped():
        logger.info("broker skipped after a recent failure; %s%s left to catch-up", task_name, args)
        if on_unavailable is not None:
            on_unavailable()
        return False
    try:
        task.apply_async(args, retry=False, **options)
    except PUBLISH_ERRORS:
        _open_breaker()
        logger.warning("could not enqueue %s%s", task_name, args, exc_info=True)
        if on_unavailable is not None:
            on_unavailable()
        return False
    return True


def enqueue_on_commit(
    task_name: str,
    *args: Any,
    on_unavailable: Callable[[], None] | None = None,
    **options: Any,
) -> None:
    """Publish ``task_name(*args)`` once the current transaction commits (at once outside one).

    ``args`` are ids and JSON primitives only. ``options`` go to ``apply_async`` (``countdown``,
    ``priority``). See the module docstring for what happens when the broker is unavailable.
    """
    transaction.on_commit(
        lambda: send_now(task_name, *args, on_unavailable=on_unavailable, **options)
    )
