"""The registry's service layer: every read and change goes through here, checked by `policy`
and recorded in the audit log in the same transaction as the change itself. Sign-in and tokens
are in `signin.py`, the audited transaction in `core.py`, the record shapes in `serialize.py`;
this module holds the records' reads and changes (CRUD).

Methods take the acting `Actor` first and return plain dicts (JSON-ready). Refusals raise
`Denied` and leave a `denied` audit entry (written in its own transaction, since the refused
one rolls back); bad input raises `Invalid` with per-field errors, also audited.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from urelief.registry import audit, consent, credentials, policy, roster
from urelief.registry.audit import Actor
from urelief.registry.core import clamp, cli_actor, enum_value, get, parse_device_id, require
from urelief.registry.errors import (
    Conflict,
    Denied,
    Invalid,
    NotFound,
    RegistryError,
)
from urelief.registry.keys import ServerKeyError
from urelief.registry.models import (
    AuditEntry,
    Consent,
    Device,
    DeviceStatus,
    Guardian,
    NotifyPref,
    Operator,
    Role,
    School,
    Subscriber,
    utcnow,
)
from urelief.registry.serialize import (
    audit_out,
    consent_out,
    device_out,
    guardian_out,
    operator_out,
    page,
    school_out,
    subscriber_out,
)
from urelief.registry.signin import API_TOKEN_TTL, SignIn


class Registry(SignIn):
    # schools -------------------------------------------------------------------------------

    def create_school(self, actor: Actor, code: str, name: str, address: str | None = None) -> dict:
        def fn(s: Session) -> dict:
            policy.check_admin(actor, "create schools")
            require({"code": code, "name": name})
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
        offset, limit = clamp(offset, limit)

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
                        display_name: str = "", token_label: str = "initial",
                        token_ttl: timedelta = API_TOKEN_TTL) -> tuple[dict, str]:
        """-> (operator, its first bearer token — shown once; it expires after `token_ttl`)."""
        def fn(s: Session) -> tuple[dict, str]:
            policy.check_admin(actor, "create operators")
            errors = _check_operator(username, role, school_id, password)
            if errors:
                raise Invalid("invalid operator", errors)
            r = Role(role)
            if r == Role.SCHOOL_ADMIN:
                get(s, School, school_id)
            if s.scalar(select(Operator.id).where(Operator.username == username)) is not None:
                raise Conflict(f"username {username!r} is taken")
            op = Operator(username=username, role=r, display_name=display_name,
                          school_id=school_id if r == Role.SCHOOL_ADMIN else None,
                          password_hash=credentials.hash_secret(password) if password else None)
            s.add(op)
            s.flush()
            token = self._new_token(s, op, token_label, token_ttl)
            audit.record(s, actor, "operator.create", object_type="operator", object_id=op.id,
                         school_id=op.school_id, detail={"username": username, "role": r.value})
            return operator_out(op), token
        return self._run(actor, "operator.create", fn, object_type="operator")

    def list_operators(self, actor: Actor, offset: int = 0, limit: int = 100) -> dict:
        offset, limit = clamp(offset, limit)

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
            op = get(s, Operator, operator_id)
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
        offset, limit = clamp(offset, limit)

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
            sub = get(s, Subscriber, subscriber_id)
            policy.check_read(actor, sub.school_id, "subscriber")
            audit.record(s, actor, "subscriber.read", object_type="subscriber",
                         object_id=sub.id, school_id=sub.school_id)
            return subscriber_out(sub, card=True)
        return self._run(actor, "subscriber.read", fn, object_type="subscriber",
                         object_id=subscriber_id)

    def consent_refusal(self, actor: Actor, subscriber_id: int, scope: str, *,
                        need_active: bool = False) -> str | None:
        """`consent.refusal` for this pupil: None when `scope` is in force, else why not."""
        def fn(s: Session) -> str | None:
            sub = get(s, Subscriber, subscriber_id)
            policy.check_read(actor, sub.school_id, "subscriber")
            return consent.refusal(sub, scope, need_active=need_active)
        return self._run(actor, "subscriber.consent", fn, object_type="subscriber",
                         object_id=subscriber_id)

    def create_subscriber(self, actor: Actor, data: dict) -> dict:
        def fn(s: Session) -> dict:
            school_id = data.get("school_id")
            policy.check_roster_write(actor, school_id)
            get(s, School, school_id)
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
            sub = get(s, Subscriber, subscriber_id)
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
            sub = get(s, Subscriber, subscriber_id)
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
            g = get(s, Guardian, guardian_id)
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
            g = get(s, Guardian, guardian_id)
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
            sub = get(s, Subscriber, subscriber_id)
            policy.check_read(actor, sub.school_id, "subscriber")
            audit.record(s, actor, action, object_type="subscriber", object_id=sub.id,
                         school_id=sub.school_id)
            out = items(sub)
            return page(out, len(out), 0, max(len(out), 1))
        return self._run(actor, action, fn, object_type="subscriber", object_id=subscriber_id)

    def record_consent(self, actor: Actor, subscriber_id: int, data: dict) -> dict:
        def fn(s: Session) -> dict:
            sub = get(s, Subscriber, subscriber_id)
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
            c = get(s, Consent, consent_id)
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
        existing device (re-provisioning): under a new key id the old key stays valid until
        the device's first packet under the new one, and the replay window is kept (the new
        counter file starts above it, docs/protocol.md §7-8); under the same key id the old
        key is gone at once and the window starts again."""
        def fn(s: Session) -> dict:
            if self.server_key is None:
                raise ServerKeyError("no server key configured: cannot store device keys")
            dev_id = parse_device_id(device_id)
            if not 16 <= len(device_key) <= 64:
                raise Invalid("invalid device", [{"field": "key", "message": "16..64 bytes"}])
            sid = school_id
            if subscriber_id is not None:
                sub = get(s, Subscriber, subscriber_id)
                if sid is not None and sid != sub.school_id:
                    raise Invalid("invalid device", [{"field": "subscriber_id",
                                                      "message": "pupil is in another school"}])
                sid = sub.school_id
            policy.check_roster_write(actor, sid, "device registry")
            if sid is not None:
                get(s, School, sid)
            dev = s.get(Device, dev_id)
            if dev is not None and not replace:
                raise Conflict(f"device {dev_id} is already registered (use replace)")
            if dev is not None:
                policy.check_roster_write(actor, dev.school_id, "device registry")
            else:
                dev = Device(id=dev_id)
                s.add(dev)
            keep_old = dev.key_sealed is not None and dev.key_id != key_id  # a new key id
            dev.prev_key_id = dev.key_id if keep_old else None
            dev.prev_key_sealed = dev.key_sealed if keep_old else None
            if not keep_old:  # new device, or the same key id: the old key is gone at once
                dev.last_counter, dev.replay_bitmap = 0, 0
            dev.school_id, dev.subscriber_id, dev.key_id = sid, subscriber_id, key_id
            dev.key_sealed = self.server_key.seal(dev_id, device_key)
            dev.sealed_with = self.server_key.fingerprint
            dev.board, dev.firmware_version = board, firmware_version
            dev.status = DeviceStatus.PROVISIONED
            s.flush()
            audit.record(s, actor, "device.rekey" if replace else "device.register",
                         object_type="device", object_id=dev_id, school_id=sid,
                         detail={"key_id": key_id, "subscriber_id": subscriber_id,
                                 "board": board})
            return device_out(dev)
        out = self._run(actor, "device.register", fn, object_type="device", object_id=device_id)
        self._device_changed(out["id"])
        return out

    def list_devices(self, actor: Actor, *, school_id: int | None = None,
                     status: str | None = None, offset: int = 0, limit: int = 100) -> dict:
        offset, limit = clamp(offset, limit)

        def fn(s: Session) -> dict:
            if school_id is not None:
                policy.check_read(actor, school_id, "device list")
            stmt = policy.scoped(select(Device), actor, Device.school_id)
            if school_id is not None:
                stmt = stmt.where(Device.school_id == school_id)
            if status:
                stmt = stmt.where(Device.status == enum_value(DeviceStatus, status, "status"))
            total = s.scalar(select(func.count()).select_from(stmt.subquery()))
            rows = s.scalars(stmt.order_by(Device.id).offset(offset).limit(limit)).all()
            audit.record(s, actor, "device.list", object_type="device",
                         school_id=school_id or policy.school_scope(actor),
                         detail={"offset": offset, "count": len(rows)})
            return page([device_out(d) for d in rows], total, offset, limit)
        return self._run(actor, "device.list", fn, object_type="device")

    def get_device(self, actor: Actor, device_id: int | str) -> dict:
        def fn(s: Session) -> dict:
            dev = get(s, Device, parse_device_id(device_id))
            policy.check_read(actor, dev.school_id, "device")
            audit.record(s, actor, "device.read", object_type="device", object_id=dev.id,
                         school_id=dev.school_id)
            return device_out(dev)
        return self._run(actor, "device.read", fn, object_type="device", object_id=device_id)

    def update_device(self, actor: Actor, device_id: int | str, patch: dict) -> dict:
        def fn(s: Session) -> dict:
            dev = get(s, Device, parse_device_id(device_id))
            policy.check_roster_write(actor, dev.school_id, "device registry")
            changed = []
            if patch.get("status") is not None:
                dev.status = enum_value(DeviceStatus, patch["status"], "status")
                changed.append("status")
            if "subscriber_id" in patch:
                sid = patch["subscriber_id"]
                if sid is not None:
                    sub = get(s, Subscriber, sid)
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
        out = self._run(actor, "device.update", fn, object_type="device", object_id=device_id)
        self._device_changed(out["id"])
        return out

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
            get(s, School, school_id)
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
        offset, limit = clamp(offset, limit)

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


# -- input checks ------------------------------------------------------------------------------


class _DryRun(Exception):
    def __init__(self, result: dict):
        self.result = result


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
           "cli_actor", "parse_device_id", "device_out", "subscriber_out", "NotifyPref"]
