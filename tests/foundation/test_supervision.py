"""Supervision on the virtual board (issue 9), with the firmware's own main.py and supervise.py
and an app that misbehaves: a hung task starves the watchdog (WDT_RESET, the task named in the
crash log on flash); a crash is logged and resets; a boot loop ends in safe mode, where the real
mpremote reaches the board and reads the crash log."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from urelief.paths import BUILD_FIRMWARE
from urelief.sim import events
from urelief.sim.device import SOFT_RESET, WDT_RESET, VirtualDevice

HUNG_APP = """
import asyncio, supervise
async def main():
    async def stuck():
        supervise.alive('stuck', 2000)
        await asyncio.Event().wait()  # never set: no more check-ins
    asyncio.create_task(stuck())
    while True:
        await asyncio.sleep_ms(1000)
"""
CRASHING_APP = """
import asyncio
async def main():
    async def bad():
        await asyncio.sleep_ms(500)
        raise ValueError('bad reading')
    asyncio.create_task(bad())
    while True:
        await asyncio.sleep_ms(1000)
"""
HEALTHY_APP = """
import asyncio, supervise
async def main():
    while True:
        supervise.alive('worker', 3000)
        await asyncio.sleep_ms(1000)
"""


@pytest.fixture
def board(tmp_path, built_firmware):
    """board(app_source, clock) -> a started VirtualDevice running the built firmware's main.py
    and supervise with this app.py instead of the terminal's."""
    made: list[VirtualDevice] = []
    fw = tmp_path / "fw"
    flash = tmp_path / "flash.img"

    def make(app: str | None = None, clock: str = "virtual", usb: bool = False):
        if app is not None:
            shutil.rmtree(fw, ignore_errors=True)
            shutil.copytree(BUILD_FIRMWARE, fw)
            (fw / "app.mpy").unlink()
            (fw / "app.py").write_text(app)
        dev = VirtualDevice(flash=flash, firmware=fw, clock=clock)
        made.append(dev)
        port = dev.console.open_usb() if usb else None
        dev.start()
        return (dev, port) if usb else dev

    yield make
    for d in made:
        d.stop()


def test_a_hung_task_starves_the_watchdog_and_is_named_in_the_crash_log(board):
    dev = board(HUNG_APP)
    dev.wait_line(events.line("supervised"), timeout_ms=10_000)
    assert dev.run_until(lambda: WDT_RESET in dev.reset_causes, timeout_ms=60_000), dev.output[-1500:]
    hung = events.first(dev.output, "crash", what="hung")
    assert hung and hung.note == "task=stuck"
    # the reset came from the watchdog, within its timeout of the last feed (device time)
    dev.wait_line(events.line("crash", what="watchdog"), timeout_ms=10_000)


def test_a_task_exception_is_logged_and_resets_and_a_boot_loop_ends_in_safe_mode(board, tmp_path):
    dev = board(CRASHING_APP)
    assert dev.run_until(lambda: events.first(dev.output, "safe_mode"), timeout_ms=60_000), \
        dev.output[-2000:]
    assert events.first(dev.output, "safe_mode")["reason"] == "crashes"
    crashes = events.events(dev.output, "crash", what="task")
    assert len(crashes) == 3 and "ValueError" in crashes[0].note
    assert dev.reset_causes[1:4] == [SOFT_RESET] * 3
    dev.stop()
    # the same flash on a board with a real clock: still safe mode; the real mpremote reaches it
    dev, port = board(clock="real", usb=True)
    dev.wait_line(events.line("safe_mode", reason="crashes"), timeout_ms=10_000)
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "fs", "cat",
                        ":crash.log"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3 and all(" task " in ln and "ValueError" in ln for ln in lines)


def test_a_healthy_app_is_never_reset(board):
    dev = board(HEALTHY_APP)
    dev.wait_line(events.line("supervised"), timeout_ms=10_000)
    dev.run_for(200_000)
    assert dev.reset_causes == [dev.reset_causes[0]] and not events.first(dev.output, "crash")


def test_the_flag_file_means_safe_mode_no_app_no_watchdog(board, tmp_path):
    dev = board(HUNG_APP)
    dev.stop()
    (tmp_path / "fw" / "safe").write_text("")
    (tmp_path / "flash.img").unlink()
    dev = board()
    dev.wait_line(events.line("safe_mode", reason="flag"), timeout_ms=10_000)
    dev.run_for(2000)  # at the REPL: the hung app never ran, no watchdog was started
    assert not events.first(dev.output, "supervised") and len(dev.reset_causes) == 1
