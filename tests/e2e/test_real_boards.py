"""End to end on the real boards' virtual twins, against the real police server.

LilyGO T-SIM7080G-S3: the AXP2101 PMU feeds the SIM7080G (DC3 supply, BLDO1 level shifter,
BLDO2 GNSS antenna; sim/models/pmu_supply.py) and the module's own GNSS is the only position
source, sharing one RF path with LTE. The SOS goes at once with the best position known; a
GNSS window follows it and the fresh fix goes as a POSITION. LilyGO T-A7670: the modem's GNSS
runs beside LTE."""

from __future__ import annotations

import pytest
from urelief.paths import BOARDS
from urelief.sim import events
from urelief.sim.rig import SEOUL

S3 = "lilygo-t-sim7080g-s3"


def sos_no(out: str) -> str | None:
    """The counter of the first SOS (a heartbeat CHECK_IN may have taken #1)."""
    e = events.first(out, "stored", kind="sos")
    return e["counter"] if e else None


def acked(out: str, n: str | None) -> bool:
    return n is not None and events.first(out, "ack", counter=n) is not None


def sos_acked(out: str) -> bool:
    return acked(out, sos_no(out))

def pos_no(out: str, reason: int = 2) -> str | None:
    """The counter of the first POSITION stored for `reason` (2 fresh fix, 1 scheduled)."""
    e = events.first(out, "stored", kind="position", reason=reason)
    return e["counter"] if e else None


def pos_acked(out: str, reason: int = 2) -> bool:
    return acked(out, pos_no(out, reason))


def incident(police, r) -> dict:
    (inc,) = [i for i in police.incidents() if i["device_id"] == r.cfg.device_id]
    return inc


def positions(police, iid: int) -> list[dict]:
    return [e["payload"] for e in police.incident(iid)["events"] if e["kind"] == "position"]


def rx_after(r, text: str, t0: float) -> float | None:
    """Device ms the firmware sent the first command starting with `text` after t0."""
    return next((t for t, d, s in r.modem.log if d == "rx" and t >= t0 and s.startswith(text)), None)


def assert_rf_never_shared(r) -> int:
    """No uplink (UDP or SMS) handed to the SIM7080 while its GNSS held the RF. -> windows."""
    on, windows = False, 0
    for _, d, s in r.modem.log:
        if d != "rx":
            continue
        if s.startswith("AT+CGNSPWR="):
            on = s.strip().endswith("1")
            windows += on
        assert not (on and s.startswith(("AT+CASEND", "AT+CMGS", "AT+CAOPEN"))), s
    return windows


def test_s3_sos_goes_at_once_with_the_last_known_fix_then_a_fresh_fix(rig, police):
    r = rig(board=S3).start()
    dev = r.dev
    # the PMU rails come up before the first AT command; a boot-time window gets a first fix
    assert r.until(lambda: events.first(dev.output, "gnss_window_closed"), timeout_ms=90_000), \
        dev.output[-1500:]
    assert events.first(dev.output, "gnss_window_closed", why="fix"), dev.output[-1500:]
    assert events.first(dev.output, "pmu_rails", use="modem", on=1) and r.supply.powered \
        and r.supply.shifter
    assert not r.supply.antenna  # the antenna rail is on only in windows
    dev.run_for(60_000)  # the fix ages: last known, not trusted
    t_press = r.hold(3500) - 3000
    assert r.until(lambda: sos_acked(dev.output), timeout_ms=10_000), dev.output[-1500:]
    sos_at = rx_after(r, "AT+CASEND", t_press)
    sos = events.first(dev.output, "stored", kind="sos", fix=1)
    assert sos and 60 <= sos.int("fix_age_s") <= 69, dev.output[-1500:]
    inc = incident(police, r)
    first = positions(police, inc["id"])[0]
    assert first["fix_age_s"] >= 60 and not first["trusted"]
    assert abs(first["lat"] - SEOUL[0]) < 1e-5 and first["cell"]["mcc"] == "450"
    # then the window (the SOS is acked), the fresh fix, LTE back, the POSITION
    def fresh_after_ack():
        ack = events.first(dev.output, "ack", level=1)
        return ack and next((e for e in events.events(dev.output, "stored", kind="position", reason=2)
                             if e.index > ack.index), None)

    assert r.until(lambda: (p := fresh_after_ack())
                   and events.count(dev.output, "gnss_window_closed") >= 2
                   and events.first(dev.output, "sent", counter=p["counter"], channel="udp"),
                   timeout_ms=60_000), dev.output[-2000:]
    n = fresh_after_ack()["counter"]
    assert r.until(lambda: acked(dev.output, n), timeout_ms=5000), dev.output[-1500:]
    fresh = positions(police, inc["id"])[-1]
    assert fresh["trusted"] and fresh["fix_age_s"] <= 2 and fresh["time_source"] == "gnss"
    assert incident(police, r)["last_accuracy_m"] <= 10
    pos_at = rx_after(r, "AT+CASEND", rx_after(r, "AT+CGNSPWR=0", sos_at))
    assert assert_rf_never_shared(r) == 2
    up = r.modem.t.uplink_ms
    print(f"T-SIM7080G-S3: press -> SOS at server {sos_at + up - t_press:.0f} ms, "
          f"press -> fresh-fix POSITION at server {pos_at + up - t_press:.0f} ms (device time)")
    assert "Traceback" not in dev.output


def test_s3_a_hold_during_a_fix_window_closes_it_and_the_sos_goes_at_once(rig, police):
    r = rig(board=S3).start()
    dev = r.dev
    assert r.until(lambda: events.first(dev.output, "gnss_window_open", **{"for": "refresh"}),
                   timeout_ms=60_000), dev.output
    t_press = r.hold(3500, after_ms=2000) - 3000  # no fix yet: cold start takes 30 s
    assert r.until(lambda: sos_acked(dev.output), timeout_ms=10_000), dev.output[-1500:]
    assert events.first(dev.output, "gnss_window_closed", why="sos_waiting")
    assert events.first(dev.output, "stored", kind="sos", fix=0)
    sos_at = rx_after(r, "AT+CASEND", t_press)
    inc = incident(police, r)
    # no position invented (the server keeps the cell only beside a position: none shown yet)
    assert inc["last_lat"] is None and positions(police, inc["id"]) == []
    # a cold start in the alert's window; the fix follows as a POSITION
    assert r.until(lambda: pos_acked(dev.output), timeout_ms=60_000), dev.output[-1500:]
    fresh = positions(police, inc["id"])[-1]
    assert fresh["trusted"] and abs(fresh["lat"] - SEOUL[0]) < 1e-5
    pos_at = rx_after(r, "AT+CASEND", rx_after(r, "AT+CGNSPWR=0", sos_at))
    assert_rf_never_shared(r)
    up = r.modem.t.uplink_ms
    print(f"T-SIM7080G-S3 cold: press -> SOS at server {sos_at + up - t_press:.0f} ms, "
          f"press -> fresh-fix POSITION at server {pos_at + up - t_press:.0f} ms (device time)")


@pytest.mark.parametrize("fault,expect", [
    ("rails", "urelief: fault what=pmu_no_modem_rail -- the modem stays unpowered"),
    ("no pmu", "urelief: fault what=pmu_rails use=modem -- OSError(19"),
])
def test_s3_the_modem_stays_silent_without_its_rails_and_says_why(rig, police, fault, expect):
    if fault == "rails":  # a board file without the modem's rails (the validator's fixture)
        r = rig(board=BOARDS / "fixtures" / "s3-pmu-modem-rail-missing.json")
    else:  # nothing answers on the PMU's I2C
        r = rig(board=S3, pmu_fitted=False)
    r.start()
    dev = r.dev
    assert r.until(lambda: events.first(dev.output, "fault", what="modem"), timeout_ms=60_000), \
        dev.output
    assert expect in dev.output, dev.output
    assert events.first(dev.output, "fault", what="modem").note.startswith(
        "ModemError('modem does not answer'")
    assert not r.supply.powered and r.modem.boots == 0 and r.modem.log == []
    assert "Traceback" not in dev.output


def test_a7670_modem_gnss_gives_the_fix_with_lte_up(rig, police):
    r = rig(board="lilygo-t-a7670").start()
    dev = r.dev
    r.wait_ready()
    t_press = r.hold(3500) - 3000  # before any fix: the boot window is still searching
    assert r.until(lambda: sos_acked(dev.output), timeout_ms=10_000), dev.output[-1500:]
    assert events.first(dev.output, "stored", kind="sos", fix=0)
    assert events.first(dev.output, "gnss_modem", beside_lte=1)
    assert r.until(lambda: pos_acked(dev.output), timeout_ms=60_000), dev.output[-1500:]
    inc = incident(police, r)
    fresh = positions(police, inc["id"])[-1]
    assert fresh["trusted"] and abs(fresh["lat"] - SEOUL[0]) < 1e-5
    # the SOS and the POSITION left over LTE while the GNSS ran: no AT+CGPS=0 before them
    sos_at = rx_after(r, "AT+CIPSEND", t_press)
    pos_at = rx_after(r, "AT+CIPSEND", sos_at + 1)
    off = rx_after(r, "AT+CGPS=0", 0)
    assert rx_after(r, "AT+CGPS=1", 0) < sos_at < pos_at and (off is None or off > pos_at)
    up = r.modem.t.uplink_ms
    print(f"T-A7670: press -> SOS at server {sos_at + up - t_press:.0f} ms, "
          f"press -> fresh-fix POSITION at server {pos_at + up - t_press:.0f} ms (device time)")
    assert "Traceback" not in dev.output


def test_s3_without_data_the_sos_and_the_fresh_fix_go_by_sms(rig, police):
    r = rig(board=S3)
    r.modem.faults.errors["AT+CNACT="] = ["ERROR"] * 100  # the network refuses a data context
    r.start()
    dev = r.dev
    dev.wait_line(events.line("link", state="down"), timeout_ms=60_000)
    r.hold(3500)
    assert r.until(lambda: sos_acked(dev.output), timeout_ms=15_000), dev.output[-1500:]
    assert events.first(dev.output, "sent", counter=sos_no(dev.output), channel="sms")
    assert r.until(lambda: pos_acked(dev.output), timeout_ms=90_000), dev.output[-2000:]
    assert events.first(dev.output, "sent", counter=pos_no(dev.output), channel="sms")
    assert not events.first(dev.output, "sent", channel="udp")
    fresh = positions(police, incident(police, r)["id"])[-1]
    assert fresh["trusted"] and abs(fresh["lat"] - SEOUL[0]) < 1e-5
    assert_rf_never_shared(r)
    assert not events.first(dev.output, "send_failed")  # nothing tried while the GNSS held the RF


def test_s3_with_no_network_the_fix_is_taken_while_the_sos_waits_for_one(rig, police):
    r = rig(board=S3)
    r.modem.faults.coverage = False  # open sky, no cell
    r.start()
    dev = r.dev
    dev.wait_line(events.line("modem_ready"), timeout_ms=60_000)
    r.hold(3500)
    assert r.until(lambda: events.first(dev.output, "gnss_window_closed"), timeout_ms=150_000), \
        dev.output[-1500:]
    fresh = events.first(dev.output, "stored", kind="position", reason=2, fix=1)
    assert fresh, dev.output[-1500:]
    assert not events.first(dev.output, "sent")  # nowhere to send: all in the outbox
    dev.clock.post(lambda: r.modem.set_coverage(True))
    assert r.until(lambda: sos_acked(dev.output) and acked(dev.output, fresh["counter"]),
                   timeout_ms=30_000), dev.output[-1500:]
    pos = positions(police, incident(police, r)["id"])
    assert pos and all(p["lat"] is not None for p in pos) and pos[-1]["trusted"]
    assert_rf_never_shared(r)


def test_s3_a_network_found_during_a_gnss_window_is_used_right_after_it(rig, police):
    """Coverage comes back while an idle-time GNSS window has the RF (no alert to cut it
    short): no data context is tried then (the SIM7080 refuses one, and the link would stay
    down for its 30 s retry); the link opens as soon as the window closes."""
    r = rig(board=S3)
    r.modem.faults.coverage = False
    r.start()
    dev = r.dev
    # with no network the first window opens once LTE has had its minute to settle
    assert r.until(lambda: events.first(dev.output, "gnss_window_open"), timeout_ms=150_000), \
        dev.output[-1500:]
    dev.clock.post(lambda: r.modem.set_coverage(True))
    assert r.until(lambda: events.first(dev.output, "gnss_window_closed"), timeout_ms=150_000), \
        dev.output[-1500:]
    assert r.until(lambda: events.first(dev.output, "link", state="up"), timeout_ms=10_000), \
        dev.output[-1500:]
    assert not events.first(dev.output, "fault", what="data_link"), dev.output[-1500:]
    assert_rf_never_shared(r)


def test_s3_a_gnss_that_fails_holds_nothing_back(rig, police):
    r = rig(board=S3)
    r.modem.faults.errors["AT+CGNSPWR=1"] = ["+CME ERROR: 3"] * 100  # the GNSS refuses to start
    r.start()
    dev = r.dev
    r.wait_ready()
    assert r.until(lambda: events.first(dev.output, "fault", what="gnss_window"), timeout_ms=10_000), \
        dev.output[-1500:]
    r.hold(3500)
    assert r.until(lambda: sos_acked(dev.output), timeout_ms=10_000), dev.output[-1500:]
    dev.run_for(70_000)  # the alert's windows fail too; the tracking POSITION still goes
    assert pos_acked(dev.output, reason=1)
    assert events.count(dev.output, "fault", what="gnss_window") == 3  # boot, alert, after the 60 s gap
    assert incident(police, r)["last_lat"] is None and "Traceback" not in dev.output
