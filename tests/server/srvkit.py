"""Helpers for the server tests: a real server process (`urelief server`) on loopback, with a registry seeded through the
registry's own service layer: one school, a dispatcher, an admin, a second school's admin, a
pupil with two guardians, and provisioned devices whose secrets the tests hold."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from urelief import protocol as p
from urelief.registry import credentials, migrate
from urelief.registry.db import Database
from urelief.registry.keys import ServerKey
from urelief.registry.models import Consent, Role
from urelief.registry.service import Registry, cli_actor
from urelief.server.process import ServerProcess

SERVER_KEY = "11" * 32
DEVICE = 0x00C0FFEE
DEVICE2 = 0x00C0FFEF
OTHER_SCHOOL_DEVICE = 0x00BADA55
SECRET = bytes(range(32))
SECRET2 = bytes(range(32, 64))
SECRET3 = bytes(range(64, 96))
PASSWORD = "correct horse battery"
GATEWAY_TOKEN = "test-gateway-token"  # the SMS gateway's X-Gateway-Token
GW = {"X-Gateway-Token": GATEWAY_TOKEN}


@dataclass
class Seed:
    db_url: str
    school_id: int
    other_school_id: int
    subscriber_id: int
    tokens: dict[str, str] = field(default_factory=dict)


def seed(db_url: str) -> Seed:
    cost = credentials.PASSWORD_LOG2_N
    credentials.PASSWORD_LOG2_N = 12  # test operators: cheap hashes (each names its own cost)
    try:
        return _seed(db_url)
    finally:
        credentials.PASSWORD_LOG2_N = cost


def _seed(db_url: str) -> Seed:
    migrate.upgrade(db_url)
    db = Database(db_url)
    reg = Registry(db, ServerKey(bytes.fromhex(SERVER_KEY)))
    admin = cli_actor()
    school = reg.create_school(admin, "S1", "Hanbit Elementary", "12 Sejong-ro, Seoul")
    other = reg.create_school(admin, "S2", "Dasom Middle School")
    sub = reg.create_subscriber(admin, {
        "school_id": school["id"], "pupil_ref": "P-0042", "full_name": "Kim Minji",
        "class_name": "4-2", "birth_year": 2016, "responder_notes": "asthma: inhaler in bag",
        "guardians": [
            {"name": "Kim Jiwoo", "phone": "+821055500001", "relation": "mother"},
            {"name": "Park Sungho", "phone": "+821055500002", "relation": "father"}]})
    sub2 = reg.create_subscriber(admin, {
        "school_id": other["id"], "pupil_ref": "Q-7", "full_name": "Lee Seojun",
        "class_name": "1-1", "birth_year": 2012, "guardians": []})
    with db.session() as ses:  # the consent forms, as a roster import records them
        for sid, by, scopes in ((sub["id"], "Kim Jiwoo", ("registry", "location", "guardian_sms")),
                                (sub2["id"], "Lee Mina", ("registry", "location"))):
            ses.add_all(Consent(subscriber_id=sid, given_by=by, scope=scope,
                                given_at=datetime(2026, 3, 2, tzinfo=UTC)) for scope in scopes)
    reg.register_device(admin, DEVICE, SECRET, subscriber_id=sub["id"], board="virtual")
    reg.register_device(admin, DEVICE2, SECRET2, subscriber_id=sub["id"], board="virtual")
    reg.register_device(admin, OTHER_SCHOOL_DEVICE, SECRET3, subscriber_id=sub2["id"])
    s = Seed(db_url, school["id"], other["id"], sub["id"])
    for name, role, school_id in (("disp", Role.DISPATCHER, None), ("boss", Role.ADMIN, None),
                                  ("aud", Role.AUDITOR, None),
                                  ("s2admin", Role.SCHOOL_ADMIN, other["id"])):
        _, token = reg.create_operator(admin, name, role, school_id=school_id, password=PASSWORD)
        s.tokens[name] = token
    db.dispose()
    return s


def sms_inbound(server, body: dict):
    """POST /sms/inbound as the SMS gateway does (with its token)."""
    return httpx.post(server.http + "/sms/inbound", json=body, headers=GW, timeout=10)


class ServerProc(ServerProcess):
    """`urelief server` in a subprocess with the test key and no map tiles; `kill()` is a
    kill -9. The test is its SMS gateway (the `outbox` one, webhooks with GATEWAY_TOKEN) unless
    `extra_env` names another."""

    def __init__(self, workdir: Path, db_url: str, extra_env: dict | None = None):
        super().__init__(workdir, db_url, {"URELIEF_SERVER_KEY": SERVER_KEY,
                                           "URELIEF_SMS_GATEWAY": "outbox",
                                           "URELIEF_GATEWAY_TOKEN": GATEWAY_TOKEN,
                                           **(extra_env or {})},
                         args=("--tile-url", ""))


class Device:
    """A test terminal: seals uplinks with its secret, talks UDP, opens the server's acks."""

    def __init__(self, device_id: int, secret: bytes, server: ServerProc, counter: int = 0):
        self.id, self.secret, self.server = device_id, secret, server
        self.counter = counter
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5.0)
        self.downlinks = p.MemoryReplayWindow()

    def seal(self, msg, counter: int | None = None) -> bytes:
        if counter is None:
            self.counter += 1
            counter = self.counter
        return p.encode_uplink(msg, device_id=self.id, key_id=1, secret=self.secret,
                               counter=counter)

    def send(self, packet: bytes) -> None:
        self.sock.sendto(packet, self.server.udp)

    def recv(self, timeout: float = 5.0):
        """The next downlink, opened and verified (p.Accepted), or None on timeout."""
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(2048)
        except TimeoutError:
            return None
        return p.decode_downlink(data, device_id=self.id, key_id=1, secret=self.secret,
                                 replay=self.downlinks)

    def recv_type(self, kind: p.MsgType, where=None, timeout: float = 5.0, tries: int = 8):
        """The next downlink of this type (p.Accepted) for which `where(message)` holds,
        skipping others: this test terminal sends no RECEIPT, so the server repeats what it
        has pending after every uplink (docs/protocol.md section 4, delivery)."""
        for _ in range(tries):
            m = self.recv(timeout)
            assert m is not None, f"no {kind.name} reached the device"
            if m.ok and m.type == kind and (where is None or where(m.message)):
                return m
        raise AssertionError(f"no {kind.name} among {tries} downlinks")

    def exchange(self, packet: bytes, timeout: float = 5.0):
        """Send one uplink; -> the ACK that names it (other downlinks, repeats of what the
        server has pending, are passed over), or whatever else it got if not authentic, or
        None when nothing names it within `timeout`."""
        counter = int.from_bytes(packet[6:10], "big") if len(packet) >= 10 else None
        self.send(packet)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            m = self.recv(left)
            if m is None:
                return None
            if not m.ok or (m.type == p.MsgType.ACK and m.message.acked_counter == counter):
                return m
        return None

def report(lat=37.5665, lon=126.9780, acc=8, drill=False, battery=77) -> p.Report:
    return p.Report(time_s=int(time.time()), time_source=p.TimeSource.GNSS, fix=True,
                    lat_e7=int(lat * 1e7), lon_e7=int(lon * 1e7), accuracy_m=acc, fix_age_s=2,
                    sats=9, trusted=True, battery_pct=battery, drill=drill)


