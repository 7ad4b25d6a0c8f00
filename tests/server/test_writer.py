"""The group writer in-process: one item's failure fails only that item, and a writer thread
that dies is started again by the supervisor's `ensure_running`."""

from __future__ import annotations

import asyncio

import pytest
from urelief.server.writer import GroupWriter, StoreFailed


class Runner:
    """A runner with faults on chosen items: 'bug' raises inside the batch (caught), 'die'
    raises SystemExit, which ends the writer thread as an uncaught fault would."""

    def __init__(self):
        self.seen: list = []

    def __call__(self, items):
        self.seen.extend(items)
        if "die" in items:
            raise SystemExit("writer thread killed")
        if "bug" in items:
            raise RuntimeError("a bug in the commit")
        return [(True, it) for it in items]

    def close(self):
        pass


async def _roundtrip(w: GroupWriter, item):
    return await asyncio.wait_for(w.submit(item), 5)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_failures_stay_with_their_item_and_a_dead_thread_restarts():
    async def main():
        w = GroupWriter(Runner(), batch_max=1)
        w.start(asyncio.get_running_loop())
        assert await _roundtrip(w, "a") == "a"
        with pytest.raises(StoreFailed):
            await _roundtrip(w, "bug")
        assert await _roundtrip(w, "b") == "b" and w.alive()
        with pytest.raises(StoreFailed):  # the future is failed, not left hanging
            await _roundtrip(w, "die")
        for _ in range(100):
            if not w.alive():
                break
            await asyncio.sleep(0.01)
        assert not w.alive()
        assert w.ensure_running() and w.alive()
        assert await _roundtrip(w, "c") == "c"
        st = w.status()
        assert st["restarts"] == 1 and st["failed_batches"] == 2 and st["last_error"]
        w.stop()

    asyncio.run(main())


def test_writer_child_faults_fail_one_batch_and_the_child_comes_back(tmp_path, monkeypatch):
    """The real child process: its StoreFailed unpickles in the parent (it once was
    `__main__.StoreFailed`, which killed the writer thread), an answer that cannot be pickled
    fails only its batch, and a child that died is started again for the next batch."""
    from pathlib import Path

    from urelief.server.writer import ProcessRunner

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    r = ProcessRunner(f"sqlite:///{tmp_path / 'w.db'}", "writer_faults:flush")
    try:
        assert r(["a"]) == [(True, "a")]
        (ok, err), = r(["bug"])
        assert not ok and type(err) is StoreFailed and "a bug" in str(err)
        (ok, err), = r(["unpicklable"])
        assert not ok and type(err) is StoreFailed
        pid = r.pid
        (ok, err), = r(["die"])
        assert not ok and type(err) is StoreFailed
        assert r(["b"]) == [(True, "b")] and r.pid != pid and r.restarts == 1
        assert "lost" in r.last_error
    finally:
        r.close()


class _Deadlock(Exception):
    sqlstate = "40P01"  # as psycopg's DeadlockDetected carries it


def test_a_batch_the_database_aborted_as_a_deadlock_victim_is_run_again_whole(tmp_path):
    """PostgreSQL rolls a deadlock victim back whole: the same batch runs again (one
    transaction, every item stored) instead of failing or being split item by item."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError
    from urelief.server.writer import TRANSIENT_RETRIES, run_batch

    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as c:
        c.execute(text("CREATE TABLE t (v TEXT)"))
    calls = []

    def flush(conn, items):
        calls.append(list(items))
        conn.execute(text("INSERT INTO t VALUES (:v)"), [{"v": v} for v in items])
        if len(calls) <= TRANSIENT_RETRIES:
            raise OperationalError("UPDATE devices", {}, _Deadlock("deadlock detected"))
        return items

    assert run_batch(engine, flush, ["a", "b", "c"]) == [(True, "a"), (True, "b"), (True, "c")]
    assert calls == [["a", "b", "c"]] * (TRANSIENT_RETRIES + 1)
    with engine.connect() as c:  # the aborted tries left nothing behind
        assert c.execute(text("SELECT v FROM t ORDER BY v")).scalars().all() == ["a", "b", "c"]
    engine.dispose()
