"""Messages the police side sends: downlinks to a device (acks of a higher level, questions,
stand-downs) and guardian SMS when an SOS opens an incident, each with its delivery status."""

from __future__ import annotations

import asyncio
from datetime import UTC

from sqlalchemy import select, update

from urelief import protocol as p
from urelief.registry.db import Database
from urelief.registry.models import (
    Guardian,
    Incident,
    IncidentEvent,
    Notification,
    NotificationStatus,
    NotifyPref,
    utcnow,
)
from urelief.server import logs, metrics
from urelief.server.config import ServerConfig
from urelief.server.devices import DeviceCache
from urelief.server.sms import SmsGateway

_STATUS = {"sent": NotificationStatus.SENT, "delivered": NotificationStatus.DELIVERED,
           "failed": NotificationStatus.FAILED, "queued": NotificationStatus.QUEUED}


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
        gateway.on_status = self.delivery_report

    # -- device downlinks --------------------------------------------------------------------
    async def to_device(self, device_id: int | None, msg: p.Downlink) -> str:
        """Seal and send; over UDP if the device spoke UDP recently, else by SMS.
        Answers the channel used, or "unreachable"."""
        dev = self.cache.get(device_id) if device_id is not None else None
        if dev is None:
            return "unreachable"
        pkt = await self.ingest.seal(dev, msg)
        addr = dev.udp_route()
        if addr is not None and self.udp is not None:
            self.udp.send(pkt, addr)
            return "udp"
        if dev.msisdn:
            r = await self.gateway.send(dev.msisdn, pkt)
            metrics.SMS_SENT.labels("downlink", "sent" if r.ok else "failed").inc()
            return "sms" if r.ok else "unreachable"
        return "unreachable"

    # -- guardians ---------------------------------------------------------------------------
    async def incident_opened(self, incident_id: int) -> None:
        if not self.cfg.guardian_sms:
            return
        jobs = await asyncio.to_thread(self._queue_guardian_sms, incident_id)
        for nid, to, text in jobs:
            r = await self.gateway.send(to, text)
            status = "sent" if r.ok else "failed"
            metrics.SMS_SENT.labels("guardian", status).inc()
            await asyncio.to_thread(self._set_status, nid, status, r.error, r.ref)

    def _queue_guardian_sms(self, incident_id: int) -> list[tuple[int, str, str]]:
        with self.db.session() as s:
            inc = s.get(Incident, incident_id)
            if inc is None or inc.subscriber_id is None:
                return []
            if inc.is_drill and not self.cfg.guardian_sms_on_drill:
                return []
            child = inc.subscriber.full_name if inc.subscriber else "your child"
            when = inc.opened_at.astimezone(UTC).strftime("%H:%M UTC")
            text = (f"U-Relief: {child} pressed SOS at {when}. The police have the alert "
                    f"(incident {inc.id}) and are responding. Do not call the device.")
            if inc.is_drill:
                text = f"U-Relief DRILL (test only): {child}'s terminal sent a drill alert."
            jobs = []
            for g in s.scalars(select(Guardian).where(Guardian.subscriber_id == inc.subscriber_id,
                                                      Guardian.notify == NotifyPref.SMS)):
                n = Notification(incident_id=inc.id, guardian_id=g.id, to_number=g.phone,
                                 purpose="guardian", body=text)
                s.add(n)
                s.flush()
                jobs.append((n.id, g.phone, text))
                s.add(IncidentEvent(incident_id=inc.id, kind="notification", at=utcnow(),
                                    payload={"notification_id": n.id, "to": g.phone,
                                             "guardian": g.name, "status": "queued"}))
            return jobs

    def _set_status(self, nid: int, status: str, error: str | None = None,
                    ref: str | None = None) -> int | None:
        values = {"status": _STATUS[status], "updated_at": utcnow()}
        if error:
            values["error"] = error[:300]
        if ref:
            values["gateway_ref"] = ref
        with self.db.session() as s:
            s.execute(update(Notification).where(Notification.id == nid).values(**values))
            inc_id = s.scalar(select(Notification.incident_id).where(Notification.id == nid))
        if self.hub is not None and inc_id is not None:
            self.hub.publish_threadsafe("incident", {"id": inc_id, "notification": nid,
                                                     "status": status})
        return inc_id

    def delivery_report(self, ref: str, status: str, error: str | None = None) -> bool:
        """A gateway's delivery report for `ref`. Blocking (DB): call from a thread."""
        if status not in _STATUS:
            return False
        with self.db.Session() as s:
            nid = s.scalar(select(Notification.id).where(Notification.gateway_ref == ref)
                           .order_by(Notification.id.desc()).limit(1))  # refs may wrap (mr)
        if nid is None:
            logs.event("sms_status_unknown_ref", ref=ref, status=status)
            return False
        self._set_status(nid, status, error)
        return True
