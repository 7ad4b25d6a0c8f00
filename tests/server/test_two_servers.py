"""Two police servers on one PostgreSQL (an active pair behind a UDP load balancer): every
downlink counter a device is handed is new, whichever server sends it (a repeated counter
repeats AES-CTR keystream under the device's key), and recent enough for the device's replay
window to take it. And one SQLite file takes one server only."""

from __future__ import annotations

import os
import socket

import httpx
import pytest
from srvkit import DEVICE, DEVICE2, GW, SECRET, SECRET2, Device, ServerProc, report, seed
from urelief import protocol as p
from urelief.bench.server import pg_scratch

PG_URL = os.environ.get("URELIEF_TEST_PG_URL")
# Above the per-device budget a flood would hit; the test is about counters, not limits.
LOAD_ENV = {"URELIEF_DEVICE_RATE_PER_S": "100000", "URELIEF_DEVICE_BURST": "100000",
            "URELIEF_GUARDIAN_SMS": "0"}
PACKETS = 700  # per device: past two of a server's 256-counter blocks, alternating servers
BURST = 50  # uplinks in flight per device


@pytest.fixture
def pair(tmp_path):
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("URELIEF_TEST_PG_URL not set in CI (.ci/run starts PostgreSQL)")
        pytest.skip("no PostgreSQL (URELIEF_TEST_PG_URL)")
    db_url, drop = pg_scratch(PG_URL)
    tokens = seed(db_url).tokens
    a = ServerProc(tmp_path / "a", db_url, LOAD_ENV)
    b = ServerProc(tmp_path / "b", db_url, LOAD_ENV)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a.tokens = b.tokens = tokens
    try:
        yield a.start(), b.start()
    finally:
        a.stop()
        b.stop()
        drop()


def _counters(device_id: int, secret: bytes, servers) -> list[int]:
    """Send PACKETS positions, alternating servers, BURST at a time; the acks' counters."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)
    seen: list[int] = []
    window = p.MemoryReplayWindow()  # the device's own check: a counter 64 behind is refused
    counter = 0
    for _ in range(PACKETS // BURST):
        for i in range(BURST):
            counter += 1
            pkt = p.encode_uplink(p.Position(report=report()), device_id=device_id, key_id=1,
                                  secret=secret, counter=counter)
            sock.sendto(pkt, servers[i % 2].udp)
        for _ in range(BURST):
            data, _ = sock.recvfrom(2048)
            res = p.decode_downlink(data, device_id=device_id, key_id=1, secret=secret)
            assert res.ok, res
            seen.append(res.counter)
            kept = p.decode_downlink(data, device_id=device_id, key_id=1, secret=secret,
                                     replay=window)
            assert kept.ok, f"the device refuses ack counter {res.counter}: {kept}"
    sock.close()
    return seen


def test_two_servers_on_one_postgresql_never_repeat_a_downlink_counter(pair):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda d: _counters(*d, pair), ((DEVICE, SECRET),
                                                               (DEVICE2, SECRET2))))
    for seen in runs:
        assert len(seen) == PACKETS
        repeated = len(seen) - len(set(seen))
        assert repeated == 0, f"{repeated} downlink counters handed out twice"


def test_a_copy_the_other_server_stored_does_not_take_the_device_downlinks(pair):
    """A packet the device sent to server A, replayed to server B from an attacker's address:
    B finds it stored (a duplicate, re-acked to its sender) and keeps sending the device's
    downlinks (a question) to the device."""
    a, b = pair
    dev = Device(DEVICE, SECRET, b)
    assert dev.exchange(dev.seal(p.Position(report=report()))).ok  # B's route: the device
    dev.server = a
    sos = dev.seal(p.Sos(report=report()))
    assert dev.exchange(sos).ok  # stored by A
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(("127.0.0.1", 0))
    attacker.settimeout(5)
    attacker.sendto(sos, b.udp)
    attacker.recvfrom(2048)  # B's re-ack of a duplicate
    with httpx.Client(base_url=b.http, timeout=10, headers={
            "Authorization": f"Bearer {b.tokens['disp']}", **GW}) as api:
        inc = api.get("/api/incidents").json()["items"][0]["id"]
        r = api.post(f"/api/incidents/{inc}/question", json={"text": "Are you safe?"})
    assert r.status_code == 200, r.text
    attacker.settimeout(1.5)
    with pytest.raises(TimeoutError):
        attacker.recvfrom(2048)
    q = dev.recv(timeout=5)
    while q is not None and q.type == p.MsgType.ACK:
        q = dev.recv(timeout=5)
    assert q is not None and q.type == p.MsgType.QUESTION
    attacker.close()


def test_a_second_server_on_one_sqlite_file_refuses_to_start(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'urelief.db'}"
    seed(db_url)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = ServerProc(tmp_path / "a", db_url).start()
    second = ServerProc(tmp_path / "b", db_url)
    try:
        with pytest.raises(RuntimeError, match="server exited"):
            second.start()
        assert second.proc.wait(10) != 0
        assert "another urelief server is running on" in second.log_tail()
        assert "Traceback" not in second.log_tail()
        first.stop()
        assert first.proc.returncode == 0
        ServerProc(tmp_path / "b", db_url).start().stop()  # free again once the first is gone
    finally:
        first.stop()
        second.stop()
