"""Group commit: one thread owns the write path; packets queue up while a commit is in flight and
the next transaction takes all of them. An item's future resolves only after the COMMIT that
holds it returned (SQLite WAL with synchronous=FULL, or PostgreSQL's default fsync), so an ack
sent on that future is never an ack for something a crash can lose.

A failing batch is retried item by item, so one bad row cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine

from urelief.server import logs, metrics

Flush = Callable[[Connection, Sequence[Any]], Sequence[Any]]

_STOP = object()


class GroupWriter:
    def __init__(self, engine: Engine, flush: Flush, batch_max: int = 512, name: str = "writer"):
        self.engine = engine
        self.flush = flush
        self.batch_max = batch_max
        self.name = name
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.commits = 0
        self.rows = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread and self._thread.is_alive():
            self._q.put(_STOP)
            self._thread.join(timeout)

    def submit(self, item: Any) -> asyncio.Future:
        """From the event loop: the future gets flush()'s result for this item, after commit."""
        assert self._loop is not None, "writer not started"
        fut = self._loop.create_future()
        self._q.put((item, fut))
        return fut

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._q.get()
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < self.batch_max:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: list) -> None:
        items = [b[0] for b in batch]
        futs = [b[1] for b in batch]
        t0 = time.perf_counter()
        try:
            with self.engine.begin() as conn:
                results = list(self.flush(conn, items))
            outcomes: list[tuple[bool, Any]] = [(True, r) for r in results]
        except Exception as e:  # isolate the bad item(s): one transaction each
            if len(items) == 1:
                logs.event("commit_failed", level=40, error=repr(e))
                outcomes = [(False, e)]
            else:
                outcomes = []
                for it in items:
                    try:
                        with self.engine.begin() as conn:
                            outcomes.append((True, self.flush(conn, [it])[0]))
                    except Exception as e1:
                        logs.event("commit_failed", level=40, error=repr(e1))
                        outcomes.append((False, e1))
        dt = time.perf_counter() - t0
        self.commits += 1
        self.rows += len(items)
        metrics.COMMIT_BATCH.observe(len(items))
        metrics.COMMIT_SECONDS.observe(dt)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(_resolve, futs, outcomes)


def _resolve(futs: list[asyncio.Future], outcomes: list[tuple[bool, Any]]) -> None:
    for fut, (ok, value) in zip(futs, outcomes, strict=True):
        if fut.done():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
