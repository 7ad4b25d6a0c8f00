"""Group commit: one thread owns the write path; packets queue up while a commit is in flight and
the next transaction takes all of them. An item's future resolves only after the COMMIT that
holds it returned (SQLite WAL with synchronous=FULL, or PostgreSQL's default fsync), so an ack
sent on that future is never an ack for something a crash can lose.

A failing batch is retried item by item, so one bad row cannot fail its neighbours.

The transaction itself runs in a child process by default (`ProcessRunner`): SQLAlchemy's
per-row work is Python, and in the server's process it would hold the GIL for milliseconds at a
time, starving the event loop that verifies and acks. The writer thread only ships a batch down a
pipe and waits (GIL released). A child that outlives a killed parent sees EOF and exits.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection as Pipe
from typing import Any

from sqlalchemy import Connection, Engine

from urelief.server import logs, metrics

Flush = Callable[[Connection, Sequence[Any]], Sequence[Any]]

_STOP = object()


class AlreadyStored(Exception):
    """The row exists (unique constraint): a copy of a packet stored earlier."""


class StoreFailed(Exception):
    pass


Outcomes = list[tuple[bool, Any]]


def run_batch(engine: Engine, flush: Flush, items: Sequence[Any]) -> Outcomes:
    """One transaction for the batch; on failure, one per item. Errors come back as values
    (picklable): AlreadyStored for a unique-constraint hit, StoreFailed otherwise."""
    from sqlalchemy.exc import IntegrityError

    try:
        with engine.begin() as conn:
            return [(True, r) for r in flush(conn, items)]
    except Exception as e:
        if len(items) == 1:
            err = e
        else:
            out: Outcomes = []
            for it in items:
                out.extend(run_batch(engine, flush, [it]))
            return out
    if isinstance(err, IntegrityError):
        return [(False, AlreadyStored(str(err.orig)[:200]))]
    logs.event("commit_failed", level=40, error=repr(err))
    return [(False, StoreFailed(repr(err)[:300]))]


class ThreadRunner:
    """Runs the transaction in the writer thread (tests, tools, tiny deployments)."""

    def __init__(self, engine: Engine, flush: Flush):
        self.engine, self.flush = engine, flush

    def __call__(self, items: Sequence[Any]) -> Outcomes:
        return run_batch(self.engine, self.flush, items)

    def close(self) -> None:
        pass


class ProcessRunner:
    """Runs the transaction in a child process (`python -m urelief.server.writer`) with its own
    engine, over a socketpair. `flush` is named as "module:function" so the child imports it."""

    def __init__(self, db_url: str, flush_path: str):
        parent, child = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "urelief.server.writer", str(child.fileno()), flush_path],
            pass_fds=[child.fileno()], env={**os.environ, "URELIEF_WRITER_DB_URL": db_url})
        child.close()
        self._conn = Pipe(parent.detach())
        ok = self._conn.recv()  # the child says hello once its engine is up
        if ok is not True:
            raise RuntimeError(f"writer process failed to start: {ok}")

    def __call__(self, items: Sequence[Any]) -> Outcomes:
        try:
            self._conn.send(list(items))
            return self._conn.recv()
        except (EOFError, OSError) as e:
            logs.event("writer_process_lost", level=50, error=repr(e))
            return [(False, StoreFailed("writer process lost"))] * len(items)

    def close(self) -> None:
        try:
            self._conn.send(None)
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _child_main(fd: int, flush_path: str) -> None:
    from urelief.registry.db import Database

    conn = Pipe(fd)
    try:
        mod, _, fn = flush_path.partition(":")
        flush = getattr(importlib.import_module(mod), fn)
        db = Database(os.environ["URELIEF_WRITER_DB_URL"])
        conn.send(True)
    except Exception as e:  # tell the parent, do not hang it
        conn.send(repr(e))
        return
    while True:
        try:
            items = conn.recv()
        except (EOFError, OSError):
            break  # the server is gone (even kill -9): nothing to ack, stop
        if items is None:
            break
        conn.send(run_batch(db.engine, flush, items))
    db.dispose()


class GroupWriter:
    def __init__(self, runner, batch_max: int = 512, name: str = "writer"):
        self.runner = runner
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
        self.runner.close()

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
        t0 = time.perf_counter()
        outcomes = self.runner([b[0] for b in batch])
        self.commits += 1
        self.rows += len(batch)
        metrics.COMMIT_BATCH.observe(len(batch))
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - t0)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(_resolve, [b[1] for b in batch], outcomes)


def _resolve(futs: list[asyncio.Future], outcomes: Outcomes) -> None:
    for fut, (ok, value) in zip(futs, outcomes, strict=True):
        if fut.done():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


if __name__ == "__main__":  # the writer child: python -m urelief.server.writer FD MODULE:FLUSH
    _child_main(int(sys.argv[1]), sys.argv[2])
