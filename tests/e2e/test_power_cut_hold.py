"""A power cut in the middle of the hold loses no SOS (issue 9): on the real firmware against the
real police server. The child keeps holding while the power is off and back; the press the new
boot finds down counts as a hold that began at power-on, and the SOS reaches the police."""

from __future__ import annotations

from urelief.sim import events


def test_power_cut_mid_hold_button_still_held_at_power_on_sos_reaches_police(rig, police):
    r = rig()
    r.start()
    dev = r.dev
    r.wait_ready()
    r.child.press(9000, after_ms=100)  # one long press, held through the cut
    dev.run_for(1600)  # 1.5 s into the hold: no SOS yet
    assert not events.first(dev.output, "stored", kind="sos")
    dev.power_cycle(off_ms=300)
    dev.run_for(500)
    assert dev.boots == 2
    assert r.until(lambda: [i for i in police.incidents() if i["device_id"] == r.cfg.device_id],
                   timeout_ms=60_000), dev.output[-2500:]
    boot = events.since(dev.output, "boot")
    assert events.first(boot, "gesture", kind="hold") and events.first(boot, "stored", kind="sos")
    assert len(events.events(dev.output, "stored", kind="sos")) == 1


def test_a_board_whose_safe_mode_pin_is_the_sos_button_still_raises_the_held_sos(rig, police,
                                                                                tmp_path):
    """A board file naming the SOS button also as pins.safe_mode (urelief boards check refuses
    it; this one reached the flash anyway): the firmware drops safe_mode, so a child holding SOS
    at power-on gets an SOS, not a board in safe mode."""
    import json

    from urelief.paths import BOARDS
    b = json.loads((BOARDS / "sim.json").read_text())
    b["name"] = "sim-safe-mode-on-button"
    b["pins"]["safe_mode"] = dict(b["pins"]["button"])
    path = tmp_path / "sim-safe-mode-on-button.json"
    path.write_text(json.dumps(b))
    r = rig(board=str(path))
    r.child.press(6000, after_ms=0)  # held from before power-on
    r.start()
    dev = r.dev
    assert r.until(lambda: [i for i in police.incidents() if i["device_id"] == r.cfg.device_id],
                   timeout_ms=60_000), dev.output[-2500:]
    assert not events.first(dev.output, "safe_mode")
    assert events.first(dev.output, "config_error", file="board", field="pins.safe_mode")
