"""Silent-caller links ("Knock Knock"): a dispatcher texts a phone whose owner cannot speak a
one-time link; the page it opens shares the phone's position, a silent chat and — when the
caller taps "show the police" — live camera video over WebRTC, signalled through this server.

A link is a random token (24 bytes, URL-safe) of which only the SHA-256 is stored. Unopened it
dies after `knock_link_ttl_s`; the first phone that opens it holds it (an HttpOnly cookie whose
SHA-256 is kept), and from then on it works for that phone only, while its incident is open and
for at most `knock_link_max_s`. A dead link, a forwarded copy or a closed incident all look the
same to whoever opens them: nothing.

    links = Links(cfg, db)
    inc, link, token = links.create(actor, "+821012345678", None)   # blocking (DB)
    view = links.resolve(token, holder)                              # LinkView or raises Gone
    relay.publish(incident_id, "desk", "chat", {...})                # live, in memory
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from urelief.ratelimit import RateLimiter
from urelief.registry import audit
from urelief.registry.audit import SYSTEM, Actor
from urelief.registry.errors import Conflict, Denied, Invalid, Throttled
from urelief.registry.models import (
    CallerLink,
    Incident,
    IncidentEvent,
    IncidentSource,
    IncidentStatus,
    Notification,
    NotificationStatus,
    utcnow,
)
from urelief.server.config import ServerConfig

OPEN = (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED, IncidentStatus.DISPATCHED)
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
QUICK_REPLIES = ("yes", "no", "I can't talk", "he is here", "I am safe now")
CHAT_MAX = 500  # characters per message
SEEN_EVERY_S = 5.0  # the page's "last seen" is written at most this often


class Gone(Exception):
    """No such link, expired, held by another phone, or its incident is closed."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sms_text(link_url: str) -> str:
    """Neutral wording: whoever else reads the phone sees a plain link (GSM-7, one SMS)."""
    return f"Your link: {link_url}"


@dataclass
class LinkView:
    link_id: int
    incident_id: int
    msisdn: str
    holder: str | None = None  # a new holder secret when this open claimed the link


class Links:
    def __init__(self, cfg: ServerConfig, db):
        self.cfg, self.db = cfg, db
        self.per_number = RateLimiter(1.0 / cfg.knock_link_refill_s, cfg.knock_links_per_number)
        self.per_operator = RateLimiter(1.0 / 6.0, 10)  # a desk texting many numbers: a fault

    # -- the dispatcher's side -----------------------------------------------------------------
    def create(self, actor: Actor, msisdn: str | None, incident_id: int | None,
               ) -> tuple[dict, int, str]:
        """Open a silent-caller incident for `msisdn` (or use the AML/silent-caller incident
        `incident_id`, which carries the number) and make its link. Answers (incident as
        `incident_out`, link id, token). Raises Invalid / NotFound / Conflict / Denied."""
        from urelief.registry import policy
        from urelief.server.incidents import get_visible, incident_out

        if not policy.may_act_on_incidents(actor):
            raise Denied(f"role {actor.role} may not reach callers")
        with self.db.session() as s:
            now = utcnow()
            if incident_id is not None:
                inc = get_visible(s, actor, incident_id)
                if inc.status not in OPEN:
                    raise Conflict(f"incident {incident_id} is {inc.status.value}")
                if not inc.caller_msisdn:
                    raise Invalid("no phone number", [{"field": "incident_id", "message":
                                                       "this incident carries no caller number"}])
                if msisdn and msisdn != inc.caller_msisdn:
                    raise Invalid("two numbers", [{"field": "msisdn", "message":
                                                   "differs from the incident's caller"}])
                msisdn = inc.caller_msisdn
            elif not msisdn or not E164.match(msisdn):
                raise Invalid("bad number", [{"field": "msisdn",
                                              "message": "an E.164 number, e.g. +821012345678"}])
            assert msisdn is not None
            if not self.per_number.allow(msisdn) or \
                    not self.per_operator.allow(str(actor.operator_id or actor.username)):
                audit.record(s, actor, "knock.link", object_type="phone", object_id=msisdn,
                             outcome="denied", detail={"reason": "rate limited"})
                s.commit()
                raise Throttled(f"too many links to {msisdn}; wait "
                                  f"{self.cfg.knock_link_refill_s:.0f} s")
            if incident_id is None:
                inc = Incident(status=IncidentStatus.OPEN, source=IncidentSource.SILENT_CALLER,
                               caller_msisdn=msisdn, trigger="silent_caller", opened_at=now,
                               assigned_operator_id=actor.operator_id)
                s.add(inc)
                s.flush()
                s.add(IncidentEvent(incident_id=inc.id, kind="status", at=now, transport="http",
                                    operator_id=actor.operator_id,
                                    payload={"status": "open", "action": "silent_caller"}))
            token = secrets.token_urlsafe(24)
            link = CallerLink(incident_id=inc.id, token_hash=token_hash(token), msisdn=msisdn,
                              created_by=actor.operator_id, created_at=now,
                              expires_at=now + timedelta(seconds=self.cfg.knock_link_ttl_s))
            s.add(link)
            s.flush()
            s.add(IncidentEvent(incident_id=inc.id, kind="knock", at=now, transport="http",
                                operator_id=actor.operator_id,
                                payload={"what": "link_made", "link_id": link.id, "to": msisdn,
                                         "expires_at": link.expires_at.isoformat()}))
            audit.record(s, actor, "knock.link", object_type="incident", object_id=inc.id,
                         detail={"link_id": link.id, "to": msisdn,
                                 "expires_at": link.expires_at})
            return incident_out(inc), link.id, token

    def note_sms(self, incident_id: int, link_id: int, to: str, ok: bool, ref: str | None,
                 error: str | None) -> None:
        """The link's SMS as a Notification (its body without the token) and an event."""
        with self.db.session() as s:
            s.add(Notification(incident_id=incident_id, to_number=to, purpose="knock",
                               body=sms_text("…/k/…"),
                               status=NotificationStatus.SENT if ok else NotificationStatus.FAILED,
                               gateway_ref=ref, error=(error or None) and error[:300]))
            s.add(IncidentEvent(incident_id=incident_id, kind="knock", at=utcnow(),
                                transport="http", payload={"what": "sms_sent" if ok else
                                                           "sms_failed", "link_id": link_id,
                                                           "to": to, "error": error}))

    def desk_view(self, actor: Actor, incident_id: int) -> dict:
        """What the dashboard's caller panel shows: links, chat, last heard of each channel."""
        from urelief.server.incidents import get_visible

        with self.db.session() as s:
            inc = get_visible(s, actor, incident_id)
            links = s.scalars(select(CallerLink).where(CallerLink.incident_id == inc.id)
                              .order_by(CallerLink.id)).all()
            events = s.scalars(select(IncidentEvent).where(
                IncidentEvent.incident_id == inc.id,
                IncidentEvent.kind.in_(("chat", "position", "knock")))
                .order_by(IncidentEvent.id)).all()
            chat = [chat_out(e) for e in events if e.kind == "chat"]
            heard = {
                "position": _last(e for e in events if e.kind == "position"
                                  and e.transport == "web"),
                "message": _last(e for e in events if e.kind == "chat"
                                 and e.payload.get("from") == "caller"),
                "page": max((lk.last_seen_at for lk in links if lk.last_seen_at), default=None),
            }
            return {
                "incident_id": inc.id, "open": inc.status in OPEN, "msisdn": inc.caller_msisdn,
                "links": [{"id": lk.id, "to": lk.msisdn, "created_at": _iso(lk.created_at),
                           "expires_at": _iso(lk.expires_at), "opened_at": _iso(lk.opened_at),
                           "last_seen_at": _iso(lk.last_seen_at)} for lk in links],
                "chat": chat, "heard": {k: _iso(v) for k, v in heard.items()},
                "quick_replies": list(QUICK_REPLIES), "ice_servers": self.cfg.ice_servers,
            }

    # -- the caller's side -----------------------------------------------------------------------
    def resolve(self, token: str, holder: str | None, claim: bool = False) -> LinkView:
        """The link behind `token` for the phone holding `holder` (its cookie). With `claim`,
        an unopened live link is claimed by this phone (a new holder secret comes back)."""
        if not token or len(token) > 64:
            raise Gone
        with self.db.session() as s:
            link = s.scalar(select(CallerLink).where(CallerLink.token_hash == token_hash(token)))
            if link is None or link.revoked_at is not None:
                raise Gone
            inc = s.get(Incident, link.incident_id)
            now = utcnow()
            if inc is None or inc.status not in OPEN:
                raise Gone
            if now > link.created_at + timedelta(seconds=self.cfg.knock_link_max_s):
                raise Gone
            view = LinkView(link.id, link.incident_id, link.msisdn)
            if link.holder_hash is None:
                if not claim or now > link.expires_at:
                    raise Gone
                view.holder = secrets.token_urlsafe(24)
                link.holder_hash = token_hash(view.holder)
                link.opened_at = link.last_seen_at = now
                s.add(IncidentEvent(incident_id=inc.id, kind="knock", at=now, transport="web",
                                    payload={"what": "opened", "link_id": link.id}))
                audit.record(s, SYSTEM, "knock.link_opened", object_type="incident",
                             object_id=inc.id, detail={"link_id": link.id})
            elif holder is None or not secrets.compare_digest(link.holder_hash,
                                                              token_hash(holder)):
                raise Gone
            elif link.last_seen_at is None or \
                    (now - link.last_seen_at).total_seconds() >= SEEN_EVERY_S:
                link.last_seen_at = now
            return view

    def alive(self, link_id: int) -> bool:
        with self.db.session() as s:
            link = s.get(CallerLink, link_id)
            inc = s.get(Incident, link.incident_id) if link is not None else None
            return inc is not None and inc.status in OPEN and link.revoked_at is None

    def caller_view(self, view: LinkView) -> dict:
        with self.db.session() as s:
            chat = [chat_out(e) for e in s.scalars(select(IncidentEvent).where(
                IncidentEvent.incident_id == view.incident_id, IncidentEvent.kind == "chat")
                .order_by(IncidentEvent.id))]
        return {"chat": chat, "quick_replies": list(QUICK_REPLIES),
                "ice_servers": self.cfg.ice_servers}

    def position(self, view: LinkView, body: dict) -> dict:
        """A Geolocation fix from the page: an incident position (map, track, accuracy)."""
        fix = parse_fix(body)
        now = utcnow()
        with self.db.session() as s:
            inc = s.get(Incident, view.incident_id)
            inc.last_lat, inc.last_lon, inc.last_accuracy_m = fix["lat"], fix["lon"], fix[
                "accuracy_m"]
            inc.last_fix_at = now
            inc.updated_at = now
            s.add(IncidentEvent(incident_id=inc.id, kind="position", at=now, transport="web",
                                payload={**fix, "method": "browser"}))
        return {**fix, "at": now.isoformat()}

    def chat(self, incident_id: int, sender: str, text: Any, actor: Actor | None = None) -> dict:
        """A chat line from the caller or the desk, stored as an incident event."""
        text = str(text if text is not None else "").strip()
        if not text:
            raise Invalid("empty message", [{"field": "text", "message": "required"}])
        text = text[:CHAT_MAX]
        now = utcnow()
        with self.db.session() as s:
            inc = s.get(Incident, incident_id)
            if inc is None or inc.status not in OPEN:
                raise Conflict("the incident is closed")
            inc.updated_at = now
            ev = IncidentEvent(incident_id=incident_id, kind="chat", at=now, transport="web"
                               if sender == "caller" else "http",
                               operator_id=actor.operator_id if actor else None,
                               payload={"from": sender, "text": text,
                                        "quick": text in QUICK_REPLIES})
            s.add(ev)
            s.flush()
            if actor is not None:
                audit.record(s, actor, "knock.chat", object_type="incident", object_id=inc.id,
                             detail={"event_id": ev.id})
            return chat_out(ev)


def parse_fix(body: dict) -> dict:
    """A position body {lat, lon, accuracy_m, heading?, speed_m_s?, time_ms?}: hostile input,
    checked field by field."""
    def num(key: str, lo: float, hi: float, required: bool = True) -> float | None:
        v = body.get(key)
        if v is None and not required:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
                or not lo <= v <= hi:
            raise Invalid("bad position", [{"field": key, "message": f"a number in {lo}..{hi}"}])
        return float(v)

    fix = {"lat": num("lat", -90, 90), "lon": num("lon", -180, 180),
           "accuracy_m": num("accuracy_m", 0, 1e6)}
    for key, lo, hi in (("heading", 0, 360), ("speed_m_s", 0, 500)):
        v = num(key, lo, hi, required=False)
        if v is not None:
            fix[key] = v
    t = num("time_ms", 0, 1e14, required=False)
    if t is not None:
        fix["time"] = datetime.fromtimestamp(t / 1000).astimezone().isoformat()
    return fix


def chat_out(e: IncidentEvent) -> dict:
    return {"id": e.id, "at": _iso(e.at), "from": e.payload.get("from"),
            "text": e.payload.get("text", ""), "quick": bool(e.payload.get("quick"))}


def _last(events) -> datetime | None:
    last = None
    for e in events:
        last = e.at
    return last


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


# -- live relay: chat, positions and WebRTC signalling between the page and the desk -----------

_QUEUE_MAX = 200


@dataclass
class Video:
    """The caller's current WebRTC offer and what each side trickled (for a late desk)."""

    offer_id: str | None = None
    offer: dict | None = None
    answered: bool = False
    caller_candidates: list = field(default_factory=list)
    desk_candidates: list = field(default_factory=list)


class Relay:
    """In-memory fan-out per incident and side ("caller" | "desk"). Signalling is ephemeral on
    purpose: a reopened page or a reloaded desk negotiates again."""

    def __init__(self) -> None:
        self._subs: dict[tuple[int, str], set[asyncio.Queue]] = {}
        self.video: dict[int, Video] = {}

    def publish(self, incident_id: int, side: str, kind: str, data: dict) -> None:
        for q in list(self._subs.get((incident_id, side), ())):
            try:
                q.put_nowait((kind, data))
            except asyncio.QueueFull:
                pass  # a stuck viewer misses live lines; it reloads the state on reconnect

    def listeners(self, incident_id: int, side: str) -> int:
        return len(self._subs.get((incident_id, side), ()))

    async def stream(self, incident_id: int, side: str, still_open,
                     check_s: float = 2.0) -> AsyncIterator[str]:
        """SSE frames for one viewer; ends with `closed` once `still_open()` (blocking, run in
        a thread every `check_s`) says the incident is over."""
        import json

        key = (incident_id, side)
        q: asyncio.Queue = asyncio.Queue(_QUEUE_MAX)
        self._subs.setdefault(key, set()).add(q)
        try:
            yield "retry: 2000\n\nevent: hello\ndata: {}\n\n"
            while True:
                try:
                    kind, data = await asyncio.wait_for(q.get(), check_s)
                except TimeoutError:
                    if not await asyncio.to_thread(still_open):
                        yield "event: closed\ndata: {}\n\n"
                        return
                    yield ": keepalive\n\n"
                    continue
                yield f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"
        finally:
            subs = self._subs.get(key)
            if subs is not None:
                subs.discard(q)
                if not subs:
                    del self._subs[key]

    # WebRTC: the caller offers (it has the camera), one desk answers, both trickle candidates.
    def caller_signal(self, incident_id: int, msg: dict) -> None:
        kind = msg.get("type")
        v = self.video.setdefault(incident_id, Video())
        if kind == "offer":
            sdp = _sdp(msg)
            offer_id = _offer_id(msg)
            self.video[incident_id] = v = Video(offer_id=offer_id,
                                                offer={"type": "offer", "sdp": sdp})
            self.publish(incident_id, "desk", "offer", {"offer_id": offer_id, "sdp": sdp})
        elif kind == "candidate":
            if _offer_id(msg) != v.offer_id:
                raise Conflict("stale offer")
            cand = _candidate(msg)
            if len(v.caller_candidates) >= _CANDIDATE_MAX:
                raise Conflict("too many candidates")
            v.caller_candidates.append(cand)
            self.publish(incident_id, "desk", "candidate", {"offer_id": v.offer_id,
                                                            "candidate": cand})
        elif kind == "stopped":
            self.video.pop(incident_id, None)
            self.publish(incident_id, "desk", "video_stopped", {})
        else:
            raise Invalid("bad signal", [{"field": "type", "message": "offer|candidate|stopped"}])

    def desk_signal(self, incident_id: int, msg: dict) -> None:
        kind = msg.get("type")
        v = self.video.get(incident_id)
        if kind == "restart":  # a desk without the stream asks the page for a new offer
            self.publish(incident_id, "caller", "restart", {})
            return
        if v is None or v.offer_id is None:
            raise Conflict("no video offer")
        if _offer_id(msg) != v.offer_id:
            raise Conflict("stale offer")
        if kind == "answer":
            if v.answered:
                raise Conflict("another desk answered this offer")
            v.answered = True
            self.publish(incident_id, "caller", "answer",
                         {"offer_id": v.offer_id, "sdp": _sdp(msg)})
        elif kind == "candidate":
            cand = _candidate(msg)
            if len(v.desk_candidates) >= _CANDIDATE_MAX:
                raise Conflict("too many candidates")
            v.desk_candidates.append(cand)
            self.publish(incident_id, "caller", "candidate",
                         {"offer_id": v.offer_id, "candidate": cand})
        else:
            raise Invalid("bad signal", [{"field": "type",
                                          "message": "answer|candidate|restart"}])

    def video_out(self, incident_id: int) -> dict | None:
        v = self.video.get(incident_id)
        if v is None or v.offer is None:
            return None
        return {"offer_id": v.offer_id, "sdp": v.offer["sdp"], "answered": v.answered,
                "candidates": list(v.caller_candidates)}

    def forget(self, incident_id: int) -> None:
        self.video.pop(incident_id, None)


_SDP_MAX = 20_000
_CANDIDATE_MAX = 40  # trickled candidates per side and offer


def _sdp(msg: dict) -> str:
    sdp = msg.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > _SDP_MAX:
        raise Invalid("bad sdp", [{"field": "sdp", "message": f"an SDP, at most {_SDP_MAX} B"}])
    return sdp


def _offer_id(msg: dict) -> str:
    oid = msg.get("offer_id")
    if not isinstance(oid, str) or not re.fullmatch(r"[A-Za-z0-9_-]{8,40}", oid):
        raise Invalid("bad offer id", [{"field": "offer_id", "message": "8..40 [A-Za-z0-9_-]"}])
    return oid


def _candidate(msg: dict) -> dict:
    c = msg.get("candidate")
    if not isinstance(c, dict) or not isinstance(c.get("candidate"), str) \
            or len(c["candidate"]) > 500:
        raise Invalid("bad candidate", [{"field": "candidate",
                                         "message": "an RTCIceCandidateInit"}])
    mid, idx = c.get("sdpMid"), c.get("sdpMLineIndex")
    if (mid is not None and (not isinstance(mid, str) or len(mid) > 32)) or \
            (idx is not None and (not isinstance(idx, int) or not 0 <= idx < 16)):
        raise Invalid("bad candidate", [{"field": "candidate", "message": "sdpMid/sdpMLineIndex"}])
    return {"candidate": c["candidate"], "sdpMid": mid, "sdpMLineIndex": idx}
