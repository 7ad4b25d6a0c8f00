"""The registry's service layer: every read and change goes through here, checked by `policy`
and recorded in the audit log in the same transaction as the change itself.

Methods take the acting `Actor` first and return plain dicts (JSON-ready). Refusals raise
`Denied` and leave a `denied` audit entry (written in its own transaction, since the refused
one rolls back); bad input raises `Invalid` with per-field errors, also audited.
"""

from __future__ import annotations

import getpass
import hashlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, NoReturn, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from urelief.ratelimit import RateLimiter
from urelief.registry import audit, credentials, policy, roster
from urelief.registry.audit import Actor
from urelief.registry.db import Database
from urelief.registry.errors import (
    Conflict,
    Denied,
    Invalid,
    NotFound,
    RegistryError,
    Throttled,
)
from urelief.registry.keys import ServerKey, ServerKeyError
from urelief.registry.models import (
    AuditEntry,
    Consent,
    Device,
    DeviceStatus,
    Guardian,
    NotifyPref,
    Operator,
    OperatorToken,
    Role,
    School,
    Subscriber,
    utcnow,
)

T = TypeVar("T")
MAX_PAGE = 500
LOGIN_FAILURES_MAX = 5
LOGIN_WINDOW = timedelta(minutes=15)
TOKEN_CACHE_S = 30.0  # a revoked token stops working in other processes within this time
# Failed authentications (bad tokens, wrong passwords) per source address, in this process: a
# burst of AUTH_FAIL_BURST, then one per 1/AUTH_FAIL_PER_S s. Beyond that: 429 without checking
# a password, and one `throttled` audit row per source per THROTTLE_NOTE_S counting the refusals,
# so a flood cannot fill the audit log (nor burn CPU on scrypt). Good tokens still work.
AUTH_FAIL_BURST = 20
AUTH_FAIL_PER_S = 1 / 3
THROTTLE_NOTE_S = 60.0


def cli_actor() -> Actor:
    """Whoever runs `urelief registry …` on the server host acts as an admin, by name."""
    return Actor(None, f"cli:{getpass.getuser()}", Role.ADMIN)


def page(items: list[dict], total: int | None, offset: int, limit: int) -> dict[str, Any]:
    return {"items": items, "total": total or 0, "offset": offset, "limit": limit}


def _clamp(offset: int, limit: int) -> tuple[int, int]:
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise Invalid(
            "bad page", [{"field": "limit", "message": f"offset >= 0, 1 <= limit <= {MAX_PAGE}"}]
        )
    return offset, limit


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


# -- serialisers -------------------------------------------------------------------------------


def school_out(s: School) -> dict:
    return {"id": s.id, "code": s.code, "name": s.name, "address": s.address,
            "created_at": _iso(s.created_at)}


def operator_out(o: Operator) -> dict:
    return {"id": o.id, "username": o.username, "display_name": o.display_name,
            "role": o.role.value, "school_id": o.school_id, "active": o.active,
            "created_at": _iso(o.created_at)}


def guardian_out(g: Guardian) -> dict:
    return {"id": g.id, "subscriber_id": g.subscriber_id, "name": g.name, "phone": g.phone,
            "relation": g.relation, "notify": g.notify.value, "priority": g.priority}


def consent_out(c: Consent) -> dict:
    return {"id": c.id, "subscriber_id": c.subscriber_id, "given_by": c.given_by,
            "guardian_id": c.guardian_id, "scope": c.scope, "given_at": _iso(c.given_at),
            "withdrawn_at": _iso(c.withdrawn_at), "recorded_by": c.recorded_by,
            "evidence": c.evidence, "active": c.withdrawn_at is None}


def device_out(d: Device) -> dict:
    """Never includes key material."""
    return {"id": d.id, "hex_id": f"0x{d.id:08x}", "school_id": d.school_id,
            "subscriber_id": d.subscriber_id,
            "key_id": d.key_id, "board": d.board, "firmware_version": d.firmware_version,
            "status": d.status.value, "last_counter": d.last_counter,
            "last_seen_at": _iso(d.last_seen_at), "battery_pct": d.battery_pct,
            "battery_mv": d.battery_mv, "last_lat": d.last_lat, "last_lon": d.last_lon,
            "last_accuracy_m": d.last_accuracy_m, "last_fix_at": _iso(d.last_fix_at),
            "created_at": _iso(d.created_at)}


def subscriber_out(s: Subscriber, card: bool = False) -> dict:
    out = {"id": s.id, "school_id": s.school_id, "pupil_ref": s.pupil_ref,
           "full_name": s.full_name, "class_name": s.class_name, "birth_year": s.birth_year,
           "responder_notes": s.responder_notes, "active": s.active,
           "created_at": _iso(s.created_at), "updated_at": _iso(s.updated_at)}
    if card:
        out["school"] = school_out(s.school)
        out["guardians"] = [guardian_out(g) for g in s.guardians]
        out["consents"] = [consent_out(c) for c in s.consents]
        out["devices"] = [device_out(d) for d in s.devices]
    return out


def audit_out(e: AuditEntry) -> dict:
    return {"id": e.id, "at": _iso(e.at), "operator_id": e.operator_id, "username": e.username,
            "role": e.role, "action": e.action, "object_type": e.object_type,
            "object_id": e.object_id, "school_id": e.school_id, "outcome": e.outcome,
            "detail": e.detail, "remote_addr": e.remote_addr, "entry_hash": e.entry_hash}


# -- the service -------------------------------------------------------------------------------


class Registry:
    def __init__(self, db: Database, server_key: ServerKey | None = None):
        self.db = db
        self.server_key = server_key
        self._tokens: dict[bytes, tuple[Actor, float]] = {}
        self._tokens_lock = threading.Lock()
        self._failures = RateLimiter(AUTH_FAIL_PER_S, AUTH_FAIL_BURST, max_sources=10_000)
        self._throttle_notes: dict[str, tuple[float, int]] = {}  # source -> (last row, refused since)
        self._failures_lock = threading.Lock()

    # transactions with auditing of refusals ------------------------------------------------

    def _run(self, actor: Actor, action: str, fn: Callable[[Session], T], **where) -> T:
        try:
            with self.db.session() as s:
                return fn(s)
        except Denied as e:
            self._audit_alone(actor, action, "denied", school_id=e.school_id,
                              detail={"reason": str(e)}, **where)
            raise
        except Invalid as e:
            self._audit_alone(actor, action, "invalid",
                              detail={"reason": str(e), "errors": len(e.errors)}, **where)
            raise
        except IntegrityError as e:
            raise Conflict(f"{action}: conflicts with an existing record") from e

    def _audit_alone(self, actor: Actor, action: str, outcome: str, **kw) -> None:
        with self.db.session() as s:
            audit.record(s, actor, action, outcome=outcome, **kw)

    def audit_denied(self, actor: Actor, action: str, **kw) -> None:
        self._audit_alone(actor, action, "denied", **kw)

    # authentication ------------------------------------------------------------------------

    def authenticate(self, token: str, remote_addr: str = "", what: str = "") -> Actor | None:
        """Bearer token -> Actor, or None (and an `auth.failed` audit entry)."""
        cache_key = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        with self._tokens_lock:
            hit = self._tokens.get(cache_key)
        if hit and hit[1] > now:
            return _with_addr(hit[0], remote_addr)
        actor = self._check_token(token) if token else None
        if actor is None:
            self._auth_failure(
                Actor(None, "", "", remote_addr=remote_addr), "auth.failed",
                detail={"request": what, "token": "absent" if not token else "rejected"},
            )
            return None
        with self._tokens_lock:
            if len(self._tokens) > 10_000:
                self._tokens.clear()
            self._tokens[cache_key] = (actor, now + TOKEN_CACHE_S)
        return _with_addr(actor, remote_addr)

    def _auth_failure(self, who: Actor, action: str, **kw) -> None:
        """A failed authentication from `who.remote_addr`: a `denied` audit row while the source
        is within its budget (AUTH_FAIL_*); past it, `_throttled`."""
        with self._failures_lock:
            allowed = self._failures.allow(who.remote_addr)
        if not allowed:
            self._throttled(who, action, **kw)
        self._audit_alone(who, action, "denied", **kw)

    def _throttled(self, who: Actor, action: str, **kw) -> NoReturn:
        """Refuse (429) an attempt from a source over its failure budget. At most one
        `throttled` audit row per source per THROTTLE_NOTE_S, naming how many refused attempts
        it stands for."""
        src, t = who.remote_addr, time.monotonic()
        with self._failures_lock:
            last, refused = self._throttle_notes.get(src, (-THROTTLE_NOTE_S, 0))
            note = refused + 1 if t - last >= THROTTLE_NOTE_S else 0
            self._throttle_notes[src] = (t, 0) if note else (last, refused + 1)
            if len(self._throttle_notes) > 10_000:
                self._throttle_notes = {k: v for k, v in self._throttle_notes.items()
                                        if t - v[0] < THROTTLE_NOTE_S}
        if note:
            detail = {**kw.pop("detail", {}), "refused": note}
            self._audit_alone(who, action, "throttled", detail=detail, **kw)
        raise Throttled("too many failed sign-ins from this address; try again later")

    def _check_token(self, token: str) -> Actor | None:
        parts = credentials.split_token(token)
        if parts is None:
            return None
        key_id, secret = parts
        with self.db.Session() as s:  # read, and end the transaction before hashing (SQLite lock)
            row = s.execute(
                select(OperatorToken.secret_hash, OperatorToken.expires_at, Operator.id,
                       Operator.username, Operator.role, Operator.school_id)
                .join(Operator, Operator.id == OperatorToken.operator_id)
                .where(OperatorToken.key_id == key_id, OperatorToken.revoked_at.is_(None),
                       Operator.active.is_(True))
            ).first()
        if row is None or (row.expires_at is not None and row.expires_at <= utcnow()):
            return None
        if not credentials.verify_secret(secret, row.secret_hash):
            return None
        return Actor(row.id, row.username, row.role, row.school_id)

    def _forget_tokens(self) -> None:
        with self._tokens_lock:
            self._tokens.clear()

    def _new_token(self, s: Session, op: Operator, label: str, ttl: timedelta | None) -> str:
        token, key_id, secret_hash = credentials.new_token()
        s.add(OperatorToken(operator_id=op.id, key_id=key_id, secret_hash=secret_hash,
                            label=label, expires_at=(utcnow() + ttl) if ttl else None))
        return token

    def login(self, username: str, password: str, remote_addr: str = "",
              ttl: timedelta = timedelta(hours=12)) -> tuple[str, dict] | None:
        """Password -> a fresh token (a dashboard session). None if wrong; audited either way.
        After LOGIN_FAILURES_MAX failures within LOGIN_WINDOW a username is refused (Throttled)
        until the window has passed; the count comes from the audit log, so it holds across
        processes and restarts. Failures also count against the source address (AUTH_FAIL_*)."""
        with self._failures_lock:
            over = self._failures.exhausted(remote_addr)
        if over:  # refused before any lookup or password hashing
            self._throttled(Actor(None, username[:64], "", remote_addr=remote_addr),
                            "auth.login", object_type="operator")
        since = utcnow() - LOGIN_WINDOW
        with self.db.Session() as s:  # read only; hashing happens outside any transaction
            op = s.scalar(select(Operator).where(Operator.username == username))
            failures = s.scalar(select(func.count(AuditEntry.id)).where(
                AuditEntry.action == "auth.login", AuditEntry.username == username[:64],
                AuditEntry.outcome.in_(("denied", "throttled")), AuditEntry.at >= since))
        who = (Actor(op.id, op.username, op.role, op.school_id, remote_addr) if op
               else Actor(None, username[:64], "", remote_addr=remote_addr))
        if (failures or 0) >= LOGIN_FAILURES_MAX:
            self._audit_alone(who, "auth.login", "throttled", object_type="operator",
                              object_id=op.id if op else "")
            raise Throttled(f"too many failed logins for {username!r}; try again later")
        ok = (op is not None and op.active and op.password_hash is not None
              and credentials.verify_secret(password, op.password_hash))
        if not ok or op is None:
            self._auth_failure(who, "auth.login", object_type="operator",
                               object_id=op.id if op else "")
            return None
        with self.db.session() as s:
            token = self._new_token(s, op, "login", ttl)
            audit.record(s, who, "auth.login", object_type="operator", object_id=op.id)
            return token, operator_out(op)

    def logout(self, actor: Actor, token: str) -> None:
        parts = credentials.split_token(token)
        with self.db.session() as s:
            if parts:
                row = s.scalar(select(OperatorToken).where(OperatorToken.key_id == parts[0]))
                if row is not None and row.operator_id == actor.operator_id:
                    row.revoked_at = utcnow()
            audit.record(s, actor, "auth.logout", object_type="operator",
                         object_id=actor.operator_id)
        self._forget_tokens()

    def issue_token(self, actor: Actor, operator_id: int, label: str = "",
                    ttl: timedelta | None = None) -> str:
        def fn(s: Session) -> str:
            policy.check_admin(actor, "issue tokens")
            op = _get(s, Operator, operator_id)
            token = self._new_token(s, op, label, ttl)
            audit.record(s, actor, "operator.token_issue", object_type="operator",
                         object_id=op.id, detail={"label": label})
            return token
        return self._run(actor, "operator.token_issue", fn, object_type="operator",
                         object_id=operator_id)

    # schools -------------------------------------------------------------------------------

    def create_school(self, actor: Actor, code: str, name: str, address: str | None = None) -> dict:
        def fn(s: Session) -> dict:
            policy.check_admin(actor, "create schools")
            _require({"code": code, "name": name})
            if s.scalar(select(School.id).where(School.code == code)) is not None:
                raise Conflict(f"school code {code!r} exists")
            school = School(code=code.strip(), name=name.strip(), address=address)
            s.add(school)
            s.flush()
            audit.record(s, actor, "school.create", object_type="school", object_id=school.id,
                         school_id=school.id, detail={"code": code})
            return school_out(school)
        return self._run(actor, "school.create", fn, object_type="school")

    def list_schools(self, actor: Actor, offset: int = 0, limit: int = 100) -> dict:
        offset, limit = _clamp(offset, limit)

        def fn(s: Session) -> dict:
            stmt = policy.scoped(select(School), actor, School.id)
            total = s.scalar(select(func.count()).select_from(stmt.subquery()))
            rows = s.scalars(stmt.order_by(School.id).offset(offset).limit(limit)).all()
            audit.record(s, actor, "school.list", object_type="school",
                         detail={"offset": offset, "count": len(rows)})
            return page([school_out(r) for r in rows], total, offset, limit)
        return self._run(actor, "school.list", fn, object_type="school")

    def school_by_code(self, actor: Actor, code: str) -> dict:
        def fn(s: Session) -> dict:
            school = s.scalar(select(School).where(School.code == code))
            if school is None:
                raise NotFound(f"no school with code {code!r}")
            policy.check_read(actor, school.id, "school")
            return school_out(school)
        return self._run(actor, "school.read", fn, object_type="school", object_id=code)

    # operators -----------------------------------------------------------------------------

    def create_operator(self, actor: Actor, username: str, role: Role | str, *,
                        school_id: int | None = None, password: str | None = None,
                        display_name: str = "", token_label: str = "initial") -> tuple[dict, str]:
        """-> (operator, its first bearer token — shown once)."""
        def fn(s: Session) -> tuple[dict, str]:
            policy.check_admin(actor, "create operators")
            errors = _check_operator(username, role, school_id, password)
            if errors:
                raise Invalid("invalid operator", errors)
            r = Role(role)
            if r == Role.SCHOOL_ADMIN:
                _get(s, School, school_id)
            if s.scalar(select(Operator.id).where(Operator.username == username)) is not None:
                raise Conflict(f"username {username!r} is taken")
            op = Operator(username=username, role=r, display_name=display_name,
                          school_id=school_id if r == Role.SCHOOL_ADMIN else None,
                          password_hash=credentials.hash_secret(password) if password else None)
            s.add(op)
            s.flush()
            token = self._new_token(s, op, token_label, None)
            audit.record(s, actor, "operator.create", object_type="operator", object_id=op.id,
                         school_id=op.school_id, detail={"username": username, "role": r.value})
            return operator_out(op), token
        return self._run(actor, "operator.create", fn, object_type="operator")

    def list_operators(self, actor: Actor, offset: int = 0, limit: int = 100) -> dict:
        offset, limit = _clamp(offset, limit)

        def fn(s: Session) -> dict:
            policy.check_directory_read(actor)
            total = s.scalar(select(func.count(Operator.id)))
            rows = s.scalars(select(Operator).order_by(Operator.id).offset(offset).limit(limit))
            items = [operator_out(o) for o in rows]
            audit.record(s, actor, "operator.list", object_type="operator",
                         detail={"offset": offset, "count": len(items)})
            return page(items, total, offset, limit)
        return self._run(actor, "operator.list", fn, object_type="operator")

    def set_operator_active(self, actor: Actor, operator_id: int, active: bool) -> dict:
        def fn(s: Session) -> dict:
            policy.check_admin(actor, "enable or disable operators")
            op = _get(s, Operator, operator_id)
            op.active = active
            if not active:
                for t in op.tokens:
                    t.revoked_at = t.revoked_at or utcnow()
            audit.record(s, actor, "operator.activate" if active else "operator.deactivate",
                         object_type="operator", object_id=op.id)
            return operator_out(op)
        out = self._run(actor, "operator.update", fn, object_type="operator", object_id=operator_id)
        self._forget_tokens()
        return out

    # subscribers ---------------------------------------------------------------------------

    def list_subscribers(self, actor: Actor, *, school_id: int | None = None,
                         class_name: str | None = None, q: str | None = None,
                         offset: int = 0, limit: int = 100) -> dict:
        offset, limit = _clamp(offset, limit)

        def fn(s: Session) -> dict:
            if school_id is not None:
                policy.check_read(actor, school_id, "subscriber list")
            stmt = policy.scoped(select(Subscriber), actor, Subscriber.school_id)
            if school_id is not None:
                stmt = stmt.where(Subscriber.school_id == school_id)
            if class_name:
                stmt = stmt.where(Subscriber.class_name == class_name)
            if q:
                like = f"%{q.lower()}%"
                stmt = stmt.where(or_(func.lower(Subscriber.full_name).like(like),
                                      func.lower(Subscriber.pupil_ref).like(like)))
            total = s.scalar(select(func.count()).select_from(stmt.subquery()))
            rows = s.scalars(stmt.order_by(Subscriber.id).offset(offset).limit(limit)).all()
            audit.record(s, actor, "subscriber.list", object_type="subscriber",
                         school_id=school_id or policy.school_scope(actor), detail={"offset": offset, "count": len(rows),
                                                      "ids": [r.id for r in rows]})
            return page([subscriber_out(r) for r in rows], total, offset, limit)
        return self._run(actor, "subscriber.list", fn, object_type="subscriber")

    def get_subscriber(self, actor: Actor, subscriber_id: int) -> dict:
        """The subscriber card: child, school, guardians and numbers, consents, devices."""
        def fn(s: Session) -> dict:
            sub = _get(s, Subscriber, subscriber_id)
            policy.check_read(actor, sub.school_id, "subscriber")
            audit.record(s, actor, "subscriber.read", object_type="subscriber",
                         object_id=sub.id, school_id=sub.school_id)
            return subscriber_out(sub, card=True)
        return self._run(actor, "subscriber.read", fn, object_type="subscriber",
                         object_id=subscriber_id)

    def create_subscriber(self, actor: Actor, data: dict) -> dict:
        def fn(s: Session) -> dict:
            school_id = data.get("school_id")
            policy.check_roster_write(actor, school_id)
            _get(s, School, school_id)
            sub = Subscriber(school_id=school_id, **_subscriber_fields(data, partial=False))
            s.add(sub)
            s.flush()
            for i, g in enumerate(data.get("guardians") or [], start=1):
                s.add(Guardian(subscriber_id=sub.id, **_guardian_fields(g, i)))
            audit.record(s, actor, "subscriber.create", object_type="subscriber",
                         object_id=sub.id, school_id=school_id)
            s.flush()
            s.refresh(sub)
            return subscriber_out(sub, card=True)
        return self._run(actor, "subscriber.create", fn, object_type="subscriber")

    def update_subscriber(self, actor: Actor, subscriber_id: int, patch: dict) -> dict:
        def fn(s: Session) -> dict:
            sub = _get(s, Subscriber, subscriber_id)
            policy.check_roster_write(actor, sub.school_id)
            fields = _subscriber_fields(patch, partial=True)
            if patch.get("active") is not None:
                fields["active"] = bool(patch["active"])  # left the school / service ended
            changed = {k: v for k, v in fields.items() if getattr(sub, k) != v}
            for k, v in changed.items():
                setattr(sub, k, v)
            audit.record(s, actor, "subscriber.update", object_type="subscriber",
                         object_id=sub.id, school_id=sub.school_id,
                         detail={"fields": sorted(changed)})
            s.flush()
            return subscriber_out(sub, card=True)
        return self._run(actor, "subscriber.update", fn, object_type="subscriber",
                         object_id=subscriber_id)

    # guardians -----------------------------------------------------------------------------

    def list_guardians(self, actor: Actor, subscriber_id: int) -> dict:
        return self._subscriber_part(actor, subscriber_id, "guardian.list",
                                     lambda sub: [guardian_out(g) for g in sub.guardians])

    def add_guardian(self, actor: Actor, subscriber_id: int, data: dict) -> dict:
        def fn(s: Session) -> dict:
            sub = _get(s, Subscriber, subscriber_id)
            policy.check_roster_write(actor, sub.school_id)
            g = Guardian(subscriber_id=sub.id, **_guardian_fields(data, len(sub.guardians) + 1))
            s.add(g)
            s.flush()
            audit.record(s, actor, "guardian.create", object_type="guardian", object_id=g.id,
                         school_id=sub.school_id, detail={"subscriber_id": sub.id})
            return guardian_out(g)
        return self._run(actor, "guardian.create", fn, object_type="guardian")

    def update_guardian(self, actor: Actor, guardian_id: int, patch: dict) -> dict:
        def fn(s: Session) -> dict:
            g = _get(s, Guardian, guardian_id)
            school_id = g.subscriber.school_id
            policy.check_roster_write(actor, school_id)
            merged = guardian_out(g) | {k: v for k, v in patch.items() if v is not None}
            for k, v in _guardian_fields(merged, g.priority).items():
                setattr(g, k, v)
            audit.record(s, actor, "guardian.update", object_type="guardian", object_id=g.id,
                         school_id=school_id, detail={"fields": sorted(patch)})
            return guardian_out(g)
        return self._run(actor, "guardian.update", fn, object_type="guardian",
                         object_id=guardian_id)

    def delete_guardian(self, actor: Actor, guardian_id: int) -> None:
        def fn(s: Session) -> None:
            g = _get(s, Guardian, guardian_id)
            school_id = g.subscriber.school_id
            policy.check_roster_write(actor, school_id)
            audit.record(s, actor, "guardian.delete", object_type="guardian", object_id=g.id,
                         school_id=school_id, detail={"subscriber_id": g.subscriber_id})
            s.delete(g)
        self._run(actor, "guardian.delete", fn, object_type="guardian", object_id=guardian_id)

    # consents ------------------------------------------------------------------------------

    def list_consents(self, actor: Actor, subscriber_id: int) -> dict:
        return self._subscriber_part(actor, subscriber_id, "consent.list",
                                     lambda sub: [consent_out(c) for c in sub.consents])

    def _subscriber_part(self, actor: Actor, subscriber_id: int, action: str,
                         items: Callable[[Subscriber], list[dict]]) -> dict:
        """One subscriber's guardians or consents, as a single page."""
        def fn(s: Session) -> dict:
            sub = _get(s, Subscriber, subscriber_id)
            policy.check_read(actor, sub.school_id, "subscriber")
            audit.record(s, actor, action, object_type="subscriber", object_id=sub.id,
                         school_id=sub.school_id)
            out = items(sub)
            return page(out, len(out), 0, max(len(out), 1))
        return self._run(actor, action, fn, object_type="subscriber", object_id=subscriber_id)

    def record_consent(self, actor: Actor, subscriber_id: int, data: dict) -> dict:
        def fn(s: Session) -> dict:
            sub = _get(s, Subscriber, subscriber_id)
            policy.check_roster_write(actor, sub.school_id)
            fields = _consent_fields(data)
            gid = fields.get("guardian_id")
            guardian = s.get(Guardian, gid) if gid is not None else None
            if gid is not None and (guardian is None or guardian.subscriber_id != sub.id):
                raise Invalid("invalid consent", [{"field": "guardian_id",
                                                   "message": "not a guardian of this pupil"}])
            c = Consent(subscriber_id=sub.id, recorded_by=actor.operator_id, **fields)
            s.add(c)
            s.flush()
            audit.record(s, actor, "consent.record", object_type="consent", object_id=c.id,
                         school_id=sub.school_id, detail={"scope": c.scope})
            return consent_out(c)
        return self._run(actor, "consent.record", fn, object_type="consent")

    def withdraw_consent(self, actor: Actor, consent_id: int) -> dict:
        def fn(s: Session) -> dict:
            c = _get(s, Consent, consent_id)
            policy.check_roster_write(actor, c.subscriber.school_id)
            if c.withdrawn_at is None:
                c.withdrawn_at = utcnow()
            audit.record(s, actor, "consent.withdraw", object_type="consent", object_id=c.id,
                         school_id=c.subscriber.school_id, detail={"scope": c.scope})
            return consent_out(c)
        return self._run(actor, "consent.withdraw", fn, object_type="consent",
                         object_id=consent_id)

    # devices -------------------------------------------------------------------------------

    def register_device(self, actor: Actor, device_id: int | str, device_key: bytes, *,
                        school_id: int | None = None, subscriber_id: int | None = None,
                        key_id: int = 1, board: str = "", firmware_version: str = "",
                        replace: bool = False) -> dict:
        """Store a device and its key (sealed under the server key). `replace` re-keys an
        existing device (re-provisioning) and resets its replay window."""
        def fn(s: Session) -> dict:
            if self.server_key is None:
                raise ServerKeyError("no server key configured: cannot store device keys")
            dev_id = parse_device_id(device_id)
            if not 16 <= len(device_key) <= 64:
                raise Invalid("invalid device", [{"field": "key", "message": "16..64 bytes"}])
            sid = school_id
            if subscriber_id is not None:
                sub = _get(s, Subscriber, subscriber_id)
                if sid is not None and sid != sub.school_id:
                    raise Invalid("invalid device", [{"field": "subscriber_id",
                                                      "message": "pupil is in another school"}])
                sid = sub.school_id
            policy.check_roster_write(actor, sid, "device registry")
            if sid is not None:
                _get(s, School, sid)
            dev = s.get(Device, dev_id)
            if dev is not None and not replace:
                raise Conflict(f"device {dev_id} is already registered (use replace)")
            if dev is not None:
                policy.check_roster_write(actor, dev.school_id, "device registry")
            else:
                dev = Device(id=dev_id)
                s.add(dev)
            dev.school_id, dev.subscriber_id, dev.key_id = sid, subscriber_id, key_id
            dev.key_sealed = self.server_key.seal(dev_id, device_key)
            dev.sealed_with = self.server_key.fingerprint
            dev.board, dev.firmware_version = board, firmware_version
            dev.status, dev.last_counter, dev.replay_bitmap = DeviceStatus.PROVISIONED, 0, 0
            s.flush()
            audit.record(s, actor, "device.rekey" if replace else "device.register",
                         object_type="device", object_id=dev_id, school_id=sid,
                         detail={"key_id": key_id, "subscriber_id": subscriber_id,
                                 "board": board})
            return device_out(dev)
        return self._run(actor, "device.register", fn, object_type="device", object_id=device_id)

    def list_devices(self, actor: Actor, *, school_id: int | None = None,
                     status: str | None = None, offset: int = 0, limit: int = 100) -> dict:
        offset, limit = _clamp(offset, limit)

        def fn(s: Session) -> dict:
            if school_id is not None:
                policy.check_read(actor, school_id, "device list")
            stmt = policy.scoped(select(Device), actor, Device.school_id)
            if school_id is not None:
                stmt = stmt.where(Device.school_id == school_id)
            if status:
                stmt = stmt.where(Device.status == _enum_value(DeviceStatus, status, "status"))
            total = s.scalar(select(func.count()).select_from(stmt.subquery()))
            rows = s.scalars(stmt.order_by(Device.id).offset(offset).limit(limit)).all()
            audit.record(s, actor, "device.list", object_type="device",
                         school_id=school_id or policy.school_scope(actor),
                         detail={"offset": offset, "count": len(rows)})
            return page([device_out(d) for d in rows], total, offset, limit)
        return self._run(actor, "device.list", fn, object_type="device")

    def get_device(self, actor: Actor, device_id: int | str) -> dict:
        def fn(s: Session) -> dict:
            dev = _get(s, Device, parse_device_id(device_id))
            policy.check_read(actor, dev.school_id, "device")
            audit.record(s, actor, "device.read", object_type="device", object_id=dev.id,
                         school_id=dev.school_id)
            return device_out(dev)
        return self._run(actor, "device.read", fn, object_type="device", object_id=device_id)

    def update_device(self, actor: Actor, device_id: int | str, patch: dict) -> dict:
        def fn(s: Session) -> dict:
            dev = _get(s, Device, parse_device_id(device_id))
            policy.check_roster_write(actor, dev.school_id, "device registry")
            changed = []
            if patch.get("status") is not None:
                dev.status = _enum_value(DeviceStatus, patch["status"], "status")
                changed.append("status")
            if "subscriber_id" in patch:
                sid = patch["subscriber_id"]
                if sid is not None:
                    sub = _get(s, Subscriber, sid)
                    policy.check_roster_write(actor, sub.school_id, "device registry")
                    dev.school_id = sub.school_id
                dev.subscriber_id = sid
                changed.append("subscriber_id")
            for k in ("board", "firmware_version"):
                if patch.get(k) is not None:
                    setattr(dev, k, str(patch[k])[:64])
                    changed.append(k)
            audit.record(s, actor, "device.update", object_type="device", object_id=dev.id,
                         school_id=dev.school_id, detail={"fields": changed, **{
                             k: patch[k] for k in ("status", "subscriber_id") if k in patch}})
            return device_out(dev)
        return self._run(actor, "device.update", fn, object_type="device", object_id=device_id)

    def device_key(self, device_id: int) -> bytes:
        """The device's key in clear, for packet verification (ingest). Not audited per call."""
        if self.server_key is None:
            raise ServerKeyError("no server key configured")
        with self.db.Session() as s:
            dev = s.get(Device, parse_device_id(device_id))
            if dev is None:
                raise NotFound(f"no device {device_id}")
            return self.server_key.open(dev.id, dev.key_sealed)

    # roster --------------------------------------------------------------------------------

    def import_roster(self, actor: Actor, school_id: int, csv_text: str, *,
                      dry_run: bool = False, country_code: str = "") -> dict:
        """All rows or none. -> {created, updated, rows}; bad rows raise Invalid with errors
        [{row, field, message}] (row = line number in the file, header = 1)."""
        def fn(s: Session) -> dict:
            policy.check_roster_write(actor, school_id)
            _get(s, School, school_id)
            rows, errors = roster.parse(csv_text, country_code=country_code)
            if errors:
                raise Invalid(f"roster rejected: {len(errors)} error(s), nothing imported", errors)
            result = roster.apply(s, school_id, rows, recorded_by=actor.operator_id)
            audit.record(s, actor, "roster.import", object_type="school", object_id=school_id,
                         school_id=school_id, detail={**result, "dry_run": dry_run})
            if dry_run:
                raise _DryRun(result)  # rolls the whole transaction back
            return result | {"dry_run": False}
        try:
            return self._run(actor, "roster.import", fn, object_type="school",
                             object_id=school_id)
        except _DryRun as d:
            out = d.result | {"dry_run": True}
            self._audit_alone(actor, "roster.import", "ok", object_type="school",
                              object_id=school_id, school_id=school_id, detail=out)
            return out

    # audit log -----------------------------------------------------------------------------

    def list_audit(self, actor: Actor, *, operator_id: int | None = None,
                   action: str | None = None, object_type: str | None = None,
                   object_id: str | None = None, since: datetime | None = None,
                   offset: int = 0, limit: int = 100) -> dict:
        offset, limit = _clamp(offset, limit)

        def fn(s: Session) -> dict:
            policy.check_audit_read(actor)
            stmt = select(AuditEntry)
            if operator_id is not None:
                stmt = stmt.where(AuditEntry.operator_id == operator_id)
            if action:
                stmt = stmt.where(AuditEntry.action == action)
            if object_type:
                stmt = stmt.where(AuditEntry.object_type == object_type)
            if object_id:
                stmt = stmt.where(AuditEntry.object_id == object_id)
            if since:
                stmt = stmt.where(AuditEntry.at >= since)
            total = s.scalar(select(func.count()).select_from(stmt.subquery()))
            rows = s.scalars(stmt.order_by(AuditEntry.id.desc()).offset(offset).limit(limit))
            items = [audit_out(e) for e in rows]
            # Reading the audit log is itself an access worth recording (after the read).
            audit.record(s, actor, "audit.read", object_type="audit",
                         detail={"offset": offset, "count": len(items)})
            return page(items, total, offset, limit)
        return self._run(actor, "audit.read", fn, object_type="audit")

    def verify_audit(self, actor: Actor) -> dict:
        def fn(s: Session) -> dict:
            policy.check_audit_read(actor)
            ok, checked, bad = audit.verify_chain(s)
            audit.record(s, actor, "audit.verify", object_type="audit",
                         detail={"intact": ok, "checked": checked})
            return {"intact": ok, "checked": checked, "first_bad_id": bad}
        return self._run(actor, "audit.verify", fn, object_type="audit")


# -- helpers -----------------------------------------------------------------------------------


class _DryRun(Exception):
    def __init__(self, result: dict):
        self.result = result


def _with_addr(actor: Actor, remote_addr: str) -> Actor:
    return Actor(actor.operator_id, actor.username, actor.role, actor.school_id, remote_addr)


def _get(s: Session, model: type[T], key: Any) -> T:
    obj = s.get(model, key) if key is not None else None
    if obj is None:
        raise NotFound(f"no {getattr(model, '__tablename__', 'record')[:-1]} {key}")
    return obj


def _require(fields: dict[str, Any]) -> None:
    errors = [{"field": k, "message": "required"} for k, v in fields.items()
              if v is None or (isinstance(v, str) and not v.strip())]
    if errors:
        raise Invalid("missing fields", errors)


def _enum_value(cls, value: str, field: str):
    try:
        return cls(value)
    except ValueError:
        raise Invalid(f"bad {field}", [{"field": field, "message": f"one of {[m.value for m in cls]}"}]) from None


def parse_device_id(device_id: int | str) -> int:
    """A u32: an int, decimal text, or hex text with 0x ("0x00a1b2c3", as printed on labels)."""
    try:
        if isinstance(device_id, str):
            t = device_id.strip().lower()
            d = int(t, 16) if t.startswith("0x") else int(t)
        else:
            d = int(device_id)
        if not 0 <= d <= 0xFFFF_FFFF:
            raise ValueError
    except (TypeError, ValueError):
        raise Invalid("bad device id", [{"field": "device_id",
                                         "message": "a u32: decimal or 0x-hex"}]) from None
    return d


def _check_operator(username: str, role: str, school_id: int | None,
                    password: str | None) -> list[dict]:
    errors = []
    if not username or len(username) > 64 or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        errors.append({"field": "username", "message": "1..64 letters, digits, . - _"})
    if role not in {r.value for r in Role}:
        errors.append({"field": "role", "message": f"one of {[r.value for r in Role]}"})
    elif role == Role.SCHOOL_ADMIN and school_id is None:
        errors.append({"field": "school", "message": "a school admin needs a school"})
    if password is not None and len(password) < 10:
        errors.append({"field": "password", "message": "at least 10 characters"})
    return errors


def _subscriber_fields(data: dict, partial: bool) -> dict:
    errors: list[dict] = []
    out = roster.subscriber_fields(data, errors, partial=partial)
    if errors:
        raise Invalid("invalid subscriber", errors)
    return out


def _guardian_fields(data: dict, priority: int) -> dict:
    errors: list[dict] = []
    out = roster.guardian_fields(data, errors, priority=priority)
    if errors:
        raise Invalid("invalid guardian", errors)
    return out


def _consent_fields(data: dict) -> dict:
    errors: list[dict] = []
    given_by = (data.get("given_by") or "").strip()
    scope = (data.get("scope") or "").strip()
    if not given_by:
        errors.append({"field": "given_by", "message": "required"})
    if scope not in roster.CONSENT_SCOPES:
        errors.append({"field": "scope", "message": f"one of {sorted(roster.CONSENT_SCOPES)}"})
    given_at = data.get("given_at") or utcnow()
    if isinstance(given_at, str | date) and not isinstance(given_at, datetime):
        try:
            given_at = roster.parse_date(str(given_at))
        except ValueError as e:
            errors.append({"field": "given_at", "message": str(e)})
    elif isinstance(given_at, datetime) and given_at.tzinfo is None:
        given_at = given_at.replace(tzinfo=UTC)
    if errors:
        raise Invalid("invalid consent", errors)
    return {"given_by": given_by, "scope": scope, "given_at": given_at,
            "guardian_id": data.get("guardian_id"), "evidence": (data.get("evidence") or "")[:300]}


__all__ = ["Registry", "RegistryError", "Denied", "Invalid", "NotFound", "Conflict",
           "cli_actor", "NotifyPref"]
