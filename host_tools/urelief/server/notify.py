"""Messages the police side sends: downlinks to a device (acks of a higher level, questions,
stand-downs) and guardian SMS, each with its delivery status.

Guardian SMS: on open, dispatch, resolve and false alarm (never for a drill), to every guardian whose preference is `sms` and whose pupil has a
`guardian_sms` consent in force (the guardian's own or one for all guardians), in the service's
language (guardian_text.py). Each is a `notifications` row written before anything is sent; a
sender task sends what is due, retries a failure with back-off (`sms_retry_base_s` doubling, at
most `sms_retry_max_s`) until a gateway takes it or it expires, and picks up after a restart
whatever was left. Delivery reports name a part (`sms_parts`); the notification is delivered
when every part of its latest attempt is, and a failed part makes it retry.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from urelief import protocol as p
from urelief.registry import consent
from urelief.registry.db import Database
from urelief.registry.models import (
    Guardian,
    Incident,
    IncidentEvent,
    Notification,
    NotificationStatus,
    NotifyPref,
    SmsPart,
    utcnow,
)
from urelief.server import logs, metrics
from urelief.server.config import ServerConfig
from urelief.server.devices import DeviceCache
from urelief.server.guardian_text import Templates
from urelief.server.sms import SmsGateway

_STATUS = {"sent": NotificationStatus.SENT, "delivered": NotificationStatus.DELIVERED,
           "failed": NotificationStatus.FAILED, "queued": NotificationStatus.QUEUED}
# An incident action -> the guardian message it causes.
ACTION_STAGES = {"dispatch": "dispatched", "resolve": "resolved", "false_alarm": "false_alarm"}


class Notifier:
    def __init__(self, cfg: ServerConfig, db: Database, cache: DeviceCache, gateway: SmsGateway,
                 ingest, hub=None):
        self.cfg = cfg
        self.db = db
        self.cache = cache
        self.gateway = gateway
        self.ingest = ingest
        self.hub = hub
        self.udp = None  # UdpIngest, set when the endpoint is up
        self.templates = Templates(cfg.sms_language, cfg.sms_templates or None,
                                   cfg.sms_timezone or None)
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        gateway.on_status = self.delivery_report

    # -- device downlinks --------------------------------------------------------------------
    async def to_device(self, device_id: int | None, msg: p.Downlink) -> str:
        """Seal and send; over UDP if the device spoke UDP recently, else by SMS.
        Answers the channel used, or "unreachable"."""
        dev = self.cache.get(device_id) if device_id is not None else None
        if dev is None:
            return "unreachable"
        return await self.send_sealed(dev, await self.ingest.seal(dev, msg))

    async def send_sealed(self, dev, pkt: bytes) -> str:
        """A sealed downlink to `dev`: UDP while its route is fresh, else SMS. -> the channel,
        or "unreachable"."""
        addr = dev.udp_route()
        if addr is not None and self.udp is not None:
            self.udp.send(pkt, addr)
            return "udp"
        if dev.msisdn:
            r = await self.gateway.send(dev.msisdn, pkt)
            metrics.SMS_SENT.labels("downlink", "sent" if r.ok else "failed").inc()
            return "sms" if r.ok else "unreachable"
        return "unreachable"

    # -- guardians: what to send ---------------------------------------------------------------
    async def incident_opened(self, incident_id: int) -> None:
        await self.guardians(incident_id, "opened")

    async def incident_action(self, incident_id: int, action: str) -> None:
        if action in ACTION_STAGES:
            await self.guardians(incident_id, ACTION_STAGES[action])

    async def guardians(self, incident_id: int, stage: str) -> None:
        if not self.cfg.guardian_sms:
            return
        if await asyncio.to_thread(self._queue_guardian_sms, incident_id, stage):
            self.kick()

    def _queue_guardian_sms(self, incident_id: int, stage: str) -> int:
        """Blocking. The notifications for `stage`, queued and due now. -> how many."""
        now = utcnow()
        with self.db.session() as s:
            inc = s.get(Incident, incident_id)
            if inc is None or inc.subscriber_id is None:
                return 0
            if inc.is_drill:  # a drill tests the terminal and the police, not the family
                return 0
            sub = inc.subscriber
            text = self.templates.render(stage, child=sub.full_name if sub else "",
                                         opened_at=inc.opened_at, incident=inc.id,
                                         school=sub.school.name if sub and sub.school else "")
            n = 0
            for g in s.scalars(select(Guardian).where(Guardian.subscriber_id == inc.subscriber_id)
                               .order_by(Guardian.priority, Guardian.id)):
                if g.notify != NotifyPref.SMS:
                    continue
                why = consent.refusal(sub, consent.GUARDIAN_SMS, guardian_id=g.id, at=now)
                if why:
                    s.add(IncidentEvent(incident_id=inc.id, kind="notification", at=now,
                                        payload={"to": g.phone, "guardian": g.name, "stage": stage,
                                                 "status": "not_sent", "reason": why}))
                    continue
                note = Notification(incident_id=inc.id, guardian_id=g.id, to_number=g.phone,
                                    purpose="guardian", stage=stage, body=text, attempts=0,
                                    next_attempt_at=now, expires_at=now + timedelta(
                                        seconds=self.cfg.guardian_sms_expire_s))
                s.add(note)
                s.flush()
                s.add(IncidentEvent(incident_id=inc.id, kind="notification", at=now,
                                    payload={"notification_id": note.id, "to": g.phone,
                                             "guardian": g.name, "stage": stage,
                                             "status": "queued"}))
                n += 1
            return n

    # -- guardians: the sender -----------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._sender())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def backoff_s(self, attempts: int) -> float:
        return min(self.cfg.sms_retry_max_s, self.cfg.sms_retry_base_s * 2 ** max(0, attempts - 1))

    async def _sender(self) -> None:
        while True:
            try:
                due, wait_s = await asyncio.to_thread(self._due)
                for nid in due:
                    await self._attempt(nid)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a database hiccup: log, try again shortly
                logs.event("sms_sender_failed", level=40, error=repr(e))
                due, wait_s = [], 1.0
            if due:
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait_s)
            except TimeoutError:
                pass

    def _due(self) -> tuple[list[int], float]:
        """Blocking. (notifications due now, seconds until the next one is; at most 5 s).
        Expired ones are given up here."""
        now = utcnow()
        with self.db.session() as s:
            rows = s.scalars(select(Notification).where(
                Notification.next_attempt_at.is_not(None),
                Notification.next_attempt_at <= now + timedelta(milliseconds=5))
                .order_by(Notification.next_attempt_at).limit(50)).all()
            due = []
            for n in rows:
                if n.expires_at is not None and n.expires_at <= now:
                    n.next_attempt_at = None
                    n.status = NotificationStatus.FAILED
                    n.error = f"expired after {n.attempts} attempt(s): {n.error or ''}"[:300]
                    self._publish(n.incident_id, n.id, "failed")
                else:
                    due.append(n.id)
            nxt = s.scalar(select(Notification.next_attempt_at).where(
                Notification.next_attempt_at.is_not(None), Notification.next_attempt_at > now)
                .order_by(Notification.next_attempt_at).limit(1))
        wait = 5.0 if nxt is None else max(0.01, min(5.0, (nxt - now).total_seconds()))
        return due, wait

    async def _attempt(self, nid: int) -> None:
        claim = await asyncio.to_thread(self._claim, nid)
        if claim is None:
            return
        to, body, attempt = claim
        r = await self.gateway.send(to, body)
        metrics.SMS_SENT.labels("guardian", r.status if r.ok else "failed").inc()
        await asyncio.to_thread(self._record, nid, attempt, r)

    def _claim(self, nid: int) -> tuple[str, str, int] | None:
        """Blocking: count the attempt and take it off the due list before sending, so a
        slow gateway is never asked twice for the same attempt."""
        with self.db.session() as s:
            n = s.get(Notification, nid)
            if n is None or n.next_attempt_at is None:
                return None
            n.attempts += 1
            n.next_attempt_at = None
            return n.to_number, n.body, n.attempts

    def _record(self, nid: int, attempt: int, r) -> None:
        now = utcnow()
        with self.db.session() as s:
            n = s.get(Notification, nid)
            for ref in r.refs if r.ok else []:
                s.add(SmsPart(notification_id=nid, attempt=attempt, gateway_ref=ref,
                              status=r.status, updated_at=now))
            if r.ok:
                n.status = _STATUS[r.status]
                n.gateway_ref = ",".join(r.refs)[:64] or None
                n.error = None
            else:
                n.status = NotificationStatus.FAILED
                n.error = (r.error or "failed")[:300]
                n.next_attempt_at = now + timedelta(seconds=self.backoff_s(attempt))
            status, inc_id = n.status.value, n.incident_id
        logs.event("guardian_sms", notification=nid, attempt=attempt, status=status,
                   refs=r.refs, error=r.error)
        self._publish(inc_id, nid, status)

    def _publish(self, inc_id: int | None, nid: int, status: str) -> None:
        if self.hub is not None and inc_id is not None:
            self.hub.publish_threadsafe("incident", {"id": inc_id, "notification": nid,
                                                     "status": status})

    # -- delivery reports --------------------------------------------------------------------
    def delivery_report(self, ref: str, status: str, error: str | None = None) -> bool:
        """A gateway's delivery report for `ref`. Blocking (DB): call from a thread."""
        if status not in _STATUS:
            return False
        now = utcnow()
        with self.db.session() as s:
            part = s.scalar(select(SmsPart).where(SmsPart.gateway_ref == ref)
                            .order_by(SmsPart.id.desc()).limit(1))  # refs may wrap (TP-MR)
            if part is None:  # a message sent once without parts (a knock link's SMS)
                n = s.scalar(select(Notification).where(Notification.gateway_ref == ref)
                             .order_by(Notification.id.desc()).limit(1))
                if n is None:
                    logs.event("sms_status_unknown_ref", ref=ref, status=status)
                    return False
                n.status = _STATUS[status]
                n.error = (error or None) and error[:300]
                nid, inc_id = n.id, n.incident_id
                self._publish(inc_id, nid, status)
                return True
            n = s.get(Notification, part.notification_id)
            if part.attempt != n.attempts or n.status == NotificationStatus.DELIVERED:
                return True  # a report for an attempt since superseded
            if status != "queued" and not (part.status == "delivered" and status == "sent"):
                part.status = status  # reports may come out of order: delivered stays
            part.updated_at = now
            parts = s.scalars(select(SmsPart.status).where(
                SmsPart.notification_id == n.id, SmsPart.attempt == n.attempts)).all()
            if "failed" in parts:
                n.status = NotificationStatus.FAILED
                n.error = (error or "delivery failed")[:300]
                if n.expires_at is None or n.expires_at > now:
                    n.next_attempt_at = now + timedelta(seconds=self.backoff_s(n.attempts))
            elif all(x == "delivered" for x in parts):
                n.status = NotificationStatus.DELIVERED
                n.error = None
            elif status == "sent" and n.status == NotificationStatus.QUEUED:
                n.status = NotificationStatus.SENT
            nid, inc_id, out = n.id, n.incident_id, n.status.value
        self._publish(inc_id, nid, out)
        if out == "failed":
            self.kick_threadsafe()
        return True

    def kick_threadsafe(self) -> None:
        loop = self._task.get_loop() if self._task is not None else None
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.kick)

