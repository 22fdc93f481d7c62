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


# Held while the tasks modules are imported: in a threaded web worker, a second request that
# sends a task while the first is still importing them would otherwise find its task missing
# (NotRegistered: seen with three clip uploads at once from the intake page).
_import_lock = threading.Lock()


def _task(name: str):
    """Return the registered task called ``name`` (importing every app's tasks on first use)."""
    try:
        return app.tasks[name]
    except KeyError:
        # One thread imports; the others wait for it (several threads of a fresh gunicorn
        # worker sending at once found the registry half-filled: a 500 after a stored vote).
        with _import_lock:
            if name not in app.tasks:
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


# --------------------------------------------------------------------------------------------
# One waiting message for many events


# A pending mark outlives a lost message (a broker restart, a worker killed before it started)
# by at most this long; the work it stood for is caught up by its catch-up path meanwhile.
PENDING_TTL_S = 5
_redis_client = None


def _keys(task_name: str) -> tuple[str, str]:
    """The pending mark and the set of waiting items of a task (per queue)."""
    base = f"lsf:pending:{app.conf.task_default_queue}:{task_name}"
    return base, base + ":items"


def _redis():
    """The broker's Redis, for the pending marks (None when the broker is not Redis)."""
    global _redis_client
    if _redis_client is None:
        url = app.conf.broker_url or ""
        if not url.startswith(("redis://", "rediss://")):
            return None
        import redis

        timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("socket_timeout", 1.0)
        _redis_client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
    return _redis_client


def send_once(task_name: str, *items: int, **options: Any) -> bool:
    """Add ``items`` to the task's waiting set and publish ``task_name()`` unless a message is
    already waiting; say if the items are in the broker's hands.

    Without a Redis broker (eager tasks, the embedded default) the message carries the items:
    ``task_name(items)``.
    """
    client = None if _task(task_name).app.conf.task_always_eager else _redis()
    if client is None:
        return send_now(task_name, list(items), **options)
    if broker_skipped():
        return False
    mark, waiting = _keys(task_name)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.sadd(waiting, *items)
        pipe.set(mark, 1, nx=True, ex=PENDING_TTL_S)
        _, first = pipe.execute()
    except Exception:
        _open_breaker()
        logger.warning("could not add %s%s to the waiting set", task_name, items, exc_info=True)
        return False
    if not first:
        return True  # a message is waiting, and takes the items when it starts
    if send_now(task_name, **options):
        return True
    try:
        client.delete(mark)  # the next event tries again (the breaker is open meanwhile)
    except Exception:
        logger.warning("could not clear the pending mark of %s", task_name, exc_info=True)
    return False


def enqueue_once_on_commit(task_name: str, item: int, **options: Any) -> None:
    """After commit, hand ``item`` (an id) to ``task_name``, publishing a message only when none
    is waiting: one message does for every item added before its task starts.

    The task calls ``pending_taken(task_name)`` first thing: it clears the pending mark, then
    takes the waiting items, so an item added after that sends a new message. Items lost with
    the broker are left to the work's catch-up path, as with ``enqueue_on_commit``.
    """
    transaction.on_commit(lambda: send_once(task_name, item, **options))


def pending_taken(task_name: str) -> list[int]:
    """Clear the task's pending mark, then take and return its waiting items."""
    client = _redis()
    if client is None:
        return []
    mark, waiting = _keys(task_name)
    try:
        client.delete(mark)
        pipe = client.pipeline(transaction=True)
        pipe.smembers(waiting)
        pipe.delete(waiting)
        members, _ = pipe.execute()
    except Exception:
        logger.warning("could not take the waiting items of %s", task_name, exc_info=True)
        return []
    return sorted(int(m) for m in members)
