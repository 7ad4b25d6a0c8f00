"""The garbage collector kept off the ack path. Once a server process has started, its objects
live as long as it does (~150 k: the modules of FastAPI, SQLAlchemy, pydantic and cryptography,
the routes, the schema); a full collection scanned them all, 65-75 ms on the 2-core bench box,
and every datagram waiting meanwhile was acked that much later (the SQLite p99 at 1 k/s).
Frozen after start, they are never scanned again; a full collection then walks only what the
process has allocated since (bench/server.py measures the p99)."""

from __future__ import annotations

import gc

from urelief.server import metrics


def settle() -> int:
    """Collect once, then move every surviving object out of the collector's sight; the number
    moved (also exported as urelief_gc_frozen_objects)."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    metrics.GC_FROZEN.set(frozen)
    return frozen
