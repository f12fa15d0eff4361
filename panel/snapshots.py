"""This process's routing snapshot (SPEC §6): built on first use, swapped atomically when data changed.

Routing reads only the snapshot. `get_snapshot()` returns the current one (building it on first use);
`rebuild()` builds a new one from the database and publishes it; `publish(snapshot)` swaps it in. A route in
flight keeps the object it took, so a swap never disturbs it: readers take one reference and never see a
half-built snapshot.
"""

from __future__ import annotations

import gc
import threading

from flask import current_app

from panel.extensions import db
from panel.routing.build import build_snapshot
from panel.routing.snapshot import Snapshot

# From this size on a built snapshot is moved out of the cyclic collector's reach (see _build).
FREEZE_FROM_RATES = 200_000


class _Holder:
    """The snapshot of one app (tests create many apps in one process) and the lock of its builds."""

    __slots__ = ("snapshot", "lock")

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        # One build at a time per process; readers never wait for it once a snapshot exists.
        self.lock = threading.Lock()


def _holder() -> _Holder:
    """The current app's holder, created on first use."""
    holder = current_app.extensions.get("routing_snapshot")
    if holder is None:
        holder = current_app.extensions.setdefault("routing_snapshot", _Holder())
    return holder


def get_snapshot() -> Snapshot:
    """The current snapshot of this process, built from the database on first use."""
    holder = _holder()
    snapshot = holder.snapshot
    if snapshot is not None:
        return snapshot
    with holder.lock:
        if holder.snapshot is None:
            holder.snapshot = _build()
        return holder.snapshot


def rebuild() -> Snapshot:
    """Build a snapshot from the database now and publish it; returns it."""
    holder = _holder()
    with holder.lock:
        snapshot = _build()
        holder.snapshot = snapshot
        return snapshot


def publish(snapshot: Snapshot) -> None:
    """Make `snapshot` the one new routes use (a single reference assignment: atomic)."""
    _holder().snapshot = snapshot


def current() -> Snapshot | None:
    """The published snapshot, or None when none was built yet (never builds)."""
    return _holder().snapshot


def _build() -> Snapshot:
    """Build from the app's database in one read."""
    min_calls = int(current_app.config.get("QUALITY_MIN_CALLS", 0) or 0)
    snapshot = build_snapshot(db.engine, quality_min_calls=min_calls)
    if snapshot.counts.get("rates", 0) >= FREEZE_FROM_RATES:
        # A big snapshot is millions of long-lived objects that form no reference cycles (reference counting
        # frees them when the next one replaces them): keep the cyclic collector from walking them at every
        # full collection, which would stall routes for tens of milliseconds each time.
        gc.freeze()
    return snapshot
