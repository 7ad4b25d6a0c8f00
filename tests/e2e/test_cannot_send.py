"""A terminal that cannot send never plays SENT (issue 9): on the real firmware, virtual board.

Unprovisioned or corrupt /device.json, an unreadable /ctr, no modem: the boot says
`cannot_send`, and a hold is felt as the covert CANNOT_SEND pattern — never as SENT, which would
tell the child help is coming when nothing left the device."""

from __future__ import annotations

import json

import pytest
from urelief.paths import BOARDS
from urelief.sim import events
from urelief.sim.rig import pattern_name


def hold_is_felt_as_cannot_send(r, reason: str) -> None:
    dev = r.dev
    dev.wait_line(events.line("cannot_send", reason=reason), timeout_ms=20_000)
    dev.run_for(1500)  # past the button's hold-off after power-on
    r.hold(3500)
    assert r.until(lambda: events.first(dev.output, "felt"), timeout_ms=10_000), dev.output[-1500:]
    dev.run_for(3000)
    assert [pattern_name(d) for _, d in r.patterns()] == ["CANNOT_SEND"], dev.output[-1500:]
    assert [e["pattern"] for e in r.console("felt")] == ["cannot_send"]
    assert not r.console("stored")


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_corrupt_or_missing_device_json_cannot_send_is_felt(rig, damage):
    r = rig()
    f = r.workdir / "fw" / "device.json"
    if damage == "truncated":
        f.write_bytes(f.read_bytes()[:40])  # a copy cut short: unreadable JSON
    else:
        f.unlink()
    r.start()
    hold_is_felt_as_cannot_send(r, "not_provisioned")


def test_counter_file_missing_cannot_send_is_felt(rig):
    r = rig()
    (r.workdir / "fw" / "ctr").unlink()
    r.start()
    hold_is_felt_as_cannot_send(r, "alarm_not_started")


def test_counter_file_corrupt_cannot_send_is_felt(rig):
    r = rig()
    (r.workdir / "fw" / "ctr").write_bytes(b"\x00\x00\x00\x07\x00\x00\x00\x07")  # check word bad
    r.start()
    hold_is_felt_as_cannot_send(r, "alarm_not_started")


def test_no_modem_cannot_send_is_felt(rig, tmp_path):
    board = json.loads((BOARDS / "sim.json").read_text())
    for pin in ("modem_uart", "modem_pwrkey"):
        del board["pins"][pin]
    f = tmp_path / "no-modem.json"
    f.write_text(json.dumps(board))
    r = rig(board=f)
    r.start()
    hold_is_felt_as_cannot_send(r, "no_modem")
