"""Deep sleep between uses on the low-power reference build (ESP32-WROVER-E, SIM7080G in PSM,
MAX-M10S on its own UART), the real firmware against the real police server: the terminal
sleeps once its check-in is acked and the listen window is over, the modem left registered in
PSM; a 3 s hold that starts the wake is a 3 s hold -> SOS; a question the dispatcher puts while
it sleeps is felt after the next wake; the last-known fix and its age survive a reset."""

from __future__ import annotations

from urelief.provisioning import identity
from urelief.sim import chipspeed, events
from urelief.sim.chip import DEEPSLEEP_RESET, EXT0_WAKE, TIMER_WAKE, WDT_RESET
from urelief.sim.rig import GATEWAY_NUMBER, SERVER_NAME, pattern_name

BOARD = "devkitc-wrover-sim7080g-ublox"
PSM = {"tau_s": 86400, "active_s": 10}


def sleeper(rig, police, checkin_s=3600, **kw):
    cfg = identity.new_device(server=(SERVER_NAME, 7420), sms_number=GATEWAY_NUMBER, psm=PSM,
                              sleep=True, checkin_s=checkin_s)
    police.provision(cfg, board=BOARD)
    kw.setdefault("heap_kb", 512)  # the WROVER-E's PSRAM heap (megabytes on the chip; capped)
    return rig(board=BOARD, cfg=cfg, **kw).start()


def asleep(r, timeout_ms=180_000):
    assert r.until(lambda: r.dev.state == "sleeping", timeout_ms=timeout_ms), r.dev.output[-3000:]


def checked_in(r):
    """Asleep after the first check-in (a minute after power-on) is acked."""
    dev = r.dev
    assert r.until(lambda: events.first(dev.output, "ack") and dev.state == "sleeping",
                   timeout_ms=240_000), dev.output[-3000:]


def test_a_hold_that_starts_the_wake_from_deep_sleep_is_an_sos(rig, police):
    # At the ESP32's speed the boot from the wake edge takes its real time: the hold counts
    # from the wake edge, not from when the button driver started.
    r = sleeper(rig, police, cpu_scale=chipspeed.factor("esp32"))
    dev = r.dev
    checked_in(r)
    assert events.first(dev.output, "deep_sleep", wake="button")
    assert r.modem.registered  # left in PSM, not switched off
    dev.run_for(30_000)
    assert r.modem.asleep and dev.state == "sleeping"
    boots = dev.boots
    t_hold = r.hold(3100)  # a 3 s hold (+0.1 s: the debounce and a human margin)
    def sos_acked():
        sos = events.first(dev.output, "stored", kind="sos")
        return sos is not None and events.first(dev.output, "ack", counter=sos["counter"])
    assert r.until(sos_acked, timeout_ms=20_000), dev.output[-3000:]
    assert dev.boots == boots + 1 and dev.chip.boot_cause == DEEPSLEEP_RESET
    assert dev.chip.boot_wake == EXT0_WAKE
    boot = events.events(dev.output, "boot")[-1]
    assert boot["reset"] == "deep_sleep_wake"
    assert events.first(dev.output, "gesture", kind="hold")
    (inc,) = [i for i in police.incidents() if i["device_id"] == r.cfg.device_id]
    assert inc["status"] == "open"
    assert r.modem.boots == 1  # woken from PSM, never power-cycled
    dev.run_for(2000)
    assert "SENT" in [pattern_name(d) for _, d in r.patterns()]
    print(f"hold from deep sleep: SOS acked {dev.clock.now_ms() - t_hold:.0f} ms after the hold")
    assert "Traceback" not in dev.output


def test_a_bump_wakes_it_and_it_goes_back_to_sleep_and_the_timer_brings_the_checkin(rig, police):
    r = sleeper(rig, police, checkin_s=600)
    dev = r.dev
    checked_in(r)
    r.child.bump(50, after_ms=100)
    dev.run_for(500)
    assert dev.chip.boot_wake == EXT0_WAKE
    asleep(r, 60_000)
    assert not events.first(dev.output, "gesture")
    n = len(events.events(dev.output, "stored", kind="check_in"))
    dev.run_for(600_000)
    assert dev.chip.boot_wake == TIMER_WAKE
    asleep(r)
    assert len(events.events(dev.output, "stored", kind="check_in")) == n + 1
    assert "Traceback" not in dev.output


def test_a_reset_keeps_the_last_known_fix_with_its_age(rig, police):
    """A watchdog reset keeps RTC memory: the fix comes back with its age counted on the RTC
    clock; a power cut loses RTC memory and the flash copy (written before deep sleep) holds."""
    r = sleeper(rig, police)
    dev = r.dev
    checked_in(r)  # the receiver's fix (1 s TTFF) kept, written to flash before sleeping
    r.gnss.ttff_ms = r.gnss.hot_ttff_ms = float("inf")  # no sky from here on: the kept fix only
    dev.run_for(20_000)
    dev.loop.call(lambda: dev.restart(WDT_RESET))
    assert r.until(lambda: len(events.events(dev.output, "restored")) >= 2, timeout_ms=10_000)
    got = events.events(dev.output, "restored")[-1]
    assert got["from"] == "rtc" and got["fix"] == "1" and got["cell"] == "1"
    assert 20 <= int(got["fix_age_s"]) < 300, got  # asleep 20 s since; the fix is no older
    dev.power_cycle()
    assert r.until(lambda: len(events.events(dev.output, "restored")) >= 3, timeout_ms=10_000)
    got = events.events(dev.output, "restored")[-1]
    assert got["from"] == "flash" and got["fix"] == "1"
    assert "Traceback" not in dev.output


def test_an_idle_terminal_spends_its_day_in_deep_sleep():
    """One device-day on the real firmware (sim soak): the daily check-in acked, awake well
    under 1 % of the day, months on a 1500 mAh cell."""
    from urelief.sim.soak import soak
    rep = soak(BOARD, 1.0)
    assert rep["checkins"]["stored"] >= 1 and rep["checkins"]["acked"] == rep["checkins"]["stored"]
    assert rep["awake_fraction"] < 0.01, rep
    assert rep["standby_days"] >= 180, rep
    assert {"standby_days", "mah_per_day", "awake_fraction", "consumers"} <= rep.keys()
