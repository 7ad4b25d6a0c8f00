"""SENT means the police have this alert (issue 9): on the real firmware against the real server.

The child feels SENT only after an ACK that names the alert's own SOS; an ACK of a later
position is not enough (the server acks every packet it receives, incident or not). A terminal
that cannot send plays its own covert "cannot send" pattern, never SENT."""

from __future__ import annotations

from urelief.sim import events
from urelief.sim.rig import pattern_name


def felt(r) -> list[str]:
    return [pattern_name(d) for _, d in r.patterns()]


def sent_felt_only_after_the_sos_ack(out: str) -> bool:
    """Every SENT felt for the alert comes after an ACK of one of its SOS counters."""
    sos = {e["counter"] for e in events.events(out, "stored", kind="sos")}
    acks = [e.index for e in events.events(out, "ack") if e["counter"] in sos]
    return all(acks and acks[0] < f.index for f in events.events(out, "felt", pattern="sent"))


def test_sos_lost_a_later_position_acked_no_sent_until_the_server_has_the_sos(rig, police):
    r = rig()
    r.modem.faults.errors["AT+CNACT="] = ["ERROR"] * 1000  # no data: everything goes by SMS
    r.start()
    dev = r.dev
    dev.wait_line(events.line("link", state="down"), timeout_ms=60_000)
    r.net.faults.drop = 1  # the SOS's SMS vanishes in the network
    r.hold(3500)
    assert r.until(lambda: events.first(dev.output, "sent", channel="sms"), timeout_ms=20_000)
    sos = events.first(dev.output, "stored", kind="sos")["counter"]

    def position_acked():
        pos = events.first(dev.output, "stored", kind="position")
        return pos and events.first(dev.output, "ack", counter=pos["counter"])

    # the follow-up position (a minute on) reaches the server and is acked: still no SENT
    assert r.until(position_acked, timeout_ms=120_000), dev.output[-2000:]
    assert not events.first(dev.output, "ack", counter=sos)
    assert not [i for i in police.incidents() if i["device_id"] == r.cfg.device_id]
    dev.run_for(1500)
    assert "SENT" not in felt(r), dev.output[-2000:]
    # the SOS's next SMS copy gets through: the incident opens, its ack is felt as SENT
    assert r.until(lambda: events.first(dev.output, "ack", counter=sos), timeout_ms=200_000), \
        dev.output[-2000:]
    dev.run_for(1500)
    assert [i for i in police.incidents() if i["device_id"] == r.cfg.device_id]
    assert felt(r) == ["SENT"]
    assert sent_felt_only_after_the_sos_ack(dev.output), dev.output[-3000:]
