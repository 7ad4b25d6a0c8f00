"""The registry service's core: audited transactions (a refused change rolls back and leaves
its `denied`/`invalid` audit row in a transaction of its own) and the input checks every part
of the service uses. `signin.SignIn` and `service.Registry` build on `RegistryCore`."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from urelief.registry import audit
from urelief.registry.audit import Actor
from urelief.registry.db import Database
from urelief.registry.errors import Conflict, Denied, Invalid, NotFound
from urelief.registry.keys import ServerKey
from urelief.registry.models import Role

T = TypeVar("T")
MAX_PAGE = 500


def cli_actor() -> Actor:
    """Whoever runs `urelief registry …` on the server host acts as an admin, by name."""
    return Actor(None, f"cli:{getpass.getuser()}", Role.ADMIN)


def clamp(offset: int, limit: int) -> tuple[int, int]:
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise Invalid(
            "bad page", [{"field": "limit", "message": f"offset >= 0, 1 <= limit <= {MAX_PAGE}"}]
        )
    return offset, limit


class RegistryCore:
    def __init__(self, db: Database, server_key: ServerKey | None = None):
        self.db = db
        self.server_key = server_key
        # Called with a device id after its registry entry changed (status, key, pupil): a
        # running server's device cache re-reads it at once (server.devices.DeviceCache.forget).
        self.device_listeners: list[Callable[[int], None]] = []

    def _device_changed(self, device_id: int) -> None:
        for listener in self.device_listeners:
            listener(device_id)

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


def get(s: Session, model: type[T], key: Any) -> T:
    obj = s.get(model, key) if key is not None else None
    if obj is None:
        raise NotFound(f"no {getattr(model, '__tablename__', 'record')[:-1]} {key}")
    return obj


def require(fields: dict[str, Any]) -> None:
    errors = [{"field": k, "message": "required"} for k, v in fields.items()
              if v is None or (isinstance(v, str) and not v.strip())]
    if errors:
        raise Invalid("missing fields", errors)


def enum_value(cls, value: str, field: str):
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
