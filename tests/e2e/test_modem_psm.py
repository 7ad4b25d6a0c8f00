"""Modem PSM between uses on the SIM7080G and the BG95: configured from /device.json (+CPSMS TAU
and active time), the module sleeps registered once idle, and a hold wakes it for the SOS: link
kept, SOS delivered, SENT felt (the SIM7080 says when it sleeps, +CPSMSTATUS; the BG95 is found
asleep by an AT probe). The emulator's PSM: radio off, deaf UART, downlinks unreachable, woken by
PWRKEY or its TAU timer (urelief.sim.modem.emulator)."""

from __future__ import annotations

import pytest
from modem_boards import board_for
from urelief.provisioning import identity
from urelief.sim import events
from urelief.sim.rig import GATEWAY_NUMBER, SERVER_NAME, pattern_name

SEND = {"sim7080": "AT+CASEND", "bg95": "AT+QISEND"}


@pytest.mark.parametrize("dialect", ["sim7080", "bg95"])
def test_a_hold_wakes_the_modem_from_psm_and_the_sos_goes_over_data(rig, police, tmp_path,
                                                                    dialect):
    board = board_for(dialect, tmp_path)
    cfg = identity.new_device(server=(SERVER_NAME, 7420), sms_number=GATEWAY_NUMBER,
                              psm={"tau_s": 3600, "active_s": 10})
    police.provision(cfg, board=f"sim-{dialect}")
    r = rig(board=board, cfg=cfg).start()
    r.wait_ready()
    dev = r.dev
    # The SIM7080 says it sleeps (+CPSMSTATUS: ENTER PSM, logged once the firmware has read it:
    # the emulator is asleep the moment it sends the URC); the BG95 says nothing.
    said = dialect == "sim7080"
    assert r.until(lambda: r.modem.asleep and ("ENTER PSM" in dev.output) == said,
                   timeout_ms=120_000), dev.output[-2000:]
    assert r.modem.registered
    assert r.modem.psm_timers_ms() == (3600_000.0, 10_000.0)
    t_hold = r.hold(3500)
    assert r.until(lambda: events.first(dev.output, "ack", level=1), timeout_ms=20_000), \
        dev.output[-2500:]
    sos = events.first(dev.output, "stored", kind="sos")
    assert events.first(dev.output, "sent", counter=sos["counter"], channel="udp")
    woke = next(t for t, d, s in r.modem.log if d == "tx" and t >= t_hold)  # its first word
    sent = next(t for t, d, s in r.modem.log if d == "rx" and s.startswith(SEND[dialect]) and
                t >= t_hold)
    print(f"PSM wake: {woke - t_hold:.0f} ms, SOS handed to the radio {sent - t_hold:.0f} ms "
          "after the hold completed")
    assert woke - t_hold <= r.modem.t.psm_wake_ms + 800  # the press goes at once (BG95: a probe)
    (inc,) = [i for i in police.incidents() if i["device_id"] == cfg.device_id]
    assert inc["status"] == "open"
    dev.run_for(2000)
    assert [pattern_name(d) for _, d in r.patterns()] == ["SENT"]
    assert r.modem.boots == 1  # woken, never power-cycled
    assert "Traceback" not in dev.output
