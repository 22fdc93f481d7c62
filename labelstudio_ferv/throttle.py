"""Limits on failed logins, per username and per client address, shared by the API and the form.

After ``LOGIN_FAILURES_PER_USERNAME`` failures for one username, or
``LOGIN_FAILURES_PER_ADDRESS`` from one client address, within a window of
``LOGIN_FAILURE_WINDOW_SECONDS``, every login attempt for that username or from that address is
refused until the window ends, the right password included: otherwise a guesser learns the
password the moment it is found. Successful logins are not counted.

The counts live in Django's cache: Redis when ``CACHE_URL`` is set (one count for every web
process), else each process's memory (each process then counts on its own, so the limits are
per process). A cache that fails does not stop logins: the attempt is let through and logged.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)


def client_address(request: HttpRequest) -> str:
    """Return the client's address: a trusted proxy's header when configured, else the peer."""
    if settings.CLIENT_ADDRESS_HEADER:
        forwarded = request.META.get(settings.CLIENT_ADDRESS_HEADER, "")
        # X-Forwarded-For lists the hops; the last one is what the trusted proxy saw.
        address = forwarded.split(",")[-1].strip()
        if address:
            return address
    return request.META.get("REMOTE_ADDR", "")


def _buckets(request: HttpRequest, username: str) -> tuple[list[tuple[str, int]], float]:
    """Return the cache keys of this window with their limits, and the seconds left in it."""
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    now = time.time()
    index = int(now // window)
    name = hashlib.sha256(username.strip().casefold().encode("utf-8", "replace")).hexdigest()[:32]
    address = hashlib.sha256(client_address(request).encode()).hexdigest()[:32]
    keys = [
        (f"lsf:login-failures:user:{name}:{index}", settings.LOGIN_FAILURES_PER_USERNAME),
        (f"lsf:login-failures:addr:{address}:{index}", settings.LOGIN_FAILURES_PER_ADDRESS),
    ]
    return keys, (index + 1) * window - now


def login_retry_after(*, request: HttpRequest, username: str) -> int | None:
    """Return how many seconds to wait before a login for ``username`` may be tried, or None."""
    keys, left = _buckets(request, username)
    try:
        counts = cache.get_many([key for key, _ in keys])
    except Exception:  # noqa: BLE001 - a sick cache must not lock everyone out
        logger.warning("login throttle: cache unavailable, attempt allowed", exc_info=True)
        return None
    if any(counts.get(key, 0) >= limit for key, limit in keys):
        return max(1, math.ceil(left))
    return None


def login_failed(*, request: HttpRequest, username: str) -> None:
    """Count one failed login for ``username`` and the client's address."""
    keys, left = _buckets(request, username)
    timeout = math.ceil(left) + 1
    try:
        for key, _ in keys:
            if not cache.add(key, 1, timeout=timeout):
                cache.incr(key)
    except Exception:  # noqa: BLE001 - see login_retry_after
        logger.warning("login throttle: cache unavailable, failure not counted", exc_info=True)
