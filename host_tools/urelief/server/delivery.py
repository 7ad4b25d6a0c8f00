"""Downlinks that are delivered, not hoped for (docs/protocol.md §4, delivery; issue 9).

Every operator downlink (question, tracking, stand-down, a level ACK, listen-in) is a
`pending_downlinks` row, written before it is first sent. It is sent at once, again after
every authentic uplink from the device (the device is listening then, on the channel it just
used), and over UDP every `downlink_repeat_s` while the device was heard over UDP within
`downlink_awake_s`; each try sealed afresh under a new downlink counter. It stops when a
RECEIPT's window holds one of those counters (delivered), when it expires, or when a newer
downlink replaces it. Rows are loaded again at start, so a restart loses nothing.

    d = Delivery(cfg, db, cache, ingest, notifier)
    await d.start(loop)                                     # loads what is pending
    channel = await d.send(device_id, incident_id, "question", msg)
    d.on_uplink(dev, item.kind, item.fields, reply, "udp")  # ingest, after the uplink's ACK
    d.sealed_ack(dev, counter, level)                       # ingest: a plain ACK's counter
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum

from sqlalchemy import select, update

from urelief import protocol as p
from urelief.registry.models import PendingDownlink, utcnow
from urelief.server import logs

T = p.MsgType
# How long each kind is worth delivering (a QUESTION: its own timeout).
LIFETIME_S = {T.STAND_DOWN: 7 * 86400, T.CONFIG: 30 * 86400}
DEFAULT_LIFETIME_S = 86400  # tracking, a level ACK, listen-in: a day, or until a stand-down
COUNTERS_KEPT = 16  # downlink counters remembered per pending downlink
_CLASS = {t: cls for cls, t in p.messages.TYPE_OF.items()}


@dataclass(eq=False)
class Pending:
    id: int
    device_id: int
    incident_id: int | None
    type: p.MsgType
    msg: p.Downlink
    expires_at: datetime
    counters: list[int] = field(default_factory=list)
    tries: int = 0
    sent_at: float = 0.0  # time.monotonic() of the last try
    busy: bool = False  # a try is under way (sealing, sending, noting it)

    @property
    def level(self) -> int:
        return int(self.msg.level) if self.type == T.ACK else 0


def message_fields(msg: p.Downlink) -> dict:
    out = {}
    for f in dataclasses.fields(msg):
        v = getattr(msg, f.name)
        out[f.name] = [list(i) for i in v] if f.name == "items" else \
            int(v) if isinstance(v, IntEnum) else v
    return out


def message_of(kind: str, fields: dict) -> p.Downlink:
    f = dict(fields)
    if "items" in f:
        f["items"] = tuple(tuple(i) for i in f["items"])
    return _CLASS[T[kind.upper()]](**f)


def _replaces(new: Pending, old: Pending) -> bool:
    """A newer downlink makes an older pending one pointless: the same kind for the same alert,
    or a stand-down of it (the alert is over)."""
    if old.incident_id != new.incident_id:
        return False
    return new.type == old.type or new.type == T.STAND_DOWN


class Delivery:
    def __init__(self, cfg, db, cache, ingest, notifier):
        self.cfg, self.db, self.cache = cfg, db, cache
        self.ingest, self.notifier = ingest, notifier
        self.repeat_s = cfg.downlink_repeat_s
        self.awake_s = cfg.downlink_awake_s
        self._by_dev: dict[int, list[Pending]] = {}
        self._task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        rows = await asyncio.to_thread(self._load)
        for pd in rows:
            self._by_dev.setdefault(pd.device_id, []).append(pd)
        if rows:
            logs.event("downlinks_pending", count=len(rows))
        self._task = loop.create_task(self._timer())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _load(self) -> list[Pending]:
        with self.db.session() as s:
            return [Pending(r.id, r.device_id, r.incident_id, T[r.type.upper()],
                            message_of(r.type, r.message), r.expires_at, list(r.counters or ()),
                            r.tries)
                    for r in s.scalars(select(PendingDownlink).where(
                        PendingDownlink.state == "pending").order_by(PendingDownlink.id))]

    def pending(self, device_id: int) -> list[Pending]:
        return list(self._by_dev.get(device_id, ()))

    # -- a new downlink ----------------------------------------------------------------------
    async def send(self, device_id: int, incident_id: int | None, action: str,
                   msg: p.Downlink) -> str:
        """Store it as pending (replacing what it makes pointless), then send it now.
        -> the channel of this first try: udp, sms or unreachable (it stays pending)."""
        mtype = p.messages.TYPE_OF[type(msg)]
        now = utcnow()
        life = msg.timeout_s if mtype == T.QUESTION else LIFETIME_S.get(mtype, DEFAULT_LIFETIME_S)
        pd = Pending(0, device_id, incident_id, mtype, msg, now + timedelta(seconds=life))
        old = [o for o in self._by_dev.get(device_id, ()) if _replaces(pd, o)]
        pd.id = await asyncio.to_thread(self._insert, pd, action, now, [o.id for o in old])
        lst = self._by_dev.setdefault(device_id, [])
        for o in old:
            if o in lst:
                lst.remove(o)
        lst.append(pd)
        return await self._try(pd, None)

    def _insert(self, pd: Pending, action: str, now: datetime, replaced: list[int]) -> int:
        with self.db.session() as s:
            if replaced:
                s.execute(update(PendingDownlink).where(PendingDownlink.id.in_(replaced))
                          .values(state="replaced", closed_at=now))
            row = PendingDownlink(device_id=pd.device_id, incident_id=pd.incident_id,
                                  type=pd.type.name.lower(), action=action,
                                  message=message_fields(pd.msg), counters=[], state="pending",
                                  tries=0, created_at=now, expires_at=pd.expires_at)
            s.add(row)
            s.flush()
            return row.id

    def withdraw(self, incident_id: int, types: tuple[p.MsgType, ...] | None = None) -> None:
        """An alert's pending downlinks (of these types) are no longer wanted: e.g. its
        questions after a duress cancel, everything but its stand-down after a true cancel."""
        gone = []
        for lst in self._by_dev.values():
            for pd in list(lst):
                if pd.incident_id == incident_id and (types is None or pd.type in types):
                    lst.remove(pd)
                    gone.append(pd.id)
        if gone:
            self._spawn(asyncio.to_thread(self._close, gone, "replaced"))

    # -- tries -------------------------------------------------------------------------------
    async def _try(self, pd: Pending, reply, via: str | None = None) -> str:
        """One try: sealed afresh; over `reply` (the channel an uplink just came on), else the
        device's UDP route, else SMS."""
        pd.busy = True
        try:
            return await self._try_once(pd, reply, via)
        finally:
            pd.busy = False

    async def _try_once(self, pd: Pending, reply, via: str | None) -> str:
        dev = self.cache.get(pd.device_id)
        if dev is None:
            channel = "unreachable"
        else:
            pkt = await self.ingest.seal(dev, pd.msg)
            pd.counters = (pd.counters + [int.from_bytes(pkt[6:10], "big")])[-COUNTERS_KEPT:]
            channel = await self._out(dev, pkt, reply, via)
        pd.tries += 1
        pd.sent_at = time.monotonic()
        await asyncio.to_thread(self._note_try, pd, channel)
        return channel

    async def _out(self, dev, pkt: bytes, reply, via: str | None) -> str:
        if reply is not None:
            r = reply(pkt)
            if asyncio.iscoroutine(r):
                await r
            return via or "reply"
        return await self.notifier.send_sealed(dev, pkt)

    def _note_try(self, pd: Pending, channel: str) -> None:
        with self.db.session() as s:
            s.execute(update(PendingDownlink).where(PendingDownlink.id == pd.id).values(
                tries=pd.tries, counters=list(pd.counters), last_channel=channel,
                last_sent_at=utcnow()))

    def _close(self, ids: list[int], state: str) -> None:
        with self.db.session() as s:
            s.execute(update(PendingDownlink).where(PendingDownlink.id.in_(ids),
                                                    PendingDownlink.state == "pending")
                      .values(state=state, closed_at=utcnow()))

    # -- the ingest's hooks ------------------------------------------------------------------
    def on_uplink(self, dev, kind: str | None, fields: dict, reply, via: str) -> None:
        """An authentic uplink from `dev` (its ACK already sent): a RECEIPT confirms what it
        names; a cancel withdraws what it makes pointless; what is still pending goes again
        over the uplink's own channel, while the device listens."""
        lst = self._by_dev.get(dev.id)
        if not lst:
            return
        if kind == "receipt":
            r = p.Receipt(None, fields["highest"], fields["bitmap"])  # type: ignore[arg-type]
            done = [pd for pd in lst if any(r.has(c) for c in pd.counters)]
            for pd in done:
                lst.remove(pd)
                logs.event("downlink_delivered", device=dev.id, type=pd.type.name.lower(),
                           tries=pd.tries, incident=pd.incident_id)
            if done:
                self._spawn(asyncio.to_thread(self._close, [pd.id for pd in done], "delivered"))
        if reply is None:
            return
        for pd in list(lst):
            if not pd.busy:  # one try at a time (an uplink and its SMS copy arrive together)
                pd.busy = True
                self._spawn(self._try(pd, reply, via))

    def sealed_ack(self, dev, counter: int, level: int) -> None:
        """A plain ACK sealed at `level` carries a pending level ACK's news too: a RECEIPT
        naming its counter confirms that pending ACK (the device confirms the ACK that raised
        its level, whichever it was)."""
        for pd in self._by_dev.get(dev.id, ()):
            if pd.type == T.ACK and level >= pd.level:
                pd.counters = (pd.counters + [counter])[-COUNTERS_KEPT:]

    def on_cancel(self, incident_id: int, duress: bool) -> None:
        if duress:  # no question may reach the child any more (incidents.DURESS_NO_QUESTIONS)
            self.withdraw(incident_id, (T.QUESTION,))
        else:  # the device stood itself down: only a stand-down is still worth sending
            self.withdraw(incident_id, tuple(t for t in T if t.downlink and t != T.STAND_DOWN))

    # -- the timer ---------------------------------------------------------------------------
    async def _timer(self, every_s: float = 1.0) -> None:
        """Expire what is past its time; repeat over UDP to a device heard within awake_s."""
        while True:
            await asyncio.sleep(every_s)
            try:
                self._tick()
            except Exception as e:  # never stop repeating over one bad row
                logs.event("delivery_tick_failed", level=40, error=repr(e))

    def _tick(self) -> None:
        now, mono = utcnow(), time.monotonic()
        expired = []
        for dev_id, lst in list(self._by_dev.items()):
            for pd in list(lst):
                if pd.expires_at <= now:
                    lst.remove(pd)
                    expired.append(pd.id)
            if not lst:
                del self._by_dev[dev_id]
                continue
            dev = self.cache.get(dev_id)
            if dev is None or dev.udp_route() is None or mono - dev.udp_at > self.awake_s:
                continue
            for pd in lst:
                if not pd.busy and mono - pd.sent_at >= self.repeat_s:
                    pd.busy = True
                    self._spawn(self._try(pd, None))
        if expired:
            self._spawn(asyncio.to_thread(self._close, expired, "expired"))

    def _spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._done)

    def _done(self, t: asyncio.Task) -> None:
        self._tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            logs.event("delivery_failed", level=40, error=repr(t.exception()))


def pending_out(row: PendingDownlink) -> dict:
    return {"id": row.id, "type": row.type, "action": row.action, "state": row.state,
            "tries": row.tries, "last_channel": row.last_channel,
            "created_at": row.created_at.isoformat(),
            "last_sent_at": row.last_sent_at.isoformat() if row.last_sent_at else None,
            "expires_at": row.expires_at.isoformat(),
            "closed_at": row.closed_at.isoformat() if row.closed_at else None}
