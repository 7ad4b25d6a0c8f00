"""The append-only audit log: one row per operator action or data access, hash-chained.

`record(session, actor, action, …)` adds a row in the caller's transaction, so an action and its
audit entry commit (or vanish) together. Each row's `entry_hash` = SHA-256 over the previous
row's hash and this row's canonical content; `verify_chain` recomputes it end to end.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from urelief.registry.models import AuditEntry, utcnow

GENESIS = "0" * 64
_PG_LOCK_ID = 0x55524C41  # "URLA": serialises appends so the chain never forks


@dataclass(frozen=True)
class Actor:
    """Who is acting: an authenticated operator, or a system component (operator_id None)."""

    operator_id: int | None
    username: str
    role: str
    school_id: int | None = None
    remote_addr: str = ""


SYSTEM = Actor(None, "system", "system")


def _canonical(e: AuditEntry) -> bytes:
    body = [
        e.prev_hash,
        e.at.isoformat(timespec="microseconds"),
        e.operator_id,
        e.username,
        e.role,
        e.action,
        e.object_type,
        e.object_id,
        e.school_id,
        e.outcome,
        e.detail,
        e.remote_addr,
    ]
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def _last_hash(session: Session) -> str:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_ID})
    # Pending rows of this same transaction come first (autoflush makes them visible).
    last = session.scalar(select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1))
    return last or GENESIS


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    object_type: str = "",
    object_id: Any = "",
    school_id: int | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=at or utcnow(),
        operator_id=actor.operator_id,
        username=actor.username,
        role=str(actor.role),
        action=action,
        object_type=object_type,
        object_id="" if object_id is None else str(object_id),
        school_id=school_id,
        outcome=outcome,
        detail=json.loads(json.dumps(detail or {}, default=str)),
        remote_addr=actor.remote_addr,
        prev_hash=_last_hash(session),
    )
    entry.entry_hash = hashlib.sha256(_canonical(entry)).hexdigest()
    session.add(entry)
    session.flush()  # the next record() in this transaction chains onto this one
    return entry


def verify_chain(session: Session, batch: int = 1000) -> tuple[bool, int, int | None]:
    """-> (intact, rows checked, id of the first bad row or None)."""
    prev, checked, after = GENESIS, 0, 0
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id).limit(batch)
        ).all()
        if not rows:
            return True, checked, None
        for e in rows:
            if e.prev_hash != prev or hashlib.sha256(_canonical(e)).hexdigest() != e.entry_hash:
                return False, checked, e.id
            prev, checked, after = e.entry_hash, checked + 1, e.id


@event.listens_for(AuditEntry, "before_update")
def _no_update(_mapper, _conn, target):
    raise PermissionError("audit_entries is append-only")


@event.listens_for(AuditEntry, "before_delete")
def _no_delete(_mapper, _conn, target):
    raise PermissionError("audit_entries is append-only")
