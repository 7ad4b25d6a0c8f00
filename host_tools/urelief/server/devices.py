"""The ingest's view of devices: keys, replay windows, downlink counters and return routes,
cached in memory and loaded from the registry on first contact.

It is the `KeyStore` and `ReplayWindow` that `urelief.protocol.decode_uplink` asks. The replay
window has two states per device: `committed` (what the database holds) and `pending` (also
counting packets accepted but not yet committed), so a UDP copy and its SMS twin arriving in the
same millisecond are one packet and one duplicate. The database is written only by the ingest's
group commit, in the same transaction as the packet (`protocol`'s rule: a crash must not turn a
retry into a "duplicate" of something never stored).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import case, select, update

from urelief.protocol import AckLevel, Reason, WindowState
from urelief.registry.db import Database
from urelief.registry.keys import ServerKey, ServerKeyError
from urelief.registry.models import Device, DeviceStatus
from urelief.server import logs

UNKNOWN_TTL_S = 10.0  # forged ids: at most one registry lookup per id per this long
RELOAD_AFTER_S = 10.0  # a device whose tag fails is re-read (re-keyed?) at most this often
DOWNLINK_BLOCK = 256  # downlink counters reserved per database write
UDP_ROUTE_S = 120.0  # a UDP source address is trusted for downlinks this long (NAT mappings)


@dataclass(eq=False)
class DeviceState:
    id: int  # the protocol's u32 device id = Device.id
    key_id: int
    secret: bytes
    status: DeviceStatus
    school_id: int | None
    subscriber_id: int | None
    committed: WindowState
    pending: WindowState
    dl_next: int  # next downlink counter to use
    dl_reserved: int  # highest counter durably reserved (downlink_counter column)
    loaded_at: float
    udp_addr: tuple | None = None
    udp_at: float = 0.0
    msisdn: str | None = None
    ack_level: AckLevel = AckLevel.RECEIVED  # highest level reached by its open incident

    def take_downlink_counter(self) -> int | None:
        """The next downlink counter if one is reserved durably, else None (reserve first)."""
        if self.dl_next > self.dl_reserved:
            return None
        c = self.dl_next
        self.dl_next += 1
        return c

    def udp_route(self) -> tuple | None:
        if self.udp_addr and time.monotonic() - self.udp_at < UDP_ROUTE_S:
            return self.udp_addr
        return None


class DeviceCache:
    def __init__(self, db: Database, server_key: ServerKey | None):
        self.db = db
        self.server_key = server_key
        self._by_num: dict[int, DeviceState] = {}
        self._unknown: dict[int, float] = {}
        self._lock = threading.Lock()

    # -- KeyStore --------------------------------------------------------------------------
    def key_for(self, device_num_: int, key_id: int) -> bytes | None:
        dev = self.get(device_num_)
        if dev is not None and dev.key_id != key_id:
            dev = self.get(device_num_, reload=True)  # re-keyed since we cached it?
        if dev is None or dev.key_id != key_id or dev.status == DeviceStatus.RETIRED:
            return None
        return dev.secret

    # -- ReplayWindow (checks the pending state; commit marks it) ---------------------------
    def check(self, device_num_: int, counter: int) -> Reason | None:
        dev = self._by_num.get(device_num_)
        return dev.pending.check(counter) if dev else None

    def commit(self, device_num_: int, counter: int) -> None:
        dev = self._by_num[device_num_]
        dev.pending = dev.pending.mark(counter)

    # -- loading ---------------------------------------------------------------------------
    def get(self, num: int, reload: bool = False) -> DeviceState | None:
        dev = self._by_num.get(num)
        now = time.monotonic()
        if dev is not None and not reload:
            return dev
        if dev is not None and now - dev.loaded_at < RELOAD_AFTER_S:
            return dev
        if dev is None and self._unknown.get(num, 0.0) > now:
            return None
        loaded = self._load(num, now)
        with self._lock:
            if loaded is None:
                self._unknown[num] = now + UNKNOWN_TTL_S
                if len(self._unknown) > 100_000:
                    self._unknown = {k: v for k, v in self._unknown.items() if v > now}
                self._by_num.pop(num, None)
                return None
            if dev is not None and dev.secret == loaded.secret and dev.key_id == loaded.key_id:
                dev.loaded_at, dev.status = now, loaded.status  # same key: keep live state
                dev.school_id, dev.subscriber_id = loaded.school_id, loaded.subscriber_id
                return dev
            self._by_num[num] = loaded
            return loaded

    def _load(self, num: int, now: float) -> DeviceState | None:
        if not 0 <= num <= 0xFFFF_FFFF:
            return None
        with self.db.Session() as s:
            row = s.get(Device, num)
            if row is None or self.server_key is None:
                return None
            try:
                secret = self.server_key.open(row.id, row.key_sealed)
            except ServerKeyError as e:
                logs.event("device_key_unreadable", level=40, device=row.id, error=str(e))
                return None
            window = WindowState(row.last_counter or 0, row.replay_bitmap or 0)
            reserved = row.downlink_counter or 0
            return DeviceState(
                id=row.id, key_id=row.key_id, secret=secret, status=row.status,
                school_id=row.school_id, subscriber_id=row.subscriber_id, committed=window,
                pending=window, dl_next=reserved + 1, dl_reserved=reserved, loaded_at=now)

    def known(self) -> list[DeviceState]:
        return list(self._by_num.values())

    def reserve_downlinks(self, dev: DeviceState, at_least: int = 1) -> None:
        """Durably reserve downlink counters outside the ingest's group commit (operator
        actions). Blocking: call from a worker thread."""
        want = dev.dl_next + max(at_least, DOWNLINK_BLOCK) - 1
        with self.db.session() as s:
            s.execute(reserve_stmt(), [{"b_id": dev.id, "reserved": want}])
        dev.dl_reserved = max(dev.dl_reserved, want)


def reserve_stmt():
    """UPDATE that only ever raises devices.downlink_counter (two writers may race)."""
    from sqlalchemy import bindparam

    col = Device.__table__.c.downlink_counter
    r = bindparam("reserved")
    return (update(Device.__table__).where(Device.__table__.c.id == bindparam("b_id"))
            .values(downlink_counter=case((col < r, r), else_=col)))


def stored_counter(db: Database, dev_id: int, counter: int) -> bool:
    """Is this packet in the database (a late copy of something stored long ago)?"""
    from urelief.registry.models import DevicePacket

    with db.Session() as s:
        return s.scalar(select(DevicePacket.id).where(
            DevicePacket.device_id == dev_id, DevicePacket.counter == counter)) is not None
