"""The modem resets itself in the middle of an alert (a brown-out on the supply, the module's own
watchdog): on every dialect the firmware re-initialises it, the data link comes back, the SOS
reaches the police and the child feels SENT. Also a reset that announces nothing (a module on
autobaud prints no "RDY": SIMCom AT manuals, AT+IPR): the failing data link gives it away."""

from __future__ import annotations

import pytest
from modem_boards import board_for
from urelief.sim import events
from urelief.sim.rig import pattern_name


def sos_acked(out: str) -> bool:
    sos = events.first(out, "stored", kind="sos")
    return sos is not None and events.first(out, "ack", counter=sos["counter"]) is not None


def link_up_after(out: str, text: str) -> bool:
    """The data link came up after the last console line holding `text`."""
    i = out.rfind(text)
    return i >= 0 and events.first(out[i:], "link", state="up") is not None


def after_sos(out: str) -> str:
    sos = events.first(out, "stored", kind="sos")
    return "" if sos is None else out[sos.index:]


def incidents(police, r) -> list[dict]:
    return [i for i in police.incidents() if i["device_id"] == r.cfg.device_id]


def _mid_alert(r, fault) -> int:
    """Hold; the moment the SOS is on flash the modem resets (fault(modem)). -> boots before."""
    r.wait_ready()
    boots = r.modem.boots
    r.modem.faults.errors["AT+CASEND="] = ["ERROR"]  # SIM7080: the first send dies with it
    r.hold(3500)
    assert r.until(lambda: events.first(r.dev.output, "stored", kind="sos"), timeout_ms=6000), \
        r.dev.output[-1500:]
    r.dev.clock.post(lambda: fault(r.modem))
    return boots


@pytest.mark.parametrize("dialect", ["sim7080", "a7670", "bg95"])
def test_modem_reset_mid_alert_link_back_sos_delivered_sent_felt(rig, police, tmp_path, dialect):
    r = rig(board=board_for(dialect, tmp_path)).start()
    boots = _mid_alert(r, lambda m: m.reboot())
    dev = r.dev
    assert r.until(lambda: sos_acked(dev.output), timeout_ms=120_000), dev.output[-3000:]
    assert r.modem.boots == boots + 1  # the reset itself; no power cycle was needed
    assert "modem rebooted" in dev.output
    assert r.until(lambda: link_up_after(dev.output, "modem rebooted"), timeout_ms=60_000), \
        dev.output[-3000:]
    (inc,) = incidents(police, r)
    assert inc["status"] == "open"
    dev.run_for(2000)
    assert [pattern_name(d) for _, d in r.patterns()] == ["SENT"]
    assert "Traceback" not in dev.output


@pytest.mark.parametrize("dialect", ["sim7080", "a7670", "bg95"])
def test_a_silent_reset_mid_alert_is_found_and_the_sim_store_emptied(rig, police, tmp_path,
                                                                     dialect):
    r = rig(board=board_for(dialect, tmp_path)).start()
    _mid_alert(r, lambda m: m.reboot(announce=False))
    dev = r.dev
    assert r.until(lambda: sos_acked(dev.output), timeout_ms=120_000), dev.output[-3000:]
    assert "modem rebooted (echo back on" in dev.output, dev.output[-3000:]
    assert r.until(lambda: link_up_after(dev.output, "modem rebooted"), timeout_ms=60_000), \
        dev.output[-3000:]
    (inc,) = incidents(police, r)
    dev.run_for(2000)
    assert [pattern_name(d) for _, d in r.patterns()] == ["SENT"]
    assert r.until(lambda: r.modem.storage == {}, timeout_ms=10_000)  # no SMS left on the SIM
    assert "Traceback" not in dev.output


@pytest.mark.parametrize("dialect", ["sim7080", "a7670", "bg95"])
def test_a_modem_that_stops_answering_mid_alert_is_power_cycled(rig, police, tmp_path, dialect):
    r = rig(board=board_for(dialect, tmp_path)).start()
    boots = _mid_alert(r, lambda m: setattr(m.faults, "no_answer", True))
    dev = r.dev
    assert r.until(lambda: sos_acked(dev.output), timeout_ms=180_000), dev.output[-3000:]
    assert r.modem.boots > boots and "at: power cycle" in after_sos(dev.output)
    assert r.until(lambda: link_up_after(dev.output, "at: power cycle"), timeout_ms=90_000), \
        dev.output[-3000:]
    (inc,) = incidents(police, r)
    dev.run_for(2000)
    assert [pattern_name(d) for _, d in r.patterns()] == ["SENT"]


def test_a_data_link_that_keeps_failing_gets_the_modem_reinitialised(rig, police, tmp_path):
    """The network drops the SIM7080's data context and the "+APP PDP: 0,DEACTIVE" URC is lost:
    the firmware still believes in the context and every +CAOPEN answers result 1. After two
    failed opens the modem is re-initialised (its context state forgotten) and the link returns;
    the SOS went by SMS meanwhile."""
    r = rig(board=board_for("sim7080", tmp_path)).start()

    def drop_context(m):
        m.pdp = False  # no URC: the module's context is gone, the firmware does not know
        m.sock_open = False

    _mid_alert(r, drop_context)
    dev = r.dev
    assert r.until(lambda: sos_acked(dev.output), timeout_ms=60_000), dev.output[-3000:]
    assert r.until(lambda: "data link failed 2 times: re-init" in dev.output, timeout_ms=120_000)
    assert r.until(lambda: link_up_after(dev.output, "re-init"), timeout_ms=60_000), \
        dev.output[-3000:]
    dev.run_for(2000)
    assert [pattern_name(d) for _, d in r.patterns()] == ["SENT"]
