"""Who may do what: the one place role rules live. Pure functions on an `Actor`.

| role         | read roster/devices/incidents | change roster/devices | schools, operators | audit log |
| ------------ | ----------------------------- | --------------------- | ------------------ | --------- |
| school_admin | own school                    | own school            | -                  | -         |
| dispatcher   | all (to act on incidents)     | -                     | -                  | -         |
| auditor      | all                           | -                     | read               | read      |
| admin        | all                           | all                   | all                | read      |

Incident actions (acknowledge, dispatch, …) belong to dispatchers and admins: `may_act_on_incidents`.
"""

from __future__ import annotations

from sqlalchemy import Select

from urelief.registry.audit import Actor
from urelief.registry.errors import Denied
from urelief.registry.models import Role

_READ_ALL = frozenset({Role.DISPATCHER, Role.AUDITOR, Role.ADMIN})


def school_scope(actor: Actor) -> int | None:
    """The only school this actor may see, or None for all schools."""
    if actor.role == Role.SCHOOL_ADMIN:
        if actor.school_id is None:
            raise Denied("school admin without a school")
        return actor.school_id
    if actor.role in _READ_ALL:
        return None
    raise Denied(f"unknown role {actor.role!r}")


def check_read(actor: Actor, school_id: int | None, what: str = "record") -> None:
    scope = school_scope(actor)
    if scope is not None and school_id != scope:
        raise Denied(f"{what} belongs to another school", school_id=school_id)


def check_roster_write(actor: Actor, school_id: int | None, what: str = "roster") -> None:
    if actor.role == Role.ADMIN:
        return
    if actor.role == Role.SCHOOL_ADMIN and school_id is not None and school_id == actor.school_id:
        return
    if actor.role == Role.SCHOOL_ADMIN:
        raise Denied(f"{what} belongs to another school", school_id=school_id)
    raise Denied(f"role {actor.role} may not change the {what}", school_id=school_id)


def check_admin(actor: Actor, what: str) -> None:
    if actor.role != Role.ADMIN:
        raise Denied(f"only an admin may {what}")


def check_audit_read(actor: Actor) -> None:
    if actor.role not in (Role.AUDITOR, Role.ADMIN):
        raise Denied("only auditors and admins may read the audit log")


def check_directory_read(actor: Actor) -> None:
    """Operators list: admins and auditors."""
    if actor.role not in (Role.AUDITOR, Role.ADMIN):
        raise Denied("only auditors and admins may list operators")


def may_act_on_incidents(actor: Actor) -> bool:
    return actor.role in (Role.DISPATCHER, Role.ADMIN)


def scoped(stmt: Select, actor: Actor, school_column) -> Select:
    """Add `WHERE <school_column> = own school` for a school admin; unchanged otherwise."""
    scope = school_scope(actor)
    return stmt if scope is None else stmt.where(school_column == scope)
