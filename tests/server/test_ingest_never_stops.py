"""Ingest never stops: whatever an authentic packet carries, it is stored and acked, and it never
stops the writer or the acks of other devices. Against a real `urelief server` (writer child
process, real UDP); the hostile packets are sealed with the device's real key from random
plaintext bytes, so every field takes values over its whole wire range."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select
from srvkit import DEVICE, DEVICE2, SECRET, SECRET2, Device, report
from urelief import protocol as p
from urelief.protocol import codec, seal
from urelief.registry.models import DevicePacket, Incident

BOTH_BACKENDS = True
SERVER_ENV = {"URELIEF_DEVICE_RATE_PER_S": "10000", "URELIEF_DEVICE_BURST": "10000"}
UPLINKS = [t for t in p.MsgType if not t.downlink]


def seal_body(dev: Device, mtype: int, body: bytes) -> bytes:
    """A packet sealed with the device's real key around any plaintext body (what a device
    with a bug, or a newer firmware, could send)."""
    dev.counter += 1
    keys = seal.derive_keys(dev.secret)
    header = codec.HEADER.pack(codec.header_byte(1), mtype, dev.id, dev.counter)
    sealed = header + seal.ctr(keys, dev.id, seal.UPLINK, dev.counter, body)
    return sealed + seal.tag(keys, sealed)


@pytest.fixture(scope="module")
def db(server):
    engine = create_engine(server.db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def hostile(server):
    return Device(DEVICE, SECRET, server)


@pytest.fixture(scope="module")
def good(server):
    return Device(DEVICE2, SECRET2, server)


def acked(dev: Device, packet: bytes, tries: int = 3) -> bool:
    """Send until this packet's ack comes (UDP may drop under load), at most `tries` times."""
    want = int.from_bytes(packet[6:10], "big")
    for _ in range(tries):
        dev.send(packet)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            ack = dev.recv(timeout=max(0.05, deadline - time.monotonic()))
            if ack is None:
                break
            if ack.ok and ack.type == p.MsgType.ACK and ack.message.acked_counter == want:
                return True
    return False


def stored(db, device_id: int, counter: int) -> dict | None:
    with db.connect() as c:
        return c.execute(select(DevicePacket.payload).where(
            DevicePacket.device_id == device_id, DevicePacket.counter == counter)).scalar()


def test_unknown_enumeration_values_are_stored_as_numbers(server, hostile, good, db):
    r = report()
    sos = p.Sos(report=p.Report(**{**r.__dict__, "cell": True, "mcc": "450", "mnc": "05",
                                   "tac": 1, "cell_id": 2, "rat": 7}), trigger=9)
    assert acked(hostile, hostile.seal(sos)), "an SOS with trigger 9 / RAT 7 was not acked"
    row = stored(db, DEVICE, hostile.counter)
    assert row["trigger"] == 9 and row["rat"] == 7
    with db.connect() as c:
        inc = c.execute(select(Incident).where(Incident.device_id == DEVICE,
                                               Incident.open_counter == hostile.counter)).first()
    assert inc is not None and inc.trigger == "9"  # the number, not a guessed name
    ev = httpx.get(server.http + "/healthz").json()
    assert ev["ok"] and ev["writer"]["restarts"] == 0
    assert acked(good, good.seal(p.Position(report=report()))), "other devices lost their acks"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_authentic_packets_never_stop_acks(server, hostile, good, db, data):
    mtype = data.draw(st.sampled_from(UPLINKS))
    size = codec.LAYOUTS[mtype].size
    body = data.draw(st.binary(min_size=size, max_size=p.MAX_PACKET - p.messages.MIN_PACKET))
    pkt = seal_body(hostile, mtype, body)
    assert acked(hostile, pkt), f"authentic {mtype.name} body {body.hex()} was not acked"
    assert stored(db, DEVICE, hostile.counter) is not None
    assert acked(good, good.seal(p.Position(report=report()))), (
        f"good device's ack stopped after {mtype.name} body {body.hex()}")


def test_writer_survives_and_health_says(server, good):
    h = httpx.get(server.http + "/healthz").json()
    assert h["ok"] and h["writer"]["alive"] and h["writer"]["restarts"] == 0, h


def test_replayed_packet_does_not_move_the_downlink_route(server, good, db, api):
    """An attacker replays a captured packet from its own address: the ack goes back to it (it
    has the packet already), but later downlinks (a question) still go to the device."""
    sos = good.seal(p.Sos(report=report()))
    assert acked(good, sos)
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(("127.0.0.1", 0))
    attacker.settimeout(5)
    attacker.sendto(sos, server.udp)
    attacker.recvfrom(2048)  # the re-ack of a duplicate
    with db.connect() as c:
        inc_id = c.scalar(select(func.max(Incident.id)).where(Incident.device_id == DEVICE2))
    r = api().post(f"/api/incidents/{inc_id}/question", json={"text": "Are you safe?"})
    assert r.status_code == 200, r.text
    attacker.settimeout(1.5)
    with pytest.raises(TimeoutError):
        attacker.recvfrom(2048)
    q = good.recv(timeout=5)
    while q is not None and q.type == p.MsgType.ACK:
        q = good.recv(timeout=5)
    assert q is not None and q.type == p.MsgType.QUESTION
    attacker.close()


def test_killed_writer_process_is_restarted(server, good):
    import os
    import signal

    pid = httpx.get(server.http + "/healthz").json()["writer"]["process"]
    assert pid
    os.kill(pid, signal.SIGKILL)
    assert acked(good, good.seal(p.Position(report=report()))), "no ack after the writer died"
    h = httpx.get(server.http + "/healthz").json()
    assert h["ok"] and h["writer"]["restarts"] == 1 and h["writer"]["process"] != pid, h
    assert "lost" in h["writer"]["last_error"] or "exited" in h["writer"]["last_error"], h
