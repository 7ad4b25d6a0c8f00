"""Every real board file runs the real firmware on the virtual board: it boots from its own pin
map without a traceback, and a 3.5 s hold on that board's SOS button is recognised."""

import json
import time

import pytest
from urelief import boards
from urelief.sim import events
from urelief.sim.device import VirtualDevice
from urelief.sim.models.button import HumanButton

REAL = [p for p in boards.board_files() if p.stem != "sim"]


def wait_text(dev, text, timeout_ms):
    # The console can trail device time by a moment of real time: re-check for up to 2 s.
    if dev.run_until(lambda: text in dev.output, timeout_ms=timeout_ms):
        return True
    end = time.monotonic() + 2
    while time.monotonic() < end and text not in dev.output:
        time.sleep(0.02)
    return text in dev.output


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_board_boots_the_firmware_and_its_button_raises_a_hold(path, built_firmware, tmp_path):
    board = json.loads(path.read_text())
    dev = VirtualDevice(board=path.stem, flash=tmp_path / "flash.img", firmware=built_firmware)
    try:
        dev.start()
        dev.run_for(1500)
        HumanButton(dev, board["pins"]["button"]["gpio"]).press(3500, after_ms=500)
        assert wait_text(dev, events.line("gesture", kind="hold"), 10_000), dev.output[-800:]
        assert "Traceback" not in dev.output
        assert events.first(dev.output, "boot", board=board["name"])  # it read this board's file
    finally:
        dev.stop()
