"""kill -9 under load, repeated: devices stream packets at 2,000/s over UDP while the police
server is SIGKILLed mid-commit, restarted on the same database, and killed again; after each
restart every packet it had acked must be stored, and every one it had not is resent and must
be acked. SQLite, and PostgreSQL where installed. Figures to docs/reliability.md."""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from urelief.bench import publish
from urelief.bench.server import Load, bench_server, pg_scratch, provision, throwaway_postgres

KILLS = 5
RATE = 2000  # packets/s offered


def stored_keys(db_url: str) -> set[tuple[int, int]]:
    from sqlalchemy import create_engine, select

    from urelief.registry.models import DevicePacket

    engine = create_engine(db_url)
    with engine.connect() as c:
        keys = {tuple(r) for r in c.execute(select(DevicePacket.device_id, DevicePacket.counter))}
    engine.dispose()
    return keys


def run(db_url: str, work: Path) -> dict:
    devices = provision(db_url, 20)
    server = bench_server(db_url, work).start()
    load = Load(devices, server.udp)
    acked_total = lost_total = retried = retried_unacked = bad = 0
    try:
        for _ in range(KILLS):
            pkts = load.packets(3000)
            load.open(server.udp)
            load.acked.clear()
            t0, sent, killed_at = time.perf_counter(), 0, None
            while sent < len(pkts):
                due = min(len(pkts), int((time.perf_counter() - t0) * RATE))
                while sent < due:
                    load.send(*pkts[sent])
                    sent += 1
                if killed_at is None and len(load.acked) >= 1000:
                    server.kill()  # SIGKILL: no shutdown, no flush, mid-commit
                    killed_at = sent
                time.sleep(0.002)
                if killed_at is not None and sent >= killed_at + 300:
                    break
            time.sleep(0.2)
            acked = set(load.acked)
            server.start()
            lost = acked - stored_keys(db_url)
            retry = [(k, pkt) for k, pkt in pkts[:sent] if k not in acked]
            load.open(server.udp)
            deadline = time.perf_counter() + 30
            while load.resend_unacked(retry) and time.perf_counter() < deadline:
                time.sleep(0.3)
            acked_total += len(acked)
            lost_total += len(lost)
            retried += len(retry)
            retried_unacked += sum(1 for k, _ in retry if k not in load.acked)
        bad = load.bad_acks
        load.close()
    finally:
        server.stop()
    return {"kills": KILLS, "acked": acked_total, "lost": lost_total, "retried": retried,
            "retried_unacked": retried_unacked, "bad_acks": bad}


def _report(backend: str, r: dict) -> None:
    print(f"kill -9 under load, {backend}: {r['kills']} kills at {RATE}/s, {r['acked']:,} packets "
          f"acked before a kill, {r['lost']} of them lost; {r['retried']:,} unacked resent, "
          f"{r['retried_unacked']} never acked; bad acks {r['bad_acks']}")
    publish.figure(f"kill -9 under load, {backend}: acked packets lost",
                   f"{r['lost']} of {r['acked']:,} over {r['kills']} kills", goal="0",
                   met=r["lost"] == 0, doc=publish.RELIABILITY)
    publish.figure(f"kill -9 under load, {backend}: unacked packets resent and then acked",
                   f"{r['retried'] - r['retried_unacked']:,} of {r['retried']:,}",
                   goal="all", met=r["retried_unacked"] == 0, doc=publish.RELIABILITY)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="urelief-bench-crash-") as tmp:
        work = Path(tmp)
        _report("SQLite", run(f"sqlite:///{work / 'crash.db'}", work))
        with ExitStack() as stack:
            pg = os.environ.get("URELIEF_TEST_PG_URL") or stack.enter_context(throwaway_postgres())
            if not pg:
                print("kill -9 under load, PostgreSQL: not installed")
                return
            url, drop = pg_scratch(pg)
            try:
                (work / "pg").mkdir()
                _report("PostgreSQL", run(url, work / "pg"))
            finally:
                drop()


if __name__ == "__main__":
    main()
