"""A bad value in /device.json never leaves the terminal dead (issue 9): on the real firmware
against the real police server, a bad gesture is reported at boot and the default one is used:
a 3 s hold still raises an SOS the police receive."""

from __future__ import annotations

import json

from urelief.sim import events


def test_bad_gesture_boots_reports_and_the_default_hold_still_sends(rig, police):
    r = rig()
    f = r.workdir / "fw" / "device.json"
    cfg = json.loads(f.read_text())
    cfg["gesture"] = {"hold_ms": "three seconds", "presses": 1}
    f.write_text(json.dumps(cfg))
    r.start()
    dev = r.dev
    r.wait_ready()
    boot = events.since(dev.output, "boot")
    assert events.first(boot, "config_error", file="device", field="gesture", action="default")
    assert not events.first(boot, "cannot_send") and "Traceback" not in dev.output
    r.hold(3500)
    assert r.until(lambda: [i for i in police.incidents() if i["device_id"] == r.cfg.device_id],
                   timeout_ms=30_000), dev.output[-2000:]
    assert events.first(dev.output, "gesture", kind="hold")
