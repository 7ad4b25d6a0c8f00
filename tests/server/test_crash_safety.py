"""Crash safety: kill -9 the server while devices stream packets over UDP. After a restart on
the same database, every packet that was acked is stored, and every packet that was not can be
resent and is acked then (nothing lost, nothing wrongly called a replay)."""

from __future__ import annotations

import time

import pytest
from urelief.bench.crash import stored_keys
from urelief.bench.server import Load, bench_server, provision

pytestmark = pytest.mark.slow


def test_kill_9_under_load_loses_no_acked_packet(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'crash.db'}"
    devices = provision(db_url, 20)
    server = bench_server(db_url, tmp_path).start()
    load = Load(devices, server.udp)
    pkts = load.packets(6000)

    def stream_and_kill() -> int | None:
        load.open()
        t0 = time.perf_counter()
        sent = 0
        killed_at = None
        while sent < len(pkts):
            due = min(len(pkts), int((time.perf_counter() - t0) * 2000))  # 2,000 packets/s
            while sent < due:
                load.send(*pkts[sent])
                sent += 1
            if killed_at is None and len(load.acked) >= 1500:
                server.kill()  # SIGKILL: no shutdown, no flush, mid-commit
                killed_at = sent
            time.sleep(0.002)
            if killed_at is not None and sent >= killed_at + 500:
                break  # some more packets into the void, as a device would
        time.sleep(0.2)
        return killed_at

    try:
        killed_at = stream_and_kill()
        assert killed_at is not None, "the server never got to 1,500 acks"
        acked_before = set(load.acked)
        assert len(acked_before) >= 1500

        server.start()  # same database
        stored = stored_keys(db_url)
        lost = acked_before - stored
        assert not lost, f"{len(lost)} acked packets missing after the crash, e.g. {sorted(lost)[:5]}"

        # The devices retry everything unacked: each must now be acked (stored or stored now).
        retry = [(k, pkt) for k, pkt in pkts[:killed_at + 500] if k not in acked_before]
        assert retry, "the kill came after every packet was acked: nothing was in flight"
        load.open(server.udp)
        deadline = time.perf_counter() + 30
        while load.resend_unacked(retry) and time.perf_counter() < deadline:
            time.sleep(0.3)
        load.close()
        assert all(k in load.acked for k, _ in retry), "a retried packet was never acked"
        assert {k for k, _ in retry} <= stored_keys(db_url)
        assert load.bad_acks == 0
    finally:
        server.stop()
