"""Downlinks are delivered, not hoped for (issue 9; docs/protocol.md §4, delivery): on the real
firmware against the real server, a STAND_DOWN lost twice on the way down still ends the alert
(tracking stops, no more positions), a QUESTION lost once is still felt; the server repeats
each until the device's RECEIPT names it, and shows it pending until then; a pending downlink
survives a server restart."""

from __future__ import annotations

from test_sos_path import _raised, felt, said
from urelief.sim import events
from urelief.sim.rig import PoliceServer, Rig

STAND_DOWN, QUESTION = 0x84, 0x82


def downlinks(police, iid: int) -> list[dict]:
    return police.incident(iid)["downlinks"]


def test_two_lost_stand_downs_and_tracking_still_stops(rig, police):
    r, iid = _raised(rig, police)
    dev = r.dev
    r.modem.faults.lose_downlinks[STAND_DOWN] = 2
    out = police.act(iid, "resolve")
    assert out["downlink"] == "udp"
    (sd,) = [d for d in downlinks(police, iid) if d["type"] == "stand_down"]
    assert sd["state"] == "pending"  # sent once, lost, not confirmed
    assert police.incident(iid)["summary"]["undelivered"] == 1
    assert r.until(lambda: said(dev.output, "stood_down"), timeout_ms=180_000), dev.output[-2000:]
    assert r.modem.faults.lost_downlinks == 2  # the third try got through

    def receipt():
        return events.first(events.since(dev.output, "stood_down"), "stored", kind="receipt")

    assert r.until(receipt, timeout_ms=5000), dev.output[-1500:]
    receipt = receipt()
    assert r.until(lambda: said(dev.output, "ack", counter=receipt["counter"]), timeout_ms=20_000)
    (sd,) = [d for d in downlinks(police, iid) if d["type"] == "stand_down"]
    assert sd["state"] == "delivered" and sd["tries"] >= 3, sd
    assert police.incident(iid)["summary"]["undelivered"] == 0
    # the alert is over on the device: ten device-minutes pass, no position is stored or sent
    n = events.count(dev.output, "stored", kind="position")
    dev.run_for(600_000)
    assert events.count(dev.output, "stored", kind="position") == n, dev.output[-1500:]
    assert "Traceback" not in dev.output


def test_a_question_lost_once_is_still_felt(rig, police):
    r, iid = _raised(rig, police)
    dev = r.dev
    r.modem.faults.lose_downlinks[QUESTION] = 1
    police.act(iid, "question", kind="yes_no", text="Are you hurt?", timeout_s=120)
    assert r.until(lambda: said(dev.output, "question", id=1), timeout_ms=120_000), \
        dev.output[-2500:]
    assert r.modem.faults.lost_downlinks == 1
    dev.run_for(2500)
    assert felt(r)[-1] == "QUESTION"
    assert r.until(lambda: [d["state"] for d in downlinks(police, iid)] == ["delivered"],
                   timeout_ms=20_000), downlinks(police, iid)


def test_a_pending_question_survives_a_server_restart(tmp_path, built_firmware):
    police = PoliceServer(tmp_path / "police").seed().start()
    r = Rig(tmp_path / "dev", police)
    try:
        r.start()
        r.wait_ready()
        r.hold(3500)
        assert r.until(lambda: said(r.dev.output, "ack", level=1), timeout_ms=5000)
        (inc,) = police.incidents()
        dev = r.dev
        r.modem.faults.lose_downlinks[QUESTION] = 1  # its first try is lost
        police.act(inc["id"], "question", kind="yes_no", text="Are you hurt?", timeout_s=300)
        assert [d["state"] for d in downlinks(police, inc["id"])] == ["pending"]
        police.restart()  # before any uplink could carry it again
        assert r.until(lambda: said(dev.output, "question", id=1), timeout_ms=120_000), \
            (dev.output[-2000:], police.log_tail())
        assert r.until(lambda: [d["state"] for d in downlinks(police, inc["id"])] ==
                       ["delivered"], timeout_ms=20_000), downlinks(police, inc["id"])
        assert "downlinks_pending" in police.log_tail(20_000)
    finally:
        r.stop()
        police.stop()
