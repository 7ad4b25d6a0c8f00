"""REST API for incidents and the live stream. Reads are scoped (a school admin sees only their
school's incidents) and audited; actions belong to dispatchers and admins.

    GET  /api/incidents?state=open|closed|all&offset=&limit=      {items, total, offset, limit}
    GET  /api/incidents/{id}          incident + events + subscriber card + notifications +
                                      downlinks (each: pending | delivered | expired | replaced)
    POST /api/incidents/{id}/{action} acknowledge | dispatch | question | locate | tracking |
                                      listen_in | stand_down | resolve | false_alarm
                                      body: {note?, text?, kind?, choices?, timeout_s?,
                                             fast_interval_s?, fast_for_s?, slow_interval_s?,
                                             mode?, max_s?}   (listen_in: 409 with the reason
                                             when refused, audited as refused)
    GET  /api/live                    Server-Sent Events: `incident` {id, …} on every change
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from urelief import protocol as p
from urelief.registry import audit, policy
from urelief.registry.auth import CurrentOperator, request_token
from urelief.registry.errors import Conflict, Denied
from urelief.registry.models import (
    INCIDENT_CLOSED,
    Incident,
    IncidentEvent,
    Notification,
    PendingDownlink,
    Subscriber,
    utcnow,
)
from urelief.registry.serialize import device_out, subscriber_out
from urelief.server import incidents, listen, metrics
from urelief.server.apidoc import RowId
from urelief.server.delivery import pending_out

router = APIRouter(prefix="/api", tags=["incidents"])


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    note: str | None = Field(None, max_length=500)
    text: str | None = Field(None, max_length=200, description="question: what was asked")
    kind: str | None = Field(None, pattern="^(yes_no|press_n)$")
    choices: int | None = Field(None, ge=2, le=9)
    timeout_s: int | None = Field(None, ge=10, le=600)
    fast_interval_s: int | None = Field(None, ge=0, le=65535, description="tracking: 0 keeps")
    fast_for_s: int | None = Field(None, ge=0, le=65535, description="tracking: from the alert")
    slow_interval_s: int | None = Field(None, ge=0, le=65535, description="tracking: 0 keeps")
    mode: str | None = Field(None, pattern="^(dial|answer)$",
                             description="listen_in: the terminal dials the centre, or answers it")
    max_s: int | None = Field(None, ge=10, le=3600, description="listen_in: hang up after, s")


def _server(request: Request):
    return request.app.state.server


@router.get("/incidents")
def list_incidents(request: Request, who: CurrentOperator,
                   state: Annotated[str, Query(pattern="^(open|closed|all)$")] = "open",
                   offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict:
    db = _server(request).db
    with db.session() as s:
        stmt = policy.scoped(select(Incident), who, Incident.school_id)
        if state == "open":
            stmt = stmt.where(Incident.status.in_(incidents.OPEN_STATES))
        elif state == "closed":
            stmt = stmt.where(Incident.status.in_(INCIDENT_CLOSED))
        total = s.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = s.scalars(stmt.order_by(Incident.opened_at.desc(), Incident.id.desc())
                         .offset(offset).limit(limit)).all()
        items = [incidents.incident_out(r) for r in rows]
        summary = incidents.summaries(s, rows, _server(request).cells)
        for it, inc in zip(items, rows, strict=True):
            it["summary"] = summary[it["id"]]
            incidents.withhold_location(it, incidents.location_refusal(inc))
        audit.record(s, who, "incident.list", object_type="incident",
                     detail={"state": state, "offset": offset, "count": len(items)})
    return {"items": items, "total": total, "offset": offset, "limit": limit}


@router.get("/incidents/{incident_id}")
def get_incident(request: Request, incident_id: RowId, who: CurrentOperator) -> dict:
    server = _server(request)
    try:
        return _read_incident(server.db, who, incident_id, server.cells)
    except Denied as e:  # another school's incident: 403 and a `denied` audit entry
        _audit_denied(server, who, "incident.read", incident_id, e)
        raise


def _audit_denied(server, who, action: str, incident_id: int, e: Exception) -> None:
    """Blocking (its own transaction): call after the refused one has rolled back."""
    server.registry.audit_denied(who, action, object_type="incident", object_id=incident_id,
                                 school_id=getattr(e, "school_id", None),
                                 detail={"reason": str(e)})


def _read_incident(db, who, incident_id: int, cells=None) -> dict:
    with db.session() as s:
        inc = incidents.get_visible(s, who, incident_id)
        out = incidents.incident_out(inc)
        out["summary"] = incidents.summaries(s, [inc], cells)[inc.id]
        out["events"] = [incidents.event_out(e) for e in s.scalars(
            select(IncidentEvent).where(IncidentEvent.incident_id == inc.id)
            .order_by(IncidentEvent.id))]
        out["downlinks"] = [pending_out(d) for d in s.scalars(
            select(PendingDownlink).where(PendingDownlink.incident_id == inc.id)
            .order_by(PendingDownlink.id))]
        out["notifications"] = [incidents.notification_out(n) for n in s.scalars(
            select(Notification).where(Notification.incident_id == inc.id)
            .order_by(Notification.id))]
        out["subscriber"] = None
        if inc.subscriber_id is not None:
            sub = s.get(Subscriber, inc.subscriber_id)
            out["subscriber"] = subscriber_out(sub, card=True)
        out["device"] = device_out(inc.device) if inc.device is not None else None
        out["listen_in"] = listen.availability(s, inc)
        incidents.withhold_location(out, incidents.location_refusal(inc))
        audit.record(s, who, "incident.read", object_type="incident", object_id=inc.id,
                     school_id=inc.school_id, detail={"subscriber_id": inc.subscriber_id})
    return out


_STAND_DOWN = {"resolve": p.StandDownReason.RESOLVED, "false_alarm": p.StandDownReason.FALSE_ALARM,
               "stand_down": p.StandDownReason.RESOLVED}


@router.post("/incidents/{incident_id}/{action}")
async def incident_action(request: Request, incident_id: RowId, action: str,
                          who: CurrentOperator, body: ActionIn | None = None) -> dict:
    server = _server(request)
    data = body.model_dump(exclude_none=True) if body else {}
    action = action.replace("-", "_")

    def apply() -> tuple[dict, dict | None]:
        with server.db.session() as s:
            inc = incidents.act(s, who, incident_id, action, data)
            s.flush()
            last = s.scalar(select(IncidentEvent).where(IncidentEvent.incident_id == inc.id)
                            .order_by(IncidentEvent.id.desc()).limit(1))
            out = incidents.withhold_location(incidents.incident_out(inc),
                                              incidents.location_refusal(inc))
            return out, (last.payload if last else None)

    try:
        out, payload = await run_in_threadpool(apply)
    except Exception as e:
        if isinstance(e, Denied):
            await run_in_threadpool(_audit_denied, server, who, f"incident.{action}",
                                    incident_id, e)
        elif isinstance(e, Conflict) and action == "listen_in":  # who asked, and why not
            await run_in_threadpool(server.registry._audit_alone, who, "incident.listen_in",
                                    "refused", object_type="incident", object_id=incident_id,
                                    detail={"reason": str(e)})
        raise
    metrics.INCIDENT_ACTIONS.labels(action).inc()
    out["downlink"] = await _device_side(server, out, action, payload or {})
    await server.notifier.incident_action(out["id"], action)  # guardians' SMS, queued
    server.hub.publish("incident", {"id": out["id"], "school_id": out["school_id"],
                                    "action": action, "status": out["status"]})
    return out


async def _device_side(server, inc: dict, action: str, payload: dict[str, Any]) -> str | None:
    """Tell the terminal: seen / help dispatched (haptic tiers), a question, or stand down."""
    if inc["device_id"] is None:
        return None
    dev = server.cache.get(inc["device_id"])
    msg: p.Downlink | None = None
    if action in ("acknowledge", "dispatch"):
        level = p.AckLevel.SEEN if action == "acknowledge" else p.AckLevel.DISPATCHED
        if dev is not None:
            dev.ack_level = max(dev.ack_level, level)
        msg = p.Ack(acked_counter=inc["open_counter"] or 0, level=level)
    elif action == "question":
        kind = p.QuestionKind.YES_NO if payload.get("kind") == "yes_no" else p.QuestionKind.PRESS_N
        msg = p.Question(question_id=payload["question_id"], kind=kind,
                         choices=payload["choices"], timeout_s=payload["timeout_s"])
    elif action in ("locate", "tracking"):
        msg = p.Tracking(fast_interval_s=payload["fast_interval_s"],
                         fast_for_s=payload["fast_for_s"],
                         slow_interval_s=payload["slow_interval_s"],
                         low_battery_pct=payload["low_battery_pct"])
    elif action == "listen_in":
        msg = listen.downlink(payload)
    elif action in _STAND_DOWN:
        reason = p.StandDownReason.DRILL_OVER if inc["is_drill"] else _STAND_DOWN[action]
        msg = p.StandDown(reason=reason, sos_counter=inc["open_counter"] or 0)
        if dev is not None and action != "stand_down":
            dev.ack_level = p.AckLevel.RECEIVED
    if msg is None:
        return None
    channel = await server.delivery.send(inc["device_id"], inc["id"], action, msg)
    await run_in_threadpool(_note_downlink, server, inc["id"], action, msg, channel)
    return channel


def _note_downlink(server, incident_id: int, action: str, msg, channel: str) -> None:
    """The timeline says which downlink went out and how; `unreachable` is flagged on screen."""
    with server.db.session() as s:
        s.add(IncidentEvent(incident_id=incident_id, kind="downlink", at=utcnow(),
                            transport="http", payload={
                                "action": action, "type": p.messages.TYPE_OF[type(msg)].name.lower(),
                                "channel": channel}))


@router.get("/live")
async def live(request: Request, who: CurrentOperator) -> StreamingResponse:
    scope = policy.school_scope(who)

    def allow(kind: str, data: dict) -> bool:
        return scope is None or data.get("school_id") == scope

    token, registry = request_token(request), _server(request).registry
    stream = _server(request).hub.stream(allow, alive=lambda: registry.token_alive(token))
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/sms/outbox", tags=["sms"])
def sms_outbox(request: Request, who: CurrentOperator) -> dict:
    """The log/outbox gateway's recent messages (admins and auditors; empty for a real one)."""
    policy.check_audit_read(who)
    sent = getattr(_server(request).gateway, "sent", [])
    return {"gateway": _server(request).gateway.name, "items": list(sent)}
