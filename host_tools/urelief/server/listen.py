"""The silent call (protocol 1.1): a dispatcher asks the terminal to call the centre (LISTEN_IN)
and hears the room; the terminal reports the call's state (CALL_STATE) on the incident.

Only after the SOS is acknowledged (the incident is acknowledged or dispatched, so the device has
an ACK of level 2 or more), only with the pupil's `silent_call` consent in force, only on a board
whose modem has a voice path (the `voice` capability of its dialect: the A7670; the SIM7080G and
BG95 have none). Anything else is refused with the reason in words, and the refusal is audited.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from urelief import protocol as p
from urelief.registry.errors import Invalid
from urelief.registry.models import Consent, Device, Incident, IncidentStatus, utcnow

CONSENT = "silent_call"
MAX_S = 600  # default length of a listen-in, s (the terminal hangs up after it)
MAX_S_LIMIT = 3600
_AFTER = (IncidentStatus.ACKNOWLEDGED, IncidentStatus.DISPATCHED)


@lru_cache(maxsize=64)
def board_voice(board: str) -> tuple[bool, str]:
    """(has voice, dialect or why not) for a board name as the registry stores it."""
    import json

    from urelief.boards import provided_caps
    from urelief.paths import BOARDS

    path = BOARDS / f"{board}.json"
    if not board or "/" in board or not path.is_file():
        return False, f"its board {board!r} is not a known board file"
    b = json.loads(path.read_text())
    dialect = b["modem"]["dialect"]
    return "voice" in provided_caps(b), dialect


def refusal(s: Session, inc: Incident) -> str | None:
    """Why a listen-in cannot be asked for this incident now, in words; None if it can."""
    if inc.device_id is None:
        return "this incident has no terminal to call from"
    dev = s.get(Device, inc.device_id)
    voice, dialect = board_voice(dev.board if dev is not None else "")
    if not voice:
        if dialect.startswith("its board"):
            return f"the terminal has no known voice path: {dialect}"
        return (f"the terminal's {dialect.upper()} modem has no voice path "
                f"(board {dev.board}): a silent call is not possible on it")
    if inc.subscriber_id is None or not s.scalar(select(Consent.id).where(
            Consent.subscriber_id == inc.subscriber_id, Consent.scope == CONSENT,
            Consent.withdrawn_at.is_(None), Consent.given_at <= utcnow()).limit(1)):
        return "the pupil's guardian has not consented to a silent call (consent 'silent_call')"
    if inc.status not in _AFTER:
        return (f"a listen-in follows an acknowledged SOS: this incident is {inc.status.value}"
                + (" (acknowledge it first)" if inc.status == IncidentStatus.OPEN else ""))
    return None


def availability(s: Session, inc: Incident) -> dict[str, Any]:
    """What the dashboard shows: may a listen-in be asked, and if not, why."""
    why = refusal(s, inc)
    return {"possible": why is None, "why": why}


def request(inc: Incident, body: dict) -> dict:
    """The LISTEN_IN's fields for an allowed request (refusal() said None)."""
    mode = body.get("mode", "dial")
    if mode not in ("dial", "answer"):
        raise Invalid("bad listen-in", [{"field": "mode", "message": "dial or answer"}])
    max_s = int(body.get("max_s") or MAX_S)
    if not 10 <= max_s <= MAX_S_LIMIT:
        raise Invalid("bad listen-in", [{"field": "max_s", "message": f"10..{MAX_S_LIMIT} s"}])
    return {"mode": mode, "max_s": max_s, "sos_counter": inc.open_counter or 0}


def downlink(payload: dict) -> p.ListenIn:
    mode = p.ListenMode.ANSWER if payload.get("mode") == "answer" else p.ListenMode.DIAL
    return p.ListenIn(sos_counter=payload["sos_counter"], mode=mode, max_s=payload["max_s"])
