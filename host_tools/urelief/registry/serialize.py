"""The registry's records as plain dicts (JSON-ready), the shapes its API returns. Device
records never carry key material."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from urelief.registry import consent
from urelief.registry.models import (
    AuditEntry,
    Consent,
    Device,
    Guardian,
    Operator,
    School,
    Subscriber,
)


def page(items: list[dict], total: int | None, offset: int, limit: int) -> dict[str, Any]:
    return {"items": items, "total": total or 0, "offset": offset, "limit": limit}


def iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def school_out(s: School) -> dict:
    return {"id": s.id, "code": s.code, "name": s.name, "address": s.address,
            "created_at": iso(s.created_at)}


def operator_out(o: Operator) -> dict:
    return {"id": o.id, "username": o.username, "display_name": o.display_name,
            "role": o.role.value, "school_id": o.school_id, "active": o.active,
            "created_at": iso(o.created_at)}


def guardian_out(g: Guardian) -> dict:
    return {"id": g.id, "subscriber_id": g.subscriber_id, "name": g.name, "phone": g.phone,
            "relation": g.relation, "notify": g.notify.value, "priority": g.priority}


def consent_out(c: Consent) -> dict:
    return {"id": c.id, "subscriber_id": c.subscriber_id, "given_by": c.given_by,
            "guardian_id": c.guardian_id, "scope": c.scope, "given_at": iso(c.given_at),
            "withdrawn_at": iso(c.withdrawn_at), "recorded_by": c.recorded_by,
            "evidence": c.evidence, "active": c.withdrawn_at is None}


def device_out(d: Device) -> dict:
    """Never includes key material; its position only under the pupil's location consent."""
    why = consent.refusal(d.subscriber, consent.LOCATION) if d.subscriber_id else None
    out = {"id": d.id, "hex_id": f"0x{d.id:08x}", "school_id": d.school_id,
            "subscriber_id": d.subscriber_id,
            "key_id": d.key_id, "board": d.board, "firmware_version": d.firmware_version,
            "status": d.status.value, "last_counter": d.last_counter,
            "last_seen_at": iso(d.last_seen_at), "battery_pct": d.battery_pct,
            "battery_mv": d.battery_mv, "last_lat": d.last_lat, "last_lon": d.last_lon,
            "last_accuracy_m": d.last_accuracy_m, "last_fix_at": iso(d.last_fix_at),
            "created_at": iso(d.created_at), "location_withheld": why}
    if why:
        out.update(last_lat=None, last_lon=None, last_accuracy_m=None)
    return out


def subscriber_out(s: Subscriber, card: bool = False) -> dict:
    out = {"id": s.id, "school_id": s.school_id, "pupil_ref": s.pupil_ref,
           "full_name": s.full_name, "class_name": s.class_name, "birth_year": s.birth_year,
           "responder_notes": s.responder_notes, "active": s.active,
           "created_at": iso(s.created_at), "updated_at": iso(s.updated_at)}
    if card:
        out["school"] = school_out(s.school)
        out["guardians"] = [guardian_out(g) for g in s.guardians]
        out["consents"] = [consent_out(c) for c in s.consents]
        out["devices"] = [device_out(d) for d in s.devices]
    return out


def audit_out(e: AuditEntry) -> dict:
    return {"id": e.id, "at": iso(e.at), "operator_id": e.operator_id, "username": e.username,
            "role": e.role, "action": e.action, "object_type": e.object_type,
            "object_id": e.object_id, "school_id": e.school_id, "outcome": e.outcome,
            "detail": e.detail, "remote_addr": e.remote_addr, "entry_hash": e.entry_hash}
