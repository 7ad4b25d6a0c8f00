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

from urelief.server import gcsettle, logs, metrics

Flush = Callable[[Connection, Sequence[Any]], Sequence[Any]]

_STOP = object()


class AlreadyStored(Exception):
    """The row exists (unique constraint): a copy of a packet stored earlier."""


class StoreFailed(Exception):
    pass


Outcomes = list[tuple[bool, Any]]
TRANSIENT_RETRIES = 3  # a batch the database aborted as a deadlock victim is run again

# SQLSTATE 40001 serialization_failure, 40P01 deadlock_detected (PostgreSQL): the transaction
# was rolled back whole and can simply run again.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})


def _transient(e: Exception) -> bool:
    return getattr(getattr(e, "orig", None), "sqlstate", None) in _TRANSIENT_SQLSTATES


def run_batch(engine: Engine, flush: Flush, items: Sequence[Any]) -> Outcomes:
    """One transaction for the batch (run again if the database aborted it as a deadlock
    victim); on failure, one per item. Errors come back as values (picklable): AlreadyStored
    for a unique-constraint hit, StoreFailed otherwise."""
    from sqlalchemy.exc import IntegrityError

    err: Exception | None = None
    for attempt in range(TRANSIENT_RETRIES + 1):
        try:
            with engine.begin() as conn:
                return [(True, r) for r in flush(conn, items)]
        except Exception as e:
            err = e
            if not (attempt < TRANSIENT_RETRIES and _transient(e)):
                break
    if len(items) > 1:
        out: Outcomes = []
        for it in items:
            out.extend(run_batch(engine, flush, [it]))
        return out
    if isinstance(err, IntegrityError) and "unique" in str(err.orig).lower():
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
    engine, over a socketpair. `flush` is named as "module:function" so the child imports it.
    A child that died (killed, out of memory) fails the batch it had and is started again for
    the next one; `restarts` counts that, `last_error` says why."""

    def __init__(self, db_url: str, flush_path: str):
        self.db_url, self.flush_path = db_url, flush_path
        self.restarts = 0
        self.last_error: str | None = None
        self.proc: subprocess.Popen | None = None
        self._conn: Pipe | None = None
        self._spawn()

    def _spawn(self) -> None:
        parent, child = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "urelief.server.writer", str(child.fileno()),
             self.flush_path],
            pass_fds=[child.fileno()], env={**os.environ, "URELIEF_WRITER_DB_URL": self.db_url})
        child.close()
        self._conn = Pipe(parent.detach())
        ok = self._conn.recv()  # the child says hello once its engine is up
        if ok is not True:
            raise RuntimeError(f"writer process failed to start: {ok}")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _lost(self, why: str) -> None:
        self.last_error = why
        logs.event("writer_process_lost", level=50, error=why)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def __call__(self, items: Sequence[Any]) -> Outcomes:
        if self._conn is None or not self.alive():
            if self._conn is not None:
                self._lost(f"writer process exited ({self.proc.returncode if self.proc else '?'})")
            try:
                self._spawn()
                self.restarts += 1
                logs.event("writer_process_restarted", level=30, restarts=self.restarts)
            except Exception as e:
                self._lost(f"restart failed: {e!r}"[:300])
                return [(False, StoreFailed("writer process down"))] * len(items)
        assert self._conn is not None
        try:
            self._conn.send(list(items))
            out = self._conn.recv()
        except (EOFError, OSError) as e:
            self._lost(f"writer process lost: {e!r}"[:300])
            return [(False, StoreFailed("writer process lost"))] * len(items)
        except Exception as e:  # an answer this process cannot read: fail the batch, go on
            self.last_error = f"unreadable answer: {e!r}"[:300]
            logs.event("writer_answer_unreadable", level=40, error=self.last_error)
            return [(False, StoreFailed(self.last_error))] * len(items)
        if not isinstance(out, list) or len(out) != len(items):
            return [(False, StoreFailed("writer answered out of step"))] * len(items)
        return out

    def close(self) -> None:
        if self._conn is None:
            return
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
        gcsettle.settle()  # its modules and engine, out of the collector's sight
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
        try:
            out = run_batch(db.engine, flush, items)
            conn.send(out)
        except (EOFError, OSError):
            break
        except Exception as e:  # a bug, or an answer that cannot be pickled: fail this batch
            logs.event("writer_batch_error", level=40, error=repr(e)[:300])
            conn.send([(False, StoreFailed(repr(e)[:300]))] * len(items))
    db.dispose()


class GroupWriter:
    def __init__(self, runner, batch_max: int = 512, name: str = "writer"):
        self.runner = runner
        self.batch_max = batch_max
        self.name = name
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self.commits = 0
        self.rows = 0
        self.restarts = 0  # writer threads started again after one died
        self.failed_batches = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None  # Unix time

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def ensure_running(self) -> bool:
        """Start the thread again if it died (the supervisor calls this): True if it did."""
        if self._stopped or self._loop is None or self.alive():
            return False
        self.restarts += 1
        self._note_error("writer thread died")
        logs.event("writer_restarted", level=50, restarts=self.restarts)
        self.start(self._loop)
        return True

    def status(self) -> dict:
        r = self.runner
        return {"alive": self.alive(), "commits": self.commits, "rows": self.rows,
                "failed_batches": self.failed_batches,
                "restarts": self.restarts + getattr(r, "restarts", 0),
                "process": getattr(r, "pid", None),
                "last_error": self.last_error or getattr(r, "last_error", None),
                "last_error_at": self.last_error_at}

    def _note_error(self, why: str) -> None:
        self.last_error, self.last_error_at = why[:300], time.time()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped = True
        if self._thread and self._thread.is_alive():
            self._q.put(_STOP)
            self._thread.join(timeout)
        self.runner.close()

    def submit(self, item: Any, done: Callable[[bool, Any], object] | None = None
               ) -> asyncio.Future | None:
        """From the event loop: after the commit, flush()'s result for this item, in the loop:
        as a future, or (cheaper under load: no future and no loop turn per item) as
        done(ok, result or exception), called from the batch's one callback."""
        assert self._loop is not None, "writer not started"
        target = self._loop.create_future() if done is None else done
        self._q.put((item, target))
        return target if done is None else None

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
            try:
                self._commit(batch)
            except BaseException as e:  # never leave a future hanging, even as the thread dies
                self.failed_batches += 1
                self._note_error(f"batch failed: {e!r}")
                logs.event("writer_batch_failed", level=50, error=repr(e)[:300])
                self._post([b[1] for b in batch],
                           [(False, StoreFailed(repr(e)[:300]))] * len(batch))
                if not isinstance(e, Exception):
                    raise

    def _commit(self, batch: list) -> None:
        t0 = time.perf_counter()
        outcomes = self.runner([b[0] for b in batch])
        self.commits += 1
        self.rows += len(batch)
        metrics.COMMIT_BATCH.observe(len(batch))
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - t0)
        self._post([b[1] for b in batch], outcomes)

    def _post(self, futs: list, outcomes: Outcomes) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(_resolve, futs, outcomes)


def _resolve(targets: list, outcomes: Outcomes) -> None:
    for target, (ok, value) in zip(targets, outcomes, strict=True):
        if not ok and not isinstance(value, Exception):
            value = StoreFailed(repr(value))
        if not isinstance(target, asyncio.Future):
            try:
                target(ok, value)
            except Exception as e:  # one item's handling never stops its batch's others
                logs.event("commit_callback_failed", level=40, error=repr(e)[:300])
            continue
        if target.done():
            continue
        if ok:
            target.set_result(value)
        else:
            target.set_exception(value)


if __name__ == "__main__":  # the writer child: python -m urelief.server.writer FD MODULE:FLUSH
    # Run the module's own copy, not __main__'s: the exceptions it sends back must be
    # urelief.server.writer.StoreFailed, which the parent can unpickle.
    from urelief.server import writer as _writer

    _writer._child_main(int(sys.argv[1]), sys.argv[2])
