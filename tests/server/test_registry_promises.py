"""Registry changes hold at once for a running server: a device registered, retired or re-keyed
through its API is seen by the very next packet; a change made by another process (the
registry CLI) within seconds; and a re-key keeps the old key valid until the device uses the
new one (docs/protocol.md §8), with the downlinks sealed under the key the device holds."""

from __future__ import annotations

import os
import socket
import time

import httpx
from srvkit import SERVER_KEY, report
from urelief import protocol as p
from urelief.registry.db import Database
from urelief.registry.keys import ServerKey
from urelief.registry.service import Registry, cli_actor


class Terminal:
    """A device that can hold two keys, as one being re-provisioned does."""

    def __init__(self, server, device_id: int):
        self.server, self.id, self.counter = server, device_id, 0
        self.keys: dict[int, bytes] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    def send(self, key_id: int, timeout: float = 2.0):
        """A position under `key_id`; -> (the ack's key id, the ack) or None if unanswered."""
        self.counter += 1
        pkt = p.encode_uplink(p.Position(report=report()), device_id=self.id, key_id=key_id,
                              secret=self.keys[key_id], counter=self.counter)
        self.sock.sendto(pkt, self.server.udp)
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(2048)
        except TimeoutError:
            return None
        kid = data[0] & 0x0F  # the header byte: V<<4 | key id (docs/protocol.md §1)
        res = p.decode_downlink(data, device_id=self.id, key_id=kid, secret=self.keys[kid],
                                replay=p.MemoryReplayWindow())
        assert isinstance(res, p.Accepted), res
        return kid, res.message


def _admin(server) -> httpx.Client:
    return httpx.Client(base_url=server.http, timeout=10,
                        headers={"Authorization": f"Bearer {server.seed.tokens['boss']}"})


def _register(admin, dev: Terminal, key_id: int, replace: bool = False) -> None:
    dev.keys[key_id] = os.urandom(32)
    r = admin.post("/api/devices", json={
        "device_id": dev.id, "key_hex": dev.keys[key_id].hex(), "key_id": key_id,
        "subscriber_id": dev.server.seed.subscriber_id, "board": "virtual", "replace": replace})
    assert r.status_code == 201, r.text
    dev.counter = max(dev.counter, r.json()["last_counter"])


def test_registered_and_retired_through_the_api_at_once(server):
    admin = _admin(server)
    dev = Terminal(server, 0x00D0_0001)
    dev.keys[1] = os.urandom(32)
    assert dev.send(1, timeout=0.5) is None  # not registered yet: refused (and remembered)
    _register(admin, dev, 1)
    assert dev.send(1) is not None  # at once, not after the unknown-id back-off
    r = admin.patch(f"/api/devices/{dev.id}", json={"status": "retired"})
    assert r.status_code == 200 and r.json()["status"] == "retired"
    assert dev.send(1, timeout=0.5) is None  # the very next packet
    assert admin.patch(f"/api/devices/{dev.id}", json={"status": "active"}).status_code == 200
    assert dev.send(1) is not None


def test_retired_by_another_process_within_seconds(server):
    admin = _admin(server)
    dev = Terminal(server, 0x00D0_0002)
    _register(admin, dev, 1)
    assert dev.send(1) is not None
    db = Database(server.db_url)  # what `urelief registry retire-device` does
    try:
        Registry(db, ServerKey(bytes.fromhex(SERVER_KEY))).update_device(
            cli_actor(), dev.id, {"status": "retired"})
    finally:
        db.dispose()
    deadline = time.monotonic() + 15  # FRESH_S (5 s) plus a packet, with room for a slow host
    while dev.send(1, timeout=0.5) is not None:
        assert time.monotonic() < deadline, "a retired device is still accepted"
        time.sleep(0.5)


def test_rekey_keeps_the_old_key_until_the_new_one_is_used(server):
    admin = _admin(server)
    dev = Terminal(server, 0x00D0_0003)
    _register(admin, dev, 1)
    assert dev.send(1)[0] == 1
    _register(admin, dev, 2, replace=True)
    # Not switched yet: the old key still works, and the ack is sealed under it.
    assert dev.send(1)[0] == 1
    # The new key works at once (the first packet, not ~10 s later), acked under it ...
    assert dev.send(2)[0] == 2
    # ... and from then on the old key is refused.
    assert dev.send(1, timeout=0.5) is None
    assert dev.send(2)[0] == 2
    card = admin.get(f"/api/devices/{dev.id}").json()
    assert card["key_id"] == 2
