"""Consent, checked one way by every path that needs it (`refusal` is the only check):

- provisioning, one device or a class batch: an active pupil with `location` consent;
- a guardian's SMS: `guardian_sms` consent, that guardian's own or one given for all guardians;
- a position shown by the dashboard or the API: `location` consent (the position is still
  stored; it is withheld from the reader, who is told why).

A consent is in force at a moment when it was given at or before it and not withdrawn at or
before it. A record with no pupil (a spare device, an AML caller) needs no pupil's consent.
"""

from __future__ import annotations

from datetime import datetime

from urelief.registry.models import Subscriber, utcnow

LOCATION, GUARDIAN_SMS = "location", "guardian_sms"


def refusal(pupil: Subscriber | None, scope: str, *, guardian_id: int | None = None,
            need_active: bool = False, at: datetime | None = None) -> str | None:
    """None when `scope` is consented for this pupil (and, given one, this guardian) at `at`
    (default now); else why not, in words an operator can act on. `need_active`: a pupil
    the school has deactivated is refused too."""
    if pupil is None:
        return None
    who = f"{pupil.full_name} (pupil {pupil.id})"
    if need_active and not pupil.active:
        return f"pupil {pupil.id} is not active in the registry"
    now = at or utcnow()  # aware: the registry keeps aware UTC times
    for c in pupil.consents:
        if c.scope != scope or c.given_at is None or c.given_at > now:
            continue
        if c.withdrawn_at is not None and c.withdrawn_at <= now:
            continue
        if guardian_id is not None and c.guardian_id not in (None, guardian_id):
            continue
        return None
    whose = " for this guardian" if guardian_id is not None else ""
    return f"no active {scope} consent recorded{whose} for {who}"
