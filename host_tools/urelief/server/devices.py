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

import queue
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import select, update

from urelief.protocol import AckLevel, Reason, WindowState
from urelief.registry.db import Database
from urelief.registry.keys import ServerKey, ServerKeyError
from urelief.registry.models import Device, DeviceStatus
from urelief.server import logs

UNKNOWN_TTL_S = 10.0  # forged ids: at most one registry lookup per id per this long
RELOAD_AFTER_S = 10.0  # a device whose tag fails is re-read (re-keyed?) at most this often
# A cached device is re-read (by a background thread: a read can wait behind the writer's
# SQLite lock, the event loop must not) once it is this old, so a change made by another
# process (`urelief registry retire-device`, provisioning) holds within it plus one packet;
# changes through this server's own registry API are seen at once (DeviceCache.forget).
FRESH_S = 5.0
NEW_KEY_LOOKUP_S = 1.0  # a packet under a key id we do not hold: one re-read per id per this
# Downlink counters are taken from the database in blocks of this many by one atomic
# `UPDATE … SET downlink_counter = downlink_counter + n … RETURNING`, so two servers on one
# database never hold the same counter (a repeated counter repeats AES-CTR keystream).
DOWNLINK_BLOCK = 256
# On a database other servers share (PostgreSQL) a server takes only the counters a batch
# acks, and drops what it holds after this long: the device's replay window spans 64
# counters, so a counter left behind while the other server's acks moved on is refused.
SHARED_BLOCK_S = 2.0
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
    dl_next: int  # next downlink counter to use (in the block [dl_next, dl_reserved])
    dl_reserved: int  # last counter of the block this server holds
    loaded_at: float
    prev_key_id: int | None = None  # the key before a rotation, until the device uses the new
    prev_secret: bytes | None = None
    last_key_id: int | None = None  # the key id of its latest accepted packet
    dropped_key_id: int | None = None  # a previous key retired here (a re-read keeps it gone)
    udp_addr: tuple | None = None
    udp_at: float = 0.0
    msisdn: str | None = None
    ack_level: AckLevel = AckLevel.RECEIVED  # highest level reached by its open incident
    dl_spare: list = field(default_factory=list)  # further blocks [(first, last, taken at)]
    dl_at: float = 0.0  # when the current block was taken (time.monotonic)
    dl_ttl: float = float("inf")  # a block older than this is dropped (SHARED_BLOCK_S)

    def take_downlink_counter(self) -> int | None:
        """The next downlink counter of a block this server took, else None (take one)."""
        if self.dl_next <= self.dl_reserved and time.monotonic() - self.dl_at > self.dl_ttl:
            self.dl_next = self.dl_reserved + 1  # stale: the other server has moved on
        if self.dl_next > self.dl_reserved:
            now = time.monotonic()
            self.dl_spare = [b for b in self.dl_spare if now - b[2] <= self.dl_ttl]
            if not self.dl_spare:
                return None
            self.dl_next, self.dl_reserved, self.dl_at = self.dl_spare.pop(0)
        c = self.dl_next
        self.dl_next += 1
        return c

    def downlinks_left(self) -> int:
        spare = sum(b - a + 1 for a, b, _ in self.dl_spare)
        return max(0, self.dl_reserved - self.dl_next + 1) + spare

    def add_block(self, block: tuple[int, int] | None) -> None:
        """A block of counters this server now owns (durably, in the registry)."""
        if block is None:
            return
        now = time.monotonic()
        if self.dl_next > self.dl_reserved and not self.dl_spare:
            (self.dl_next, self.dl_reserved), self.dl_at = block, now
        else:
            self.dl_spare = [*self.dl_spare, (*block, now)]

    def sealing_key(self) -> tuple[int, bytes]:
        """(key id, secret) for a downlink: the key the device last spoke under — its old one
        while it has not switched, since that is the one it holds."""
        if self.prev_key_id is not None and self.last_key_id == self.prev_key_id:
            return self.prev_key_id, self.prev_secret or self.secret
        return self.key_id, self.secret

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
        self._key_lookups: dict[tuple[int, int], float] = {}
        self._lock = threading.Lock()
        self._stale: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._refreshing: set[int] = set()
        self._refresher: threading.Thread | None = None

    # -- KeyStore --------------------------------------------------------------------------
    def key_for(self, device_num_: int, key_id: int) -> bytes | None:
        dev = self.get(device_num_)
        if dev is not None and key_id not in (dev.key_id, dev.prev_key_id):
            now = time.monotonic()  # re-keyed since we cached it? (bounded per key id)
            if self._key_lookups.get((device_num_, key_id), 0.0) <= now:
                with self._lock:
                    if len(self._key_lookups) > 100_000:
                        self._key_lookups = {k: v for k, v in self._key_lookups.items() if v > now}
                    self._key_lookups[(device_num_, key_id)] = now + NEW_KEY_LOOKUP_S
                dev = self.get(device_num_, force=True)
        if dev is None or dev.status == DeviceStatus.RETIRED:
            return None
        if key_id == dev.key_id:
            return dev.secret
        return dev.prev_secret if key_id == dev.prev_key_id else None

    def forget(self, device_num_: int) -> None:
        """The registry changed this device: re-read it now (blocking: the registry API's
        worker thread calls this after its commit), so the next packet sees the change."""
        with self._lock:
            self._unknown.pop(device_num_, None)
        if device_num_ in self._by_num:
            self.get(device_num_, force=True)

    def _refresh_soon(self, num: int) -> None:
        with self._lock:
            if num in self._refreshing:
                return
            self._refreshing.add(num)
            if self._refresher is None or not self._refresher.is_alive():
                self._refresher = threading.Thread(target=self._refresh_loop, daemon=True,
                                                   name="device-refresh")
                self._refresher.start()
        self._stale.put(num)

    def _refresh_loop(self) -> None:
        while True:
            num = self._stale.get()
            try:
                self.get(num, force=True)
            except Exception as e:  # a database hiccup: the next packet asks again
                logs.event("device_refresh_failed", level=30, device=num, error=repr(e))
            finally:
                with self._lock:
                    self._refreshing.discard(num)

    def drop_previous_key(self, dev: DeviceState) -> None:
        """The device spoke under its new key: the old one stops working now, and in the
        registry soon after (a thread writes it; if that is lost, the next packet does it)."""
        old = dev.prev_key_id
        if old is None:
            return
        dev.prev_key_id = dev.prev_secret = None
        dev.dropped_key_id = old

        def write() -> None:
            try:
                with self.db.session() as s:
                    s.execute(update(Device).where(Device.id == dev.id, Device.prev_key_id == old)
                              .values(prev_key_id=None, prev_key_sealed=None))
                logs.event("device_key_rotated", device=dev.id, key_id=dev.key_id, old_key_id=old)
            except Exception as e:
                logs.event("device_key_rotation_unsaved", level=30, device=dev.id, error=repr(e))

        threading.Thread(target=write, daemon=True, name="key-rotated").start()

    # -- ReplayWindow (checks the pending state; commit marks it) ---------------------------
    def check(self, device_num_: int, counter: int) -> Reason | None:
        dev = self._by_num.get(device_num_)
        return dev.pending.check(counter) if dev else None

    def commit(self, device_num_: int, counter: int) -> None:
        dev = self._by_num[device_num_]
        dev.pending = dev.pending.mark(counter)

    # -- loading ---------------------------------------------------------------------------
    def get(self, num: int, reload: bool = False, force: bool = False) -> DeviceState | None:
        """The device's state; re-read from the registry when it is older than FRESH_S (or
        was forgotten), on `reload` if older than RELOAD_AFTER_S, or on `force`."""
        dev = self._by_num.get(num)
        now = time.monotonic()
        age = now - dev.loaded_at if dev is not None else 0.0
        if dev is not None and not force:
            if reload and age >= RELOAD_AFTER_S:
                pass  # re-read now (a failed tag: re-keyed?)
            else:
                if age >= FRESH_S:
                    self._refresh_soon(num)
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
                if loaded.prev_key_id != dev.dropped_key_id:  # not one we saw the device leave
                    dev.prev_key_id, dev.prev_secret = loaded.prev_key_id, loaded.prev_secret
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
                prev = (self.server_key.open(row.id, row.prev_key_sealed)
                        if row.prev_key_id is not None and row.prev_key_sealed else None)
            except ServerKeyError as e:
                logs.event("device_key_unreadable", level=40, device=row.id, error=str(e))
                return None
            window = WindowState(row.last_counter or 0, row.replay_bitmap or 0)
            reserved = row.downlink_counter or 0
            return DeviceState(
                id=row.id, key_id=row.key_id, secret=secret, status=row.status,
                school_id=row.school_id, subscriber_id=row.subscriber_id, committed=window,
                pending=window, dl_next=reserved + 1, dl_reserved=reserved, loaded_at=now,
                dl_ttl=float("inf") if self.db.dialect == "sqlite" else SHARED_BLOCK_S,
                prev_key_id=row.prev_key_id if prev is not None else None, prev_secret=prev)

    def known(self) -> list[DeviceState]:
        return list(self._by_num.values())

    def reserve_downlinks(self, dev: DeviceState, at_least: int = 1) -> None:
        """Take a block of downlink counters outside the ingest's group commit (operator
        actions). Blocking: call from a worker thread."""
        with self.db.session() as s:
            conn = s.connection()
            block = take_block(conn, dev.id, block_size(conn, at_least, at_least))
        with self._lock:
            dev.add_block(block)


def block_size(conn, wanted: int, ahead: int) -> int:
    """Counters to take for `wanted` downlinks: on SQLite (one server, hold_single_server)
    a block ahead; on a shared database just these, used at once."""
    return max(DOWNLINK_BLOCK, ahead) if conn.dialect.name == "sqlite" else wanted


def take_block(conn, dev_id: int, n: int) -> tuple[int, int] | None:
    """Take the next `n` downlink counters of a device in the caller's transaction: one
    atomic UPDATE … RETURNING (PostgreSQL row lock; SQLite's write lock), so no other server
    on the database can be handed any of them. None: no such device."""
    col = Device.__table__.c.downlink_counter
    last = conn.execute(update(Device.__table__).where(Device.__table__.c.id == dev_id)
                        .values(downlink_counter=col + n).returning(col)).scalar()
    return None if last is None else (last - n + 1, last)


def stored_counter(db: Database, dev_id: int, counter: int) -> bool:
    """Is this packet in the database (a late copy of something stored long ago)?"""
    from urelief.registry.models import DevicePacket

    with db.Session() as s:
        return s.scalar(select(DevicePacket.id).where(
            DevicePacket.device_id == dev_id, DevicePacket.counter == counter)) is not None
