"""The one lease a worker holds on the row it works on: a clip's transcode, a source video's
pipeline stage, an export.

A worker claims the row with a conditional UPDATE (of two deliveries racing, exactly one gets
the row): a free row, or a held one whose heartbeat is older than the lease (its worker died).
While it works it renews the heartbeat. The heartbeat it wrote last is its fencing token: every
later write is conditional on it, so a worker that was presumed dead and replaced learns so at
its next write (LeaseLost) and stops instead of writing over its successor.

Every time here is the database's clock (``db_now``, ``Now()``): the worker that stamps a
heartbeat and the one that judges it expired may run on hosts whose clocks disagree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, models
from django.db.models import DateTimeField, ExpressionWrapper, Q
from django.db.models.functions import Now
from django.utils import timezone

# A held row whose heartbeat is older than this belongs to a worker that died (or lost its
# database): another delivery may claim it. Workers renew it every HEARTBEAT_S at most.
LEASE_S = 120
HEARTBEAT_S = 2.0


class LeaseLost(Exception):
    """Another worker took the row over (this one was presumed dead), or the row changed."""


def db_now() -> datetime:
    """Return the database's clock (the process clock on SQLite, which runs in-process)."""
    if connection.vendor != "postgresql":
        return timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def cutoff(seconds: float) -> ExpressionWrapper:
    """The database's clock ``seconds`` ago, as an expression for a filter."""
    return ExpressionWrapper(Now() - timedelta(seconds=seconds), output_field=DateTimeField())


def expired(*, beat_field: str = "heartbeat_at", lease_s: float = LEASE_S) -> Q:
    """Match rows whose heartbeat is missing or older than ``lease_s`` by the database's clock."""
    return Q(**{f"{beat_field}__lt": cutoff(lease_s)}) | Q(**{f"{beat_field}__isnull": True})


def is_live(beat: datetime | None, *, lease_s: float = LEASE_S) -> bool:
    """Return whether a heartbeat is fresh (by the database's clock): its worker is alive."""
    return beat is not None and beat >= db_now() - timedelta(seconds=lease_s)


@dataclass
class Lease:
    """A claimed row: every write is conditional on the heartbeat this holder wrote last."""

    model: type[models.Model]
    pk: int
    beat_at: datetime
    beat_field: str = "heartbeat_at"
    # What else the row must still hold for the lease to be ours (a stage, a status).
    match: dict[str, Any] = field(default_factory=dict)
    # Fields stamped with the heartbeat's time at every renewal (e.g. ``updated_at``).
    stamps: tuple[str, ...] = ()
    every_s: float = HEARTBEAT_S
    written: float = field(default_factory=time.monotonic)

    def guard(self) -> Q:
        return Q(pk=self.pk, **{self.beat_field: self.beat_at}, **self.match)

    def update(self, **fields: Any) -> bool:
        """Write ``fields`` if the lease is still ours; return whether it was."""
        return bool(self.model._default_manager.filter(self.guard()).update(**fields))

    def beat(self, *, force: bool = False, **fields: Any) -> None:
        """Renew the heartbeat (with ``fields``), at most every ``every_s`` unless forced.

        Raise LeaseLost when the row is no longer ours.
        """
        now = time.monotonic()
        if not force and now - self.written < self.every_s:
            return
        beat = db_now()  # the token: the exact value written, on the clock every reader uses
        stamped = {name: beat for name in (self.beat_field, *self.stamps)}
        if not self.update(**fields, **stamped):
            raise LeaseLost()
        self.beat_at, self.written = beat, now


def claim(
    model: type[models.Model],
    *,
    pk: int,
    free: Q,
    held: Q,
    fields: dict[str, Any],
    match: dict[str, Any] | None = None,
    keep: tuple[str, ...] = (),
    beat_field: str = "heartbeat_at",
    stamps: tuple[str, ...] = (),
    lease_s: float = LEASE_S,
    every_s: float = HEARTBEAT_S,
) -> Lease | None:
    """Claim row ``pk`` when it is ``free``, or ``held`` by a worker that stopped beating.

    ``fields`` are written by the claim (the held status, a run counter); ``match`` narrows the
    row (e.g. a stage) and, with the ``keep`` fields of ``fields``, stays part of the lease's
    guard. Return the lease, or None when the row is gone, not claimable, or another worker
    won the race.
    """
    now = db_now()
    match = dict(match or {})
    stamped = {name: now for name in (beat_field, *stamps)}
    # The conditional update is the lock: of two deliveries only one gets the row, and a held
    # row is taken over only when its worker stopped beating.
    claimed = (
        model._default_manager.filter(pk=pk, **match)
        .filter(free | (held & expired(beat_field=beat_field, lease_s=lease_s)))
        .update(**fields, **stamped)
    )
    if not claimed:
        return None
    guard = {**match, **{name: fields[name] for name in keep}}
    return Lease(
        model=model,
        pk=pk,
        beat_at=now,
        beat_field=beat_field,
        match=guard,
        stamps=stamps,
        every_s=every_s,
    )
