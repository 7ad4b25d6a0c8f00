"""Verified ingest: every packet, from UDP or SMS, goes through `Ingest.handle`.

    rate limit (per source) → protocol.decode (size, version, type, key, tag, replay window)
    → group commit (packet row, device state, replay window, incident + events: one transaction)
    → ack (sealed downlink, same channel) → live push, guardian SMS

The ack is sent only after the commit returned. A copy of a packet already stored (UDP + SMS,
or a retry whose ack was lost) is acked again and counted as a duplicate, never acted on twice;
if the original is still being committed the copy waits for that commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import NamedTuple

from sqlalchemy import Connection, and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from urelief import protocol as p
from urelief.ratelimit import RateLimiter
from urelief.registry.db import Database
from urelief.registry.models import Device, DevicePacket, DeviceStatus, Incident, utcnow
from urelief.server import incidents, logs, metrics
from urelief.server.config import ServerConfig
from urelief.server.devices import (
    DeviceCache,
    DeviceState,
    block_size,
    stored_counter,
    take_block,
)
from urelief.server.writer import (
    AlreadyStored,
    GroupWriter,
    ProcessRunner,
    ThreadRunner,
)

Reply = Callable[[bytes], Awaitable[None] | None]  # sends one sealed downlink back


@dataclass
class Outcome:
    status: str  # accepted | duplicate | rejected
    reason: str | None = None
    device_id: int | None = None
    counter: int | None = None
    incident_id: int | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class DevSnap(NamedTuple):
    """What the commit needs of a device (picklable: the commit may run in another process)."""

    id: int
    subscriber_id: int | None
    school_id: int | None
    dl_left: int  # downlink counters this server still holds for the device


class Item(NamedTuple):
    """One verified packet for the commit: plain values only (cheap to pickle)."""

    dev: DevSnap
    counter: int
    kind: str  # sos, position, cancel, tap_reply, check_in, low_battery, self_test
    fields: dict  # the decoded message, flat (payload_fields)
    transport: str
    received_at: datetime
    raw: bytes
    window: tuple[int, int]  # the device's replay window with this packet marked


_DEVICE_UPDATE = None


def _device_update_stmt():
    """One UPDATE per device per batch; COALESCE keeps what this packet does not carry."""
    global _DEVICE_UPDATE
    if _DEVICE_UPDATE is None:
        t = Device.__table__
        c = t.c

        def keep(col, name, type_):
            return func.coalesce(bindparam(name, type_=type_), col)

        fix_at = bindparam("fix_at", type_=c.last_fix_at.type)

        def newer_fix(col, name, type_):  # an older fix (a late packet) never replaces a newer
            return case((and_(fix_at.is_not(None), or_(c.last_fix_at.is_(None),
                                                       c.last_fix_at <= fix_at)),
                         bindparam(name, type_=type_)), else_=col)

        _DEVICE_UPDATE = update(t).where(c.id == bindparam("b_id")).values(
            last_counter=bindparam("last_counter"), replay_bitmap=bindparam("replay_bitmap"),
            last_seen_at=bindparam("seen"),
            status=case((c.status == DeviceStatus.PROVISIONED.value, DeviceStatus.ACTIVE.value),
                        else_=c.status),
            battery_pct=keep(c.battery_pct, "battery_pct", c.battery_pct.type),
            battery_mv=keep(c.battery_mv, "battery_mv", c.battery_mv.type),
            firmware_version=keep(c.firmware_version, "fw", c.firmware_version.type),
            last_lat=newer_fix(c.last_lat, "lat", c.last_lat.type),
            last_lon=newer_fix(c.last_lon, "lon", c.last_lon.type),
            last_accuracy_m=newer_fix(c.last_accuracy_m, "acc", c.last_accuracy_m.type),
            last_fix_at=newer_fix(c.last_fix_at, "fix_at", c.last_fix_at.type),
        )
    return _DEVICE_UPDATE


def _fresh_fix(col: str) -> str:  # an older fix (a late packet) never replaces a newer one
    return (f"{col} = CASE WHEN :fix_at IS NOT NULL AND (last_fix_at IS NULL OR "
            f"last_fix_at <= :fix_at) THEN :{_FIX_PARAM[col]} ELSE {col} END")


_FIX_PARAM = {"last_lat": "lat", "last_lon": "lon", "last_accuracy_m": "acc",
              "last_fix_at": "fix_at"}
_SQLITE_DEVICE_UPDATE = (
    "UPDATE devices SET last_counter = :last_counter, replay_bitmap = :replay_bitmap, "
    "last_seen_at = :seen, "
    f"status = CASE WHEN status = '{DeviceStatus.PROVISIONED.value}' "
    f"THEN '{DeviceStatus.ACTIVE.value}' ELSE status END, "
    "battery_pct = COALESCE(:battery_pct, battery_pct), "
    "battery_mv = COALESCE(:battery_mv, battery_mv), "
    "firmware_version = COALESCE(:fw, firmware_version), "
    + ", ".join(_fresh_fix(c) for c in _FIX_PARAM) + " WHERE id = :b_id")


def _sqlite_time(t: datetime | None) -> str | None:
    """An aware datetime as SQLAlchemy stores it in SQLite (UTCDateTime: naive UTC text,
    "YYYY-MM-DD HH:MM:SS.ffffff"; isoformat is a third of strftime's cost)."""
    if t is None:
        return None
    if t.tzinfo is not UTC:
        t = t.astimezone(UTC)
    return t.replace(tzinfo=None).isoformat(" ", "microseconds")


def _update_devices(conn: Connection, params: list[dict]) -> None:
    """The batch's device rows: on SQLite one executemany straight to the driver (the same
    statement as _device_update_stmt, written out: SQLAlchemy's per-row bind processing was a
    fifth of ingest's CPU); other dialects take the portable statement."""
    if conn.dialect.name != "sqlite":
        conn.execute(_device_update_stmt(), params)
        return
    rows = [{**q, "seen": _sqlite_time(q["seen"]), "fix_at": _sqlite_time(q["fix_at"])}
            for q in params]
    conn.exec_driver_sql(_SQLITE_DEVICE_UPDATE, rows)


_PG_COLS = (("id", "bigint"), ("last_counter", "bigint"), ("replay_bitmap", "bigint"),
            ("seen", "timestamptz"), ("battery_pct", "integer"), ("battery_mv", "integer"),
            ("fw", "varchar"), ("lat", "float8"), ("lon", "float8"), ("acc", "float8"),
            ("fix_at", "timestamptz"), ("take", "bigint"))


def _pg_fresh_fix(col: str) -> str:
    return (f"{col} = CASE WHEN v.fix_at IS NOT NULL AND (d.last_fix_at IS NULL OR "
            f"d.last_fix_at <= v.fix_at) THEN v.{_FIX_PARAM[col]} ELSE d.{col} END")


_PG_DEVICE_UPDATE = (  # one array per column, sent binary (%b: psycopg's text arrays escape
    # every element through a regex); a fixed text, parsed and planned once
    "WITH v AS (SELECT * FROM unnest("
    + ", ".join(f"%b::{t}[]" for _, t in _PG_COLS) + ") AS v("
    + ", ".join(n for n, _ in _PG_COLS) + ")), "
    # NO KEY UPDATE: the row lock the UPDATE takes anyway, taken in id order (the packet
    # INSERT's foreign-key KEY SHARE locks do not conflict with it; FOR UPDATE's would).
    "locked AS (SELECT d.id FROM devices d JOIN v USING (id) ORDER BY d.id "
    "FOR NO KEY UPDATE OF d) "
    "UPDATE devices AS d SET last_counter = v.last_counter, replay_bitmap = v.replay_bitmap, "
    "last_seen_at = v.seen, "
    f"status = CASE WHEN d.status = '{DeviceStatus.PROVISIONED.value}' "
    f"THEN '{DeviceStatus.ACTIVE.value}' ELSE d.status END, "
    "battery_pct = COALESCE(v.battery_pct, d.battery_pct), "
    "battery_mv = COALESCE(v.battery_mv, d.battery_mv), "
    "firmware_version = COALESCE(v.fw, d.firmware_version), "
    + ", ".join(_pg_fresh_fix(c) for c in _FIX_PARAM) + ", "
    "downlink_counter = d.downlink_counter + v.take "
    "FROM v JOIN locked USING (id) WHERE d.id = v.id RETURNING d.id, d.downlink_counter")


def _update_devices_pg(conn: Connection, params: list[dict]) -> dict[int, tuple[int, int]]:
    """PostgreSQL: every device row of the batch in ONE statement, which also takes each
    device's `take` downlink counters (row-locked, in id order so two servers committing
    overlapping batches lock alike): a round trip per device was most of the commit's time
    with many devices per batch (take_block per device: 2.7 k pkt/s, 320 us CPU/packet).
    Returns {device id: (first, last) counter taken}."""
    keys = ("b_id", "last_counter", "replay_bitmap", "seen", "battery_pct", "battery_mv",
            "fw", "lat", "lon", "acc", "fix_at", "take")
    got = conn.exec_driver_sql(_PG_DEVICE_UPDATE,
                               tuple([q[k] for q in params] for k in keys)).all()
    take = {q["b_id"]: q["take"] for q in params}
    return {dev: (last - take[dev] + 1, last) for dev, last in got if take[dev] > 0}


_PACKET_COLS = "device_id, counter, kind, transport, received_at, payload, raw"


_PG_PACKET_INSERT = (
    f"INSERT INTO device_packets ({_PACKET_COLS}) SELECT d, c, k, t, r, p::json, raw FROM "
    "unnest(%b::bigint[], %b::bigint[], %b::varchar[], %b::varchar[], %b::timestamptz[], "
    "%b::text[], %b::bytea[]) AS u(d, c, k, t, r, p, raw)")


def _insert_packets(conn: Connection, items: Sequence[Item]) -> None:
    """One executemany straight to the driver: SQLAlchemy's per-row type processing costs more
    than SQLite's own insert. Other dialects take the portable path."""
    name = conn.dialect.name
    if name == "sqlite":
        sql = f"INSERT INTO device_packets ({_PACKET_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        rows = [(it.dev.id, it.counter, it.kind, it.transport,
                 _sqlite_time(it.received_at),
                 json.dumps(it.fields), it.raw) for it in items]
    elif name == "postgresql":  # one statement, one array per column
        conn.exec_driver_sql(_PG_PACKET_INSERT, (
            [it.dev.id for it in items], [it.counter for it in items],
            [it.kind for it in items], [it.transport for it in items],
            [it.received_at for it in items], [json.dumps(it.fields) for it in items],
            [it.raw for it in items]))
        return
    else:
        conn.execute(insert(DevicePacket.__table__), [{
            "device_id": it.dev.id, "counter": it.counter, "kind": it.kind,
            "transport": it.transport, "received_at": it.received_at,
            "payload": it.fields, "raw": it.raw} for it in items])
        return
    conn.exec_driver_sql(sql, rows)


_FIELDS: dict[type, tuple[str, ...]] = {}
_REPORT = tuple(f.name for f in dataclasses.fields(p.Report))


def payload_fields(msg: p.Uplink) -> dict:
    """The decoded message as flat JSON fields (as protocol's `to_fields`, without the deep
    copies of `dataclasses.asdict`: this runs once per stored packet)."""
    names = _FIELDS.get(type(msg))
    if names is None:
        names = _FIELDS[type(msg)] = tuple(
            f.name for f in dataclasses.fields(msg) if f.name != "report")
    r = msg.report
    out = {"type": p.messages.TYPE_OF[type(msg)].name.lower()}
    for k in _REPORT:
        v = getattr(r, k)
        out[k] = int(v) if isinstance(v, IntEnum) else v
    for k in names:
        v = getattr(msg, k)
        out[k] = list(v) if isinstance(v, tuple) else int(v) if isinstance(v, IntEnum) else v
    return out


def flush(conn: Connection, items: Sequence[Item]) -> list[dict]:
    """The group commit's body (writer thread): store a batch, one transaction."""
    _insert_packets(conn, items)
    last: dict[int, Item] = {}
    count: dict[int, int] = {}
    fix: dict[int, Item] = {}
    extra: dict[int, dict] = {}
    for it in items:
        last[it.dev.id] = it
        count[it.dev.id] = count.get(it.dev.id, 0) + 1
        r = it.fields
        if r["fix"] and r["lat_e7"] is not None and r["lon_e7"] is not None:
            at = incidents.fix_time(r, it.received_at)
            if it.dev.id not in fix or at >= fix[it.dev.id][1]:  # the batch's newest fix
                fix[it.dev.id] = (it, at)
        if "fw" in r:
            extra.setdefault(it.dev.id, {})["fw"] = ".".join(map(str, r["fw"]))
        if r.get("battery_mv"):
            extra.setdefault(it.dev.id, {})["battery_mv"] = r["battery_mv"]
    blocks: dict[int, tuple[int, int] | None] = {}
    pg = conn.dialect.name == "postgresql"
    shared = conn.dialect.name != "sqlite"
    params = []
    for dev_id, it in last.items():
        # Room for this batch's acks plus operator downlinks, taken in this same commit.
        n = count[dev_id]
        if not shared:  # one server: a block ahead, room for the acks and operator downlinks
            if it.dev.dl_left < 2 * n + 32:
                blocks[dev_id] = take_block(conn, dev_id, block_size(conn, n, 4 * n))
        elif not pg:  # servers share the database: just this batch's acks, sent after commit
            blocks[dev_id] = take_block(conn, dev_id, n)
        f, fix_at = fix.get(dev_id, (None, None))
        fr = f.fields if f else None
        params.append({
            "b_id": dev_id, "last_counter": it.window[0], "replay_bitmap": it.window[1],
            "seen": it.received_at, "battery_pct": it.fields["battery_pct"],
            "battery_mv": extra.get(dev_id, {}).get("battery_mv"),
            "fw": extra.get(dev_id, {}).get("fw"),
            "lat": fr["lat_e7"] / 1e7 if fr else None, "lon": fr["lon_e7"] / 1e7 if fr else None,
            "acc": float(fr["accuracy_m"]) if fr and fr["accuracy_m"] is not None else None,
            "fix_at": fix_at, "take": n})
    if pg:  # the same as take_block per device plus _update_devices, in one round trip
        blocks.update(_update_devices_pg(conn, params))
    else:
        _update_devices(conn, params)
    effects: list[incidents.PacketEffect | None] = [None] * len(items)
    maybe = {it.dev.id for it in items if it.kind not in _ROUTINE and it.kind != "sos"}
    if maybe:  # cheap Core probe first: most positions belong to no open incident
        t = Incident.__table__
        maybe = set(conn.execute(select(t.c.device_id).where(
            t.c.device_id.in_(maybe), t.c.status.in_([s.value for s in incidents.OPEN_STATES])
        )).scalars())
    relevant = [i for i, it in enumerate(items)  # a call's state finds its incident, even closed
                if it.kind in ("sos", "call_state") or it.dev.id in maybe]
    if relevant:
        with Session(bind=conn) as s:
            out = incidents.apply_packets(s, [items[i] for i in relevant])
            s.flush()
        for i, e in zip(relevant, out, strict=True):
            effects[i] = e
    first = {}  # a device's new block goes to one of its items (the first), once
    for i, it in enumerate(items):
        first.setdefault(it.dev.id, i)
    return [{"effect": effects[i], "dl_block": blocks.get(it.dev.id) if first[it.dev.id] == i
             else None} for i, it in enumerate(items)]


_ROUTINE = frozenset({"check_in", "self_test", "receipt"})  # never touch incidents (positions etc. may)


class Ingest:
    def __init__(self, cfg: ServerConfig, db: Database, cache: DeviceCache, hub=None,
                 on_opened: Callable[[int], Awaitable[None]] | None = None):
        self.cfg = cfg
        self.db = db
        self.cache = cache
        self.hub = hub
        self.on_opened = on_opened
        self.delivery = None  # delivery.Delivery: pending downlinks ride on every uplink
        self.source_limit = RateLimiter(cfg.source_rate_per_s, cfg.source_burst)
        self.device_limit = RateLimiter(cfg.device_rate_per_s, cfg.device_burst)
        self.aml_limit = RateLimiter(cfg.aml_rate_per_s, cfg.aml_burst)  # webhooks._aml
        runner = (ProcessRunner(db.url, "urelief.server.ingest:flush") if cfg.writer_process
                  else ThreadRunner(db.engine, flush))
        self.writer = GroupWriter(runner, cfg.commit_batch_max, name="ingest-writer")
        # (device, counter) -> futures of copies waiting for that packet's commit
        self._inflight: dict[tuple[int, int], list[asyncio.Future]] = {}
        self.rejections: dict[str, int] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        # Labelled metric children, looked up once (labels() costs more than inc()).
        self._received = {c: metrics.PACKETS_RECEIVED.labels(c) for c in ("udp", "sms")}
        self._accepted = {(c, k): metrics.PACKETS_ACCEPTED.labels(c, k) for c in ("udp", "sms")
                          for k in (t.name.lower() for t in p.MsgType if not t.downlink)}

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.writer.start(loop)
        self._supervisor = loop.create_task(self._supervise())

    async def _supervise(self, every_s: float = 1.0) -> None:
        """A writer thread that died (it should not: every batch's failure is caught) is
        started again; /healthz shows the restart and why."""
        while True:
            await asyncio.sleep(every_s)
            try:
                self.writer.ensure_running()
            except Exception as e:
                logs.event("writer_restart_failed", level=50, error=repr(e))

    def stop(self) -> None:
        sup = getattr(self, "_supervisor", None)
        if sup is not None and self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(sup.cancel)
        self.writer.stop()

    def _reject(self, reason: str, source: str, **kw) -> Outcome:
        self.rejections[reason] = self.rejections.get(reason, 0) + 1
        metrics.PACKETS_REJECTED.labels(reason).inc()
        logs.event("packet_rejected", level=20 if reason != "rate_limited" else 10,
                   reason=reason, source=source, **kw)
        return Outcome("rejected", reason)

    async def handle(self, payload: bytes | str, channel: str, source: str, reply: Reply | None,
                     *, route: tuple | str | None = None, _counted: bool = False,
                     _decoded=None, _t0: float | None = None) -> Outcome:
        """One packet. `source` is what the rate limit counts (an IP, a phone number);
        `route` is how to reach the device later (UDP address or phone number)."""
        t0 = _t0 or time.perf_counter()
        if not _counted or _decoded is not None:
            self._received[channel].inc()
        try:
            if not _counted and not self.source_limit.allow(source):
                return self._reject("rate_limited", source)
            res = _decoded if _decoded is not None else self._decode(payload, channel)
            if isinstance(res, p.Rejected) and res.reason == p.Reason.BAD_TAG:
                # Re-keyed since we cached it? Re-read the device (rate-limited) and try again.
                old = self.cache.get(res.device_id)
                if old is not None and self.cache.get(res.device_id, reload=True) is not old:
                    res = self._decode(payload, channel)
            if isinstance(res, p.Rejected):
                if res.authentic:
                    return await self._copy(res, channel, source, reply, route, t0)
                return self._reject(res.reason.value, source, device=res.device_id,
                                    counter=res.counter, detail=res.detail)
            return await self._accept(res, payload, channel, reply, route, t0)
        except Exception as e:  # nothing unhandled: count it, log it, keep serving
            logs.event("ingest_error", level=40, source=source, error=repr(e))
            return self._reject("internal_error", source)

    def _decode(self, payload, channel: str) -> p.Accepted | p.Rejected:
        if channel == "sms":
            return p.decode_sms(payload, self.cache, self.cache, commit=False)
        return p.decode_uplink(payload, self.cache, self.cache, commit=False)

    def handle_nowait(self, payload: bytes, channel: str, source: str, reply: Reply,
                      route) -> None:
        """`handle` without a task for the common case (a new, valid packet): verify, queue
        for the commit, and ack from the commit's callback. Anything else takes the async path."""
        t0 = time.perf_counter()
        try:
            if not self.source_limit.allow(source):
                self._received[channel].inc()
                self._reject("rate_limited", source)
                return
            res = self._decode(payload, channel)
            if not isinstance(res, p.Accepted):
                self._spawn(self.handle(payload, channel, source, reply, route=route,
                                        _counted=True, _decoded=res, _t0=t0))
                return
            self._received[channel].inc()
            self._begin_accept(res, payload, channel, route, lambda ok, value, *started:
                               self._finish_accept(ok, value, *started, channel, reply, t0))
        except Exception as e:  # nothing unhandled: count it, log it, keep serving
            logs.event("ingest_error", level=40, source=source, error=repr(e))
            self._reject("internal_error", source)

    async def _accept(self, res: p.Accepted, payload, channel, reply, route, t0) -> Outcome:
        done = asyncio.get_running_loop().create_future()

        def committed(*c):  # runs even if this task was cancelled: the ack still goes out
            out = self._finish_accept(*c, channel, reply, t0)
            if not done.done():
                done.set_result(out)

        rejected = self._begin_accept(res, payload, channel, route, committed)
        return rejected if rejected is not None else await done

    def _begin_accept(self, res: p.Accepted, payload, channel, route,
                      committed: Callable[..., object]) -> Outcome | None:
        """Verified and new: mark the pending window and queue the packet for the commit.
        After the commit, in the loop: committed(ok, value, device, item, route) (no future
        per packet: the writer calls it from its batch's one callback). None, or the
        rejection Outcome."""
        dev = self.cache.get(res.device_id)
        assert dev is not None  # key_for found it
        if not self.device_limit.allow(dev.id):
            return self._reject("rate_limited", f"device:{dev.id}")
        if isinstance(payload, str) or p.is_text_form(payload):
            raw = p.from_text(payload if isinstance(payload, str) else payload.decode())
        else:
            raw = bytes(payload)
        self.cache.commit(res.device_id, res.counter)  # pending window
        dev.last_key_id = res.key_id
        if dev.prev_key_id is not None and res.key_id == dev.key_id:
            self.cache.drop_previous_key(dev)  # the device has switched keys (protocol.md §8)
        snap = DevSnap(dev.id, dev.subscriber_id, dev.school_id, dev.downlinks_left())
        w = dev.pending
        item = Item(snap, res.counter, res.type.name.lower(), payload_fields(res.message), channel,
                    utcnow(), raw, (w.highest, w.bitmap))
        self._inflight[(dev.id, res.counter)] = []
        self.writer.submit(item, lambda ok, value: committed(ok, value, dev, item, route))
        return None

    def _finish_accept(self, ok: bool, value, dev: DeviceState, item: Item, route,
                       channel: str, reply: Reply | None, t0: float) -> Outcome:
        """After the commit: ack, then what the packet did; then the copies that waited."""
        waiting = self._inflight.pop((dev.id, item.counter), ())
        try:
            return self._committed(ok, value, dev, item, route, channel, reply, t0)
        finally:
            for w in waiting:
                if not w.done():
                    w.set_result(ok)

    def _committed(self, ok: bool, value, dev: DeviceState, item: Item, route,
                   channel: str, reply: Reply | None, t0: float) -> Outcome:
        counter = item.counter
        err = None if ok else value
        if isinstance(err, AlreadyStored):  # stored by an earlier life of this server
            metrics.PACKETS_DUPLICATE.labels(channel).inc()
            self._ack_soon(dev, counter, reply, t0)
            return Outcome("duplicate", device_id=dev.id, counter=counter)
        if err is not None:  # StoreFailed, or the writer is gone
            dev.pending = dev.committed  # not stored: the device's retry must be accepted
            return self._reject("store_failed", f"device:{dev.id}", error=repr(err))
        result = value
        if dev.committed.check(counter) is None:
            dev.committed = dev.committed.mark(counter)
        # Only a packet this commit stored is fresh: a copy another server (or an earlier life
        # of this one) stored, replayed from elsewhere, never takes the device's downlinks.
        self._note_route(dev, channel, route)
        dev.add_block(result["dl_block"])
        self._ack_soon(dev, counter, reply, t0)
        self._accepted[(channel, item.kind)].inc()
        eff: incidents.PacketEffect | None = result["effect"]
        if self.delivery is not None:
            if item.kind == "cancel" and eff is not None and eff.incident_id is not None:
                self.delivery.on_cancel(eff.incident_id, bool(item.fields["duress"]))
            self.delivery.on_uplink(dev, item.kind, item.fields, reply, channel)
        if eff is not None and eff.incident_id is not None:
            if eff.opened:
                dev.ack_level = p.AckLevel.RECEIVED
                metrics.INCIDENTS_OPENED.labels(str(eff.is_drill).lower()).inc()
                logs.event("incident_opened", incident=eff.incident_id, device=dev.id,
                           drill=eff.is_drill, transport=channel)
                if self.on_opened is not None:
                    self._spawn(self.on_opened(eff.incident_id))
            if self.hub is not None:
                self.hub.publish("incident", {"id": eff.incident_id, "school_id": eff.school_id,
                                              "opened": eff.opened, "drill": eff.is_drill,
                                              "events": eff.events})
        return Outcome("accepted", device_id=dev.id, counter=counter,
                       incident_id=eff.incident_id if eff else None)

    async def _copy(self, res: p.Rejected, channel, source, reply, route, t0) -> Outcome:
        """An authentic copy (duplicate, or older than the window): ack it if it is stored."""
        dev = self.cache.get(res.device_id)
        if dev is None:
            return self._reject(res.reason.value, source)
        waiting = self._inflight.get((dev.id, res.counter))
        if waiting is not None:  # the original is being committed: wait for that commit
            fut = asyncio.get_running_loop().create_future()
            waiting.append(fut)
            stored = await fut
            if not stored:
                return self._reject("store_failed", source)
        elif res.reason == p.Reason.TOO_OLD or dev.committed.check(res.counter) is None:
            # Not known committed in memory: only the database can say it was stored.
            stored = await asyncio.to_thread(stored_counter, self.db, dev.id, res.counter)
            if not stored:
                return self._reject(res.reason.value, source, device=dev.id, counter=res.counter)
        # The re-ack goes back to where the copy came from; the device's route does not move
        # (a replay from another address must not take its downlinks). One exception: the SMS
        # copy of a UDP packet whose ack was lost gives a number to a device that had none.
        if channel == "sms" and route and not dev.msisdn:
            dev.msisdn = route
        metrics.PACKETS_DUPLICATE.labels(channel).inc()
        await self._ack(dev, res.counter, reply, t0)
        if self.delivery is not None:  # a retry: the device is listening now too
            self.delivery.on_uplink(dev, None, {}, reply, channel)
        return Outcome("duplicate", device_id=dev.id, counter=res.counter)

    def _note_route(self, dev: DeviceState, channel: str, route) -> None:
        if channel == "udp" and route is not None:
            dev.udp_addr, dev.udp_at = route, time.monotonic()
        elif channel == "sms" and route:
            dev.msisdn = route

    def _ack_soon(self, dev: DeviceState, counter: int, reply: Reply | None, t0: float) -> None:
        """Ack now when a downlink counter is reserved and the reply is synchronous (UDP);
        otherwise (counter reservation, SMS) in a task."""
        if reply is None:
            return
        c = dev.take_downlink_counter()
        if c is None:
            self._spawn(self._ack(dev, counter, reply, t0))
            return
        key_id, secret = dev.sealing_key()
        pkt = p.encode_downlink(p.Ack(acked_counter=counter, level=dev.ack_level),
                                device_id=dev.id, key_id=key_id, secret=secret, counter=c)
        if self.delivery is not None:
            self.delivery.sealed_ack(dev, c, dev.ack_level)
        r = reply(pkt)
        if asyncio.iscoroutine(r):
            self._spawn(r)
        metrics.ACK_LATENCY.observe(time.perf_counter() - t0)

    async def _ack(self, dev: DeviceState, counter: int, reply: Reply | None, t0: float) -> None:
        if reply is None:
            return
        level = dev.ack_level
        pkt = await self.seal(dev, p.Ack(acked_counter=counter, level=level))
        if self.delivery is not None:
            self.delivery.sealed_ack(dev, int.from_bytes(pkt[6:10], "big"), level)
        r = reply(pkt)
        if asyncio.iscoroutine(r):
            await r
        metrics.ACK_LATENCY.observe(time.perf_counter() - t0)

    async def seal(self, dev: DeviceState, msg: p.Downlink) -> bytes:
        c = dev.take_downlink_counter()
        if c is None:
            await asyncio.to_thread(self.cache.reserve_downlinks, dev)
            c = dev.take_downlink_counter()
        key_id, secret = dev.sealing_key()
        return p.encode_downlink(msg, device_id=dev.id, key_id=key_id, secret=secret, counter=c)

    def _spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
