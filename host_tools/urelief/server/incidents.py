"""Incidents: what packets do to them (inside the ingest's commit), and what operators may do.

Lifecycle: open → acknowledged → dispatched → resolved | false_alarm; a drill ends as `drill`
whichever way it is closed, and is never dispatched. Every change is an `IncidentEvent`; every
operator action is also an audit entry in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from urelief import protocol as p
from urelief.registry import audit, consent
from urelief.registry.audit import Actor
from urelief.registry.errors import Conflict, Denied, Invalid, NotFound
from urelief.registry.models import (
    INCIDENT_CLOSED,
    Incident,
    IncidentEvent,
    IncidentSource,
    IncidentStatus,
    Notification,
    PendingDownlink,
    utcnow,
)
from urelief.server import listen, logs

S = IncidentStatus
OPEN_STATES = (S.OPEN, S.ACKNOWLEDGED, S.DISPATCHED)

# action -> (states it may start from, resulting state or None = unchanged)
ACTIONS: dict[str, tuple[tuple[IncidentStatus, ...], IncidentStatus | None]] = {
    "acknowledge": ((S.OPEN,), S.ACKNOWLEDGED),
    "dispatch": ((S.OPEN, S.ACKNOWLEDGED), S.DISPATCHED),
    "question": (OPEN_STATES, None),
    "stand_down": (OPEN_STATES, None),
    "locate": (OPEN_STATES, None),  # a position now: a short TRACKING downlink
    "tracking": (OPEN_STATES, None),  # the dispatcher's own tracking rate
    "listen_in": (OPEN_STATES, None),  # a silent call: listen.refusal() decides (acknowledged)
    "resolve": (OPEN_STATES, S.RESOLVED),
    "false_alarm": (OPEN_STATES, S.FALSE_ALARM),
}


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def enum_name(kind, v: int) -> str | int:
    """An enumeration value by its name (lower case), or the number itself when this server
    does not know it (a newer device's value: stored and shown as sent, with a warning)."""
    m = kind._value2member_map_.get(v)
    if m is not None:
        return m.name.lower()
    logs.event("unknown_enum_value", level=30, field=kind.__name__, value=v)
    return v


def report_fields(r: dict) -> dict[str, Any]:
    """A report (flat packet fields, wire units) in JSON units (degrees, metres, m/s)."""
    out: dict[str, Any] = {
        "time": datetime.fromtimestamp(r["time_s"], UTC).isoformat() if r["time_s"] else None,
        "time_source": enum_name(p.TimeSource, r["time_source"]),
        "battery_pct": r["battery_pct"], "charging": r["charging"], "drill": r["drill"],
    }
    if r["fix"] and r["lat_e7"] is not None and r["lon_e7"] is not None:
        out.update(lat=r["lat_e7"] / 1e7, lon=r["lon_e7"] / 1e7, accuracy_m=r["accuracy_m"],
                   fix_age_s=r["fix_age_s"], trusted=r["trusted"], sats=r["sats"])
        if r["moving"]:
            out.update(speed_m_s=None if r["speed_cm_s"] is None else r["speed_cm_s"] / 100,
                       course_deg=r["course_deg"])
    if r["cell"]:
        out["cell"] = {"mcc": r["mcc"], "mnc": r["mnc"], "tac": r["tac"], "cell_id": r["cell_id"],
                       "rat": enum_name(p.Rat, r["rat"]), "signal_dbm": r["signal_dbm"]}
    return out


DEVICE_CLOCK_SLACK = timedelta(hours=24)  # a device time further from arrival is not believed


def event_time(r: dict, received_at: datetime) -> datetime:
    """When the packet's event happened: the device's clock when it has one and it is within a
    day of the arrival (never later than the arrival), else the arrival time."""
    if r.get("time_s") is not None and r.get("time_source"):
        t = datetime.fromtimestamp(r["time_s"], UTC)
        if abs(t - received_at) <= DEVICE_CLOCK_SLACK:
            return min(t, received_at)
    return received_at


def fix_time(r: dict, received_at: datetime) -> datetime:
    """When the position was measured: event time − fix age (an unknown age: the event time)."""
    t = event_time(r, received_at)
    age = r.get("fix_age_s")
    return t - timedelta(seconds=age) if age else t


@dataclass
class PacketEffect:
    """What one stored packet did, for the work done after the commit (live push, SMS)."""

    incident_id: int | None = None
    opened: bool = False
    is_drill: bool = False
    school_id: int | None = None
    events: list[str] = field(default_factory=list)


def apply_packets(s: Session, items: Sequence[Any]) -> list[PacketEffect]:
    """Inside the ingest transaction: SOS opens (or joins) the device's incident; positions,
    cancels and tap replies become its events. `items` carry .dev, .counter, .kind, .fields
    (the flat decoded packet), .transport, .received_at."""
    effects = [PacketEffect() for _ in items]
    devs = {it.dev.id for it in items}
    open_by_dev: dict[str, Incident] = {}
    for inc in s.scalars(select(Incident).where(
            Incident.device_id.in_(devs), Incident.status.in_(OPEN_STATES)).order_by(Incident.id)):
        open_by_dev[inc.device_id] = inc
    for it, eff in zip(items, effects, strict=True):
        f = it.fields
        inc = open_by_dev.get(it.dev.id)
        rep = report_fields(f)
        if it.kind == "sos":
            trigger = str(enum_name(p.Trigger, f["trigger"]))
            if inc is None:
                inc = Incident(
                    status=S.OPEN, source=IncidentSource.DEVICE, device_id=it.dev.id,
                    subscriber_id=it.dev.subscriber_id, school_id=it.dev.school_id,
                    trigger=trigger, is_drill=bool(f["drill"]),
                    open_counter=it.counter, opened_at=it.received_at)
                s.add(inc)
                s.flush()
                open_by_dev[it.dev.id] = inc
                eff.opened = True
                _event(s, inc, "status", it, {"status": S.OPEN.value, "drill": inc.is_drill,
                                              "trigger": inc.trigger})
            else:
                _event(s, inc, "sos", it, {"trigger": trigger})
        elif inc is None and it.kind == "call_state":
            # A silent call outlives the incident that asked for it (resolved mid-call: the
            # terminal hangs up and says so): its states go to the device's latest incident.
            inc = s.scalar(select(Incident).where(Incident.device_id == it.dev.id)
                           .order_by(Incident.id.desc()).limit(1))
            if inc is not None:
                _event(s, inc, "call", it, _call(f))
                eff.incident_id, eff.is_drill, eff.school_id = inc.id, inc.is_drill, inc.school_id
                eff.events.append(it.kind)
            continue  # the closed incident's track stays as it was
        elif inc is None:
            continue  # check-ins etc. outside an incident are stored packets only
        elif it.kind == "cancel":
            if f["duress"]:
                inc.duress = True
            _event(s, inc, "duress" if f["duress"] else "cancel", it,
                   {"sos_counter": f["sos_counter"]})
        elif it.kind == "call_state":  # the silent call's progress
            _event(s, inc, "call", it, _call(f))
        elif it.kind == "tap_reply":
            _event(s, inc, "answer", it, {"question_id": f["question_id"],
                                          "presses": f["presses"]})
        elif it.kind != "position":
            _event(s, inc, it.kind, it, {})
        if "lat" in rep:
            at = fix_time(f, it.received_at)
            rep["fix_at"] = at.isoformat()
            if inc.last_fix_at is None or at >= inc.last_fix_at:  # an older fix: track only
                inc.last_lat, inc.last_lon = rep["lat"], rep["lon"]
                inc.last_accuracy_m = rep.get("accuracy_m")
                inc.last_fix_at = at
            _event(s, inc, "position", it, rep)
        elif "cell" in rep:  # no fix at all: the serving cell is the location there is
            _event(s, inc, "cell", it, rep)
        eff.incident_id, eff.is_drill, eff.school_id = inc.id, inc.is_drill, inc.school_id
        eff.events.append(it.kind)
    return effects


def _call(f: dict) -> dict:
    """A CALL_STATE on the incident: state and reason by name."""
    return {"state": enum_name(p.CallStatus, f["state"]),
            "reason": enum_name(p.CallReason, f["reason"])}


def _event(s: Session, inc: Incident, kind: str, it: Any, payload: dict) -> None:
    s.add(IncidentEvent(incident_id=inc.id, kind=kind, at=it.received_at, payload=payload,
                        device_counter=it.counter, transport=it.transport))


def open_aml(s: Session, loc: Any) -> tuple[Incident, bool]:
    """An AML location: joins the caller's open AML incident, or opens one."""
    inc = None
    if loc.msisdn:
        inc = s.scalar(select(Incident).where(
            Incident.source == IncidentSource.AML, Incident.caller_msisdn == loc.msisdn,
            Incident.status.in_(OPEN_STATES)).order_by(Incident.id.desc()).limit(1))
    opened = inc is None
    now = utcnow()
    if inc is None:
        inc = Incident(status=S.OPEN, source=IncidentSource.AML, caller_msisdn=loc.msisdn,
                       trigger="aml", opened_at=now)
        s.add(inc)
        s.flush()
        s.add(IncidentEvent(incident_id=inc.id, kind="status", at=now, transport="aml",
                            payload={"status": "open", "aml": loc.as_dict()}))
    if loc.lat is not None:
        inc.last_lat, inc.last_lon, inc.last_accuracy_m = loc.lat, loc.lon, loc.accuracy_m
        inc.last_fix_at = loc.time or now
        s.add(IncidentEvent(incident_id=inc.id, kind="position", at=now, transport="aml", payload={
            "lat": loc.lat, "lon": loc.lon, "accuracy_m": loc.accuracy_m, "method": loc.method,
            "time": _iso(loc.time), "confidence_pct": loc.confidence_pct}))
    return inc, opened


# Why a duress cancel stops questions (API field `questions_withheld`, dashboard, 409 text).
DURESS_NO_QUESTIONS = ("the child cancelled under duress; the terminal now gives no feedback at "
                       "all, since a vibration could be noticed by whoever forced the cancel")


# -- operator actions ---------------------------------------------------------------------------

def get_visible(s: Session, actor: Actor, incident_id: int) -> Incident:
    """The incident, if `actor` may see it: NotFound if there is none, Denied (403, audited by
    the caller, like the registry's refusals) if it belongs to another school."""
    from urelief.registry import policy

    inc = s.get(Incident, incident_id)
    if inc is None:
        raise NotFound(f"no incident {incident_id}")
    policy.check_read(actor, inc.school_id, "incident")
    return inc


def act(s: Session, actor: Actor, incident_id: int, action: str, body: dict) -> Incident:
    """Apply an operator action; raises Denied / NotFound / Conflict / Invalid."""
    from urelief.registry import policy

    if action not in ACTIONS:
        raise NotFound(f"no action {action!r}")
    inc = get_visible(s, actor, incident_id)
    if not policy.may_act_on_incidents(actor):
        raise Denied(f"role {actor.role} may not act on incidents", school_id=inc.school_id)
    starts, to = ACTIONS[action]
    if inc.status not in starts:
        raise Conflict(f"cannot {action} an incident that is {inc.status.value}")
    if action == "dispatch" and inc.is_drill:
        raise Conflict("a drill is never dispatched")
    if action == "question" and inc.duress:
        raise Conflict(f"questions are not offered: {DURESS_NO_QUESTIONS}")
    now = utcnow()
    payload: dict[str, Any] = {}
    if body.get("note"):
        payload["note"] = str(body["note"])[:500]
    if action == "question":
        payload.update(_question(s, inc, body))
    elif action == "listen_in":
        why = listen.refusal(s, inc)
        if why:
            raise Conflict(f"listen-in refused: {why}")
        payload.update(listen.request(inc, body))
    elif action in ("locate", "tracking"):
        if inc.device_id is None:
            raise Conflict(f"cannot {action}: this incident has no device")
        payload.update(_tracking(inc, action, body, now))
    if to is not None:
        if to in (S.RESOLVED, S.FALSE_ALARM) and inc.is_drill:
            to = S.DRILL
        payload.update({"from": inc.status.value, "status": to.value})
        inc.status = to
        if to == S.ACKNOWLEDGED:
            inc.acknowledged_at = now
        elif to == S.DISPATCHED:
            inc.dispatched_at = now
            inc.acknowledged_at = inc.acknowledged_at or now
        elif to in INCIDENT_CLOSED:
            inc.closed_at = now
    inc.assigned_operator_id = inc.assigned_operator_id or actor.operator_id
    inc.updated_at = now
    kind = "status" if to is not None else action
    s.add(IncidentEvent(incident_id=inc.id, kind=kind, at=now, payload={"action": action, **payload},
                        operator_id=actor.operator_id, transport="http"))
    audit.record(s, actor, f"incident.{action}", object_type="incident", object_id=inc.id,
                 school_id=inc.school_id, detail=payload)
    return inc


def _question(s: Session, inc: Incident, body: dict) -> dict:
    kind = body.get("kind", "yes_no")
    if kind not in ("yes_no", "press_n"):
        raise Invalid("bad question", [{"field": "kind", "message": "yes_no or press_n"}])
    text = str(body.get("text", "")).strip()[:200]
    if not text:
        raise Invalid("bad question", [{"field": "text", "message": "required (what was asked)"}])
    choices = 2 if kind == "yes_no" else int(body.get("choices", 3))
    timeout_s = int(body.get("timeout_s", 60))
    if not (2 <= choices <= 9 and 10 <= timeout_s <= 600):
        raise Invalid("bad question", [{"field": "choices/timeout_s",
                                        "message": "2..9 choices, 10..600 s"}])
    asked = s.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id == inc.id, IncidentEvent.kind == "question")).all()
    qid = (max((e.payload.get("question_id", 0) for e in asked), default=0) + 1) & 0xFF or 1
    return {"question_id": qid, "kind": kind, "text": text, "choices": choices,
            "timeout_s": timeout_s}


LOCATE_INTERVAL_S, LOCATE_FOR_S = 15, 60  # "a position now": every 15 s for the next minute


def _tracking(inc: Incident, action: str, body: dict, now: datetime) -> dict:
    """A TRACKING downlink's fields. The device counts the fast phase from its alert, so a
    locate asks for fast positions until a minute from now; 0 keeps the device's value."""
    if action == "locate":
        since = int((now - inc.opened_at).total_seconds()) if inc.opened_at else 0
        return {"fast_interval_s": LOCATE_INTERVAL_S,
                "fast_for_s": min(max(since, 0) + LOCATE_FOR_S, 0xFFFF),
                "slow_interval_s": 0, "low_battery_pct": 0}
    out = {k: int(body.get(k) or 0) for k in ("fast_interval_s", "fast_for_s", "slow_interval_s")}
    if not any(out.values()) or not all(0 <= v <= 0xFFFF for v in out.values()) or (
            out["fast_interval_s"] and out["fast_interval_s"] < 10):
        raise Invalid("bad tracking", [{"field": "fast_interval_s/fast_for_s/slow_interval_s",
                                        "message": "seconds 0..65535 (0 keeps), fast >= 10 s"}])
    return {**out, "low_battery_pct": 0}


# -- reading --------------------------------------------------------------------------------------

def location_refusal(inc: Incident) -> str | None:
    """Why this incident's position may not be shown (the pupil's location consent is not in
    force), or None. An AML caller or an unassigned device has no pupil's consent to need."""
    return consent.refusal(inc.subscriber, consent.LOCATION) if inc.subscriber_id else None


WITHHELD_EVENTS = ("position", "cell")  # event kinds whose payload is where the child is


def withhold_location(out: dict, why: str | None) -> dict:
    """An incident's dict (row, summary, events) without where the child is, and why."""
    out["location_withheld"] = why
    if why:
        out.update(last_lat=None, last_lon=None, last_accuracy_m=None)
        if out.get("summary"):
            out["summary"].update(fix=None, cell=None)
        for e in out.get("events", ()):
            if e["kind"] in WITHHELD_EVENTS:
                e["payload"] = {"withheld": why}
    return out


def incident_out(inc: Incident) -> dict:
    return {
        "id": inc.id, "status": inc.status.value, "source": inc.source.value,
        "device_id": inc.device_id, "subscriber_id": inc.subscriber_id,
        "school_id": inc.school_id, "caller_msisdn": inc.caller_msisdn, "trigger": inc.trigger,
        "is_drill": inc.is_drill, "duress": inc.duress, "open_counter": inc.open_counter,
        "questions_offered": inc.device_id is not None and not inc.duress,
        "questions_withheld": DURESS_NO_QUESTIONS if inc.duress else None,
        "opened_at": _iso(inc.opened_at), "acknowledged_at": _iso(inc.acknowledged_at),
        "dispatched_at": _iso(inc.dispatched_at), "closed_at": _iso(inc.closed_at),
        "last_lat": inc.last_lat, "last_lon": inc.last_lon,
        "last_accuracy_m": inc.last_accuracy_m, "last_fix_at": _iso(inc.last_fix_at),
        "updated_at": _iso(inc.updated_at),
        "child": inc.subscriber.full_name if inc.subscriber is not None else None,
    }


def summaries(s: Session, incs: Sequence[Incident], cells=None) -> dict[int, dict]:
    """What the dispatcher needs beside the row, per incident: how many SOS (a repeat SOS is
    news), cancels, the newest fix's trust and age, the serving cell (placed when the cell file
    knows it), the last answer, downlinks the device has not confirmed. Four queries for any
    number."""
    ids = [i.id for i in incs]
    out: dict[int, dict] = {i: {"sos_count": 0, "cancels": 0, "undelivered": 0, "fix": None,
                                "cell": None, "answer": None, "call": None} for i in ids}
    if not ids:
        return out
    e = IncidentEvent
    for iid, kind, n in s.execute(select(e.incident_id, e.kind, func.count()).where(
            e.incident_id.in_(ids)).group_by(e.incident_id, e.kind)):
        if kind == "sos":
            out[iid]["sos_count"] += n
        elif kind == "cancel":
            out[iid]["cancels"] += n
    for inc in incs:
        if inc.source.value == "device" and inc.open_counter is not None:
            out[inc.id]["sos_count"] += 1  # the SOS that opened it
    last = select(func.max(e.id)).where(e.incident_id.in_(ids), e.kind.in_(
        ("position", "cell", "answer", "call"))).group_by(e.incident_id, e.kind)
    pd = PendingDownlink  # sent and not (yet) confirmed by the device's RECEIPT
    undelivered = select(pd.incident_id, func.count()).where(
        pd.incident_id.in_(ids), pd.state == "pending").group_by(pd.incident_id)
    for iid, n in s.execute(undelivered):
        out[iid]["undelivered"] = n
    for ev in s.scalars(select(e).where(e.id.in_(last))):
        pl, o = ev.payload or {}, out[ev.incident_id]
        if ev.kind == "position":
            o["fix"] = {k: pl.get(k) for k in ("fix_at", "fix_age_s", "trusted", "sats",
                                               "accuracy_m")}
        elif ev.kind == "cell":
            cell = dict(pl.get("cell") or {})
            where = cells.locate(cell) if cells is not None else None
            o["cell"] = {**cell, "at": _iso(ev.at), "located": where}
        elif ev.kind == "call":
            o["call"] = {"state": pl.get("state"), "reason": pl.get("reason"), "at": _iso(ev.at)}
        elif ev.kind == "answer":
            o["answer"] = {"question_id": pl.get("question_id"), "presses": pl.get("presses"),
                           "at": _iso(ev.at)}
    return out


def event_out(e: IncidentEvent) -> dict:
    return {"id": e.id, "kind": e.kind, "at": _iso(e.at), "payload": e.payload,
            "operator_id": e.operator_id, "device_counter": e.device_counter,
            "transport": e.transport}


def notification_out(n: Notification) -> dict:
    return {"id": n.id, "to": n.to_number, "purpose": n.purpose, "status": n.status.value,
            "guardian_id": n.guardian_id, "error": n.error, "gateway_ref": n.gateway_ref,
            "stage": n.stage, "attempts": n.attempts, "next_attempt_at": _iso(n.next_attempt_at),
            "created_at": _iso(n.created_at), "updated_at": _iso(n.updated_at)}
