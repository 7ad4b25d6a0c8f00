"""The silent call (protocol 1.1), end to end: the real firmware on the virtual LilyGO T-A7670
(its A7670 emulator has a voice path, sim/modem/voice.py) and T-SIM7080G-S3 (none), against the
real police server. SOS, acknowledge, listen-in: the terminal dials the centre with its
loudspeaker and ringer at 0 and the microphone on; the incident shows dialling, connected, ended.
Refused with the reason in words: before the acknowledgement, on a board without voice, without
the pupil's silent_call consent. Nothing the terminal does is heard or felt."""

from __future__ import annotations

import itertools

from urelief.provisioning import identity
from urelief.sim import events
from urelief.sim.modem import Centre
from urelief.sim.rig import GATEWAY_NUMBER, SERVER_NAME, pattern_name

A7670, S3 = "lilygo-t-a7670", "lilygo-t-sim7080g-s3"
CENTRE = "+82231502112"
_refs = itertools.count(1)


def pupil(police, consent: bool) -> int:
    """A pupil of the seeded school, with or without the silent_call consent. -> id."""
    from urelief.registry.service import cli_actor

    reg, admin = police._registry, cli_actor()
    school = reg.school_by_code(admin, "D1")
    sub = reg.create_subscriber(admin, {
        "school_id": school["id"], "pupil_ref": f"SC-{next(_refs)}", "full_name": "Park Jisoo",
        "class_name": "3-1", "birth_year": 2017,
        "guardians": [{"name": "Park Minho", "phone": "+821055500002", "relation": "father"}]})
    for scope in ("location", "silent_call") if consent else ("location",):
        reg.record_consent(admin, sub["id"], {"scope": scope, "given_by": "Park Minho"})
    return sub["id"]


def terminal(rig, police, board: str, consent: bool = True):
    """A terminal provisioned with the centre's number for a new pupil, booted, link up."""
    cfg = identity.new_device(server=(SERVER_NAME, 7420), sms_number=GATEWAY_NUMBER,
                              centre=CENTRE)
    identity.register(police._registry, cfg, subscriber_id=pupil(police, consent), board=board)
    r = rig(board=board, cfg=cfg)
    r.start()
    r.wait_ready(timeout_ms=90_000)
    return r


def sos_seen(r, police) -> dict:
    """Hold; the SOS reaches the police; a dispatcher acknowledges; SEEN reaches the child."""
    r.hold(3500)
    out = lambda: r.dev.output  # noqa: E731
    assert r.until(lambda: (s := events.first(out(), "stored", kind="sos")) is not None
                   and events.first(out(), "ack", counter=s["counter"]), timeout_ms=60_000), \
        out()[-2000:]
    (inc,) = [i for i in police.incidents() if i["device_id"] == r.cfg.device_id]
    return inc


def acknowledge(r, police, inc: dict) -> None:
    police.act(inc["id"], "acknowledge")
    assert r.until(lambda: events.first(r.dev.output, "ack", level=2), timeout_ms=30_000), \
        r.dev.output[-2000:]


def refused(police, iid: int) -> str:
    res = police.api.post(f"/api/incidents/{iid}/listen_in", json={})
    assert res.status_code == 409, res.text
    return res.json()["detail"] if isinstance(res.json(), dict) else res.text


def calls(police, iid: int) -> list[tuple[str, str]]:
    return [(e["payload"]["state"], e["payload"]["reason"])
            for e in police.incident(iid)["events"] if e["kind"] == "call"]


def audited_refusals(police, iid: int) -> list[dict]:
    page = police.api.get("/api/audit", params={"action": "incident.listen_in",
                                                "object_id": str(iid)}).raise_for_status().json()
    return [a for a in page["items"] if a["outcome"] == "refused"]


def test_a7670_listen_in_calls_the_centre_silently_and_the_incident_shows_the_call(rig, police):
    r = terminal(rig, police, A7670)
    centre = r.modem.add_centre(Centre(CENTRE, answer_after_ms=3000, hang_up_after_ms=15_000))
    inc = sos_seen(r, police)
    iid = inc["id"]
    assert "acknowledge it first" in refused(police, iid)  # the SOS is not acknowledged yet
    assert police.incident(iid)["listen_in"]["possible"] is False
    acknowledge(r, police, inc)
    assert police.incident(iid)["listen_in"] == {"possible": True, "why": None}

    out = police.act(iid, "listen_in")
    assert out["downlink"] in ("udp", "sms")
    dev = r.dev
    assert r.until(lambda: events.first(dev.output, "call", state="ended"), timeout_ms=90_000), \
        dev.output[-3000:]
    # The emulator saw the call placed to the centre, the loudspeaker and ringer at 0 and the
    # microphone on from the moment it connected, and nothing a bystander could have heard.
    (call,) = centre.calls
    assert call.direction == "mo" and call.connected_ms is not None
    assert (call.speaker_level, call.ringer_level, call.mic_muted) == (0, 0, False)
    assert call.ended_by == "centre" and r.modem.audible == []
    dial = next(t for t, d, s in r.modem.log if d == "rx" and s.startswith(f"ATD{CENTRE};"))
    assert dial is not None
    # The incident shows the call's states, in order, once the device's uplinks are in.
    want = [("dialling", "none"), ("connected", "none"), ("ended", "centre_hung_up")]
    assert r.until(lambda: calls(police, iid) == want, timeout_ms=30_000), calls(police, iid)
    d = police.incident(iid)
    assert d["summary"]["call"]["state"] == "ended"
    assert [e["payload"]["type"] for e in d["events"] if e["kind"] == "downlink"
            ].count("listen_in") == 1
    # Nothing felt for the call: the child felt SENT and SEEN only.
    dev.run_for(2000)
    assert [pattern_name(p) for _, p in r.patterns()] == ["SENT", "SEEN"]
    assert "Traceback" not in dev.output


def test_s3_has_no_voice_path_the_request_is_refused_and_says_why(rig, police):
    r = terminal(rig, police, S3)
    inc = sos_seen(r, police)
    acknowledge(r, police, inc)
    why = refused(police, inc["id"])
    assert "SIM7080 modem has no voice path" in why, why
    d = police.incident(inc["id"])
    assert d["listen_in"]["possible"] is False and "no voice path" in d["listen_in"]["why"]
    assert not [e for e in d["events"] if e["kind"] == "downlink"
                and e["payload"]["type"] == "listen_in"]  # nothing went to the terminal
    assert audited_refusals(police, inc["id"])
    assert not events.first(r.dev.output, "call")


def test_without_the_silent_call_consent_the_request_is_refused(rig, police):
    r = terminal(rig, police, A7670, consent=False)
    centre = r.modem.add_centre(Centre(CENTRE))
    inc = sos_seen(r, police)
    acknowledge(r, police, inc)
    why = refused(police, inc["id"])
    assert "not consented to a silent call" in why, why
    assert police.incident(inc["id"])["listen_in"]["possible"] is False
    assert audited_refusals(police, inc["id"])
    r.dev.run_for(5000)
    assert centre.calls == [] and not events.first(r.dev.output, "call")
    # A call with no listen-in asked for, even the centre's, is hung up unanswered and unheard.
    ring = r.modem.incoming(CENTRE)
    assert r.until(lambda: ring.ended_ms is not None, timeout_ms=10_000)
    assert ring.ended_by == "terminal" and ring.connected_ms is None and r.modem.audible == []


def test_a7670_answers_only_the_centre_s_call_without_a_ring_and_hangs_up_on_stand_down(
        rig, police):
    """Mode answer: the terminal waits for the centre's call; another caller is hung up
    unanswered, the centre's call is answered (ATA) with the ringer at 0; a stand-down of the
    alert hangs the call up (ended, stood down)."""
    r = terminal(rig, police, A7670)
    r.modem.add_centre(Centre(CENTRE, hang_up_after_ms=None))  # the centre never hangs up
    inc = sos_seen(r, police)
    acknowledge(r, police, inc)
    police.act(inc["id"], "listen_in", mode="answer", max_s=300)
    dev = r.dev
    assert r.until(lambda: events.first(dev.output, "call", state="dialling"), timeout_ms=30_000)
    stranger = r.modem.incoming("+821099998888")
    assert r.until(lambda: stranger.ended_ms is not None, timeout_ms=10_000)
    assert stranger.ended_by == "terminal" and stranger.connected_ms is None  # never answered
    call = r.modem.incoming(CENTRE)
    assert r.until(lambda: events.first(dev.output, "call", state="connected"), timeout_ms=20_000)
    assert call.direction == "mt" and call.connected_ms is not None
    assert (call.speaker_level, call.ringer_level, call.mic_muted) == (0, 0, False)
    assert r.modem.audible == []  # neither ring was heard
    police.act(inc["id"], "resolve")
    assert r.until(lambda: events.first(dev.output, "call", state="ended"), timeout_ms=30_000), \
        dev.output[-2000:]
    assert call.ended_by == "terminal"
    want = [("dialling", "none"), ("connected", "none"), ("ended", "stood_down")]
    assert r.until(lambda: calls(police, inc["id"]) == want, timeout_ms=30_000), \
        calls(police, inc["id"])
    dev.run_for(2000)
    assert [pattern_name(p) for _, p in r.patterns()] == ["SENT", "SEEN"]  # nothing else felt


def test_a7670_busy_centre_is_a_failed_call_and_the_time_limit_hangs_up(rig, police):
    r = terminal(rig, police, A7670)
    centre = r.modem.add_centre(Centre(CENTRE, behaviour="busy"))
    inc = sos_seen(r, police)
    acknowledge(r, police, inc)
    police.act(inc["id"], "listen_in")
    assert r.until(lambda: calls(police, inc["id"])[-1:] == [("failed", "busy")],
                   timeout_ms=60_000), calls(police, inc["id"])
    centre.behaviour, centre.hang_up_after_ms = "answer", None
    police.act(inc["id"], "listen_in", max_s=30)
    dev = r.dev
    assert r.until(lambda: events.first(dev.output, "call", state="ended"), timeout_ms=90_000), \
        dev.output[-2000:]
    last = centre.calls[-1]
    assert last.ended_by == "terminal" and 29_000 <= last.ended_ms - last.connected_ms <= 33_000
    assert r.until(lambda: calls(police, inc["id"])[-1:] == [("ended", "time_limit")],
                   timeout_ms=30_000), calls(police, inc["id"])
