"""Ingest over real UDP and real HTTP against a `urelief server` process: valid, forged,
replayed, duplicate (UDP + SMS copy), truncated and oversized packets, and what each does to
the database, the acks and the rejection counters."""

from __future__ import annotations

import base64
import time

import pytest
from sqlalchemy import create_engine, func, select
from srvkit import DEVICE, DEVICE2, SECRET, SECRET2, Device, report
from urelief import protocol as p
from urelief.registry.models import DevicePacket, Incident

BOTH_BACKENDS = True  # SQLite, and PostgreSQL when URELIEF_TEST_PG_URL is set


@pytest.fixture(scope="module")
def dev(server):
    return Device(DEVICE, SECRET, server)


@pytest.fixture(scope="module")
def db(server):
    engine = create_engine(server.db_url)
    yield engine
    engine.dispose()


def stored(db, device_id, counter=None) -> int:
    q = select(func.count()).select_from(DevicePacket).where(DevicePacket.device_id == device_id)
    if counter is not None:
        q = q.where(DevicePacket.counter == counter)
    with db.connect() as c:
        return c.scalar(q)


def rejections(server, reason: str) -> float:
    import httpx

    text = httpx.get(server.http + "/metrics").text
    for line in text.splitlines():
        if line.startswith(f'urelief_packets_rejected_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


def refused(server, dev, packet: bytes, reason: str) -> bool:
    """Send `packet`; True once the server has counted it rejected for `reason` and no ack came
    (the count moves after the decision, so an ack would already be on its way)."""
    before = rejections(server, reason)
    dev.send(packet)
    deadline = time.monotonic() + 5
    while rejections(server, reason) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    return rejections(server, reason) == before + 1 and dev.recv(timeout=0.2) is None


def outbox(api):
    return api("boss").get("/api/sms/outbox").json()["items"]


def test_valid_sos_is_stored_acked_and_opens_an_incident(server, dev, db):
    pkt = dev.seal(p.Sos(report=report(), trigger=p.Trigger.HOLD))
    ack = dev.exchange(pkt)
    assert ack is not None and ack.ok, "no verified ack"
    assert ack.type == p.MsgType.ACK and ack.message.acked_counter == dev.counter
    assert ack.message.level == p.AckLevel.RECEIVED
    assert stored(db, DEVICE, dev.counter) == 1  # stored before the ack was sent
    with db.connect() as c:
        inc = c.execute(select(Incident).where(Incident.device_id == DEVICE)).first()
    assert inc is not None and inc.status == "open" and inc.open_counter == dev.counter
    assert inc.last_lat == pytest.approx(37.5665)


def test_forged_packet_gets_no_ack_and_is_counted(server, dev, db):
    forged = p.encode_uplink(p.Sos(report=report()), device_id=DEVICE, key_id=1,
                             secret=bytes(32), counter=dev.counter + 1)
    assert refused(server, dev, forged, "bad_tag")
    flipped = bytearray(dev.seal(p.Sos(report=report())))
    flipped[20] ^= 0x01  # one bit of ciphertext
    assert refused(server, dev, bytes(flipped), "bad_tag")
    assert stored(db, DEVICE, dev.counter) == 0


def test_replayed_packet_is_reacked_not_stored_twice(server, dev, db):
    pkt = dev.seal(p.Position(report=report(37.57, 126.98)))
    first = dev.exchange(pkt)
    again = dev.exchange(pkt)  # an attacker (or a lost ack) replays it
    assert first.ok and again.ok
    assert again.message.acked_counter == first.message.acked_counter
    assert again.counter > first.counter  # each downlink has its own counter (nonce)
    assert stored(db, DEVICE, dev.counter) == 1


def test_counter_below_the_window_is_rejected_too_old(server, dev):
    dev.counter += 100
    assert dev.exchange(dev.seal(p.Position(report=report()))).ok
    never_sent = dev.seal(p.Position(report=report()), counter=dev.counter - 80)
    assert refused(server, dev, never_sent, "too_old")


def test_late_packet_inside_the_window_is_accepted(server, dev, db):
    dev.counter += 5
    late = dev.counter - 3
    assert dev.exchange(dev.seal(p.Position(report=report()))).ok
    ack = dev.exchange(dev.seal(p.Position(report=report()), counter=late))
    assert ack.ok and ack.message.acked_counter == late
    assert stored(db, DEVICE, late) == 1


def test_sms_copy_of_a_udp_packet_is_a_duplicate(server, dev, db, api):
    pkt = dev.seal(p.Position(report=report(37.58, 126.99)))
    assert dev.exchange(pkt).ok
    r = api().post("/sms/inbound", json={"from": "+821099990001", "data_hex": pkt.hex()})
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert stored(db, DEVICE, dev.counter) == 1
    # The device asked by SMS, so it is acked by SMS too (8-bit data, opened with its key).
    sms = [m for m in outbox(api) if m["to"] == "+821099990001"]
    ack = p.decode_downlink(bytes.fromhex(sms[-1]["data_hex"]), device_id=DEVICE, key_id=1,
                            secret=SECRET)
    assert ack.ok and ack.message.acked_counter == dev.counter


def test_sms_first_binary_and_text_forms(server, db, api):
    d2 = Device(DEVICE2, SECRET2, server)
    binary = d2.seal(p.CheckIn(report=report(), fw=(1, 2, 3), battery_mv=3900))
    r = api().post("/sms/inbound", json={"from": "+821099990002",
                                          "data_base64": base64.b64encode(binary).decode()})
    assert r.json() == {"status": "accepted", "device_id": DEVICE2, "counter": d2.counter}
    text = p.to_text(d2.seal(p.LowBattery(report=report(battery=9), battery_mv=3400)))
    r = api().post("/sms/inbound", json={"from": "+821099990002", "text": text})
    assert r.json()["status"] == "accepted"
    assert stored(db, DEVICE2) == 2
    acks = [m for m in outbox(api) if m["to"] == "+821099990002"]
    assert "data_hex" in acks[-2] and acks[-1]["text"].startswith("UR1:")  # same form back
    ack = p.decode_downlink(p.from_text(acks[-1]["text"]), device_id=DEVICE2, key_id=1,
                            secret=SECRET2)
    assert ack.ok and ack.message.acked_counter == d2.counter


@pytest.mark.parametrize("payload,reason", [
    (b"\x10\x01", "truncated"),
    (bytes(17), "truncated"),
    (b"\x10" * 200, "oversized"),
    (bytes([0x21, 0x01]) + bytes(40), "wrong_version"),
    (bytes([0x11, 0x7F]) + bytes(40), "unknown_type"),
    (bytes([0x11, 0x81]) + bytes(40), "unknown_type"),  # a downlink sent uplink
    (bytes([0x11, 0x01, 0xDE, 0xAD, 0xBE, 0xEF]) + bytes(60), "unknown_device"),
])
def test_malformed_packets_are_rejected_by_reason(server, dev, payload, reason):
    assert refused(server, dev, payload, reason)


def test_bad_sms_bodies_answer_clear_errors(server, api):
    c = api()
    assert c.post("/sms/inbound", json={"from": "+8210"}).status_code == 422
    assert c.post("/sms/inbound", json={"from": "+8210", "data_hex": "zz"}).status_code == 422
    r = c.post("/sms/inbound", json={"from": "+8210", "text": "UR1:!!!"})
    assert r.json() == {"status": "rejected", "reason": "bad_encoding"}
    r = c.post("/sms/inbound", json={"from": "+8210", "text": "hello police"})
    assert r.json()["reason"] == "bad_encoding"


def test_server_is_healthy_and_counts(server):
    import httpx

    h = httpx.get(server.http + "/healthz").json()
    assert h["ok"] and h["rows"] >= 5 and h["rejections"]["bad_tag"] >= 2


def test_the_device_row_follows_its_packets(server, db):
    """Status, battery, firmware, replay window and the downlink counters reserved: written by
    the batch's device update (on SQLite straight to the driver), each as its packet says."""
    from srvkit import OTHER_SCHOOL_DEVICE, SECRET3
    from urelief.registry.models import Device as DeviceRow

    def row():
        with db.connect() as c:
            return c.execute(select(DeviceRow).where(DeviceRow.id == OTHER_SCHOOL_DEVICE)).one()

    assert row().status == "provisioned"
    d = Device(OTHER_SCHOOL_DEVICE, SECRET3, server)
    assert d.exchange(d.seal(p.CheckIn(report=report(battery=64), fw=(1, 2, 3),
                                       battery_mv=3912))).ok
    r = row()
    assert r.status == "active" and r.battery_pct == 64 and r.battery_mv == 3912
    assert r.firmware_version == "1.2.3" and r.last_counter == d.counter
    assert r.downlink_counter >= 1  # the ack's counter was reserved in the same commit
    # a packet without a battery voltage or firmware keeps them; the window moves on
    assert d.exchange(d.seal(p.Position(report=report(battery=63)))).ok
    r = row()
    assert r.battery_pct == 63 and r.battery_mv == 3912 and r.firmware_version == "1.2.3"
    assert r.last_counter == d.counter and r.replay_bitmap & 1
