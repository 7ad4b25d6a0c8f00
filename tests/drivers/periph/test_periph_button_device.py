"""The button driver on the virtual board: a human (with contact bounce) presses the sim board's
button; the real driver on the real VM prints the gestures. Bumps and chatter print nothing;
a triple press and a 3 s hold do; a press that wakes the chip from deep sleep still counts."""

import shutil
import textwrap
from pathlib import Path

import pytest
from urelief.paths import FIRMWARE
from urelief.sim.device import DEEPSLEEP_RESET, VirtualDevice
from urelief.sim.models.button import HumanButton

SIM_BUTTON = 1  # boards/sim.json pins.button.gpio

MAIN = """
import asyncio, machine, esp32
from periph.button import Button
PIN = {'gpio': 1, 'active': 'low', 'pull': 'up', 'wake': True}
b = Button(PIN, {'hold_ms': 3000, 'presses': 3, 'window_ms': 2000})
print('boot', machine.reset_cause())

async def main():
    asyncio.create_task(b.run())
    print('ready')
    async for kind, n, t in b:
        print('gesture', kind, n, 'at', t)
        if SLEEP_AFTER and kind == 'hold':
            break
    if SLEEP_AFTER:
        print('end')

SLEEP_AFTER = %s
if SLEEP_AFTER and machine.reset_cause() != machine.DEEPSLEEP_RESET:
    b.arm_wake()
    print('sleeping')
    machine.deepsleep()
asyncio.run(main())
"""


def firmware(tmp: Path, sleep_after: bool) -> Path:
    root = tmp / "fw"
    (root / "periph").mkdir(parents=True)
    for name in ("__init__.py", "button.py"):
        shutil.copy(FIRMWARE / "periph" / name, root / "periph" / name)
    (root / "main.py").write_text(textwrap.dedent(MAIN % sleep_after))
    return root


@pytest.fixture
def make_device(tmp_path):
    made = []

    def make(sleep_after=False):
        dev = VirtualDevice(board="sim", flash=tmp_path / "flash.img",
                            firmware=firmware(tmp_path, sleep_after))
        made.append(dev)
        return dev.start()

    yield make
    for dev in made:
        dev.stop()


def gestures(output: str) -> list[tuple[str, int, float]]:
    out = []
    for line in output.split("\n")[:-1]:  # whole lines only: the console may be mid-line
        line = line.rstrip("\r")
        if line.startswith("gesture "):
            _, kind, n, _, t = line.split()
            out.append((kind, int(n), float(t)))
    return out


def test_bumps_and_chatter_are_silent_presses_and_hold_are_not(make_device, wait_console):
    dev = make_device()
    assert wait_console(dev, lambda out: "ready" in out, 5000)
    human = HumanButton(dev, SIM_BUTTON, seed=11)
    for i in range(3):
        human.bump(50, after_ms=1500 + 300 * i)  # knocks in a pocket
    human.play(human.chatter_edges(0, 5), after_ms=2600)  # a 5 ms bounce train alone
    human.presses(3, press_ms=150, gap_ms=250, after_ms=4000)
    human.press(3500, after_ms=8000)
    # The console may trail device time a little: wait for the last line, then judge them all
    # (a gesture from a bump or the chatter would come first in the list).
    assert wait_console(dev, lambda out: "gesture hold" in out, 20_000)
    got = gestures(dev.output)
    assert [(k, n) for k, n, _ in got] == [("presses", 3), ("hold", 1)]
    # the triple ends at the 3rd release (+950 ms); the hold fires 3 s after its press (+4000)
    assert 6000 <= got[1][2] - got[0][2] <= 6120
    assert "Traceback" not in dev.output


def test_press_that_wakes_the_chip_counts(make_device, wait_console):
    dev = make_device(sleep_after=True)
    dev.run_for(1000)
    assert dev.state == "sleeping"
    HumanButton(dev, SIM_BUTTON, seed=5).press(5000, after_ms=2000)
    assert wait_console(dev, lambda out: "end" in out, 20_000)
    assert "sleeping" in dev.output  # the first boot armed the wake and slept
    assert dev.reset_causes[-1] == DEEPSLEEP_RESET
    assert [(k, n) for k, n, _ in gestures(dev.output)] == [("hold", 1)]
    # credited with the time the press was down before the driver ran: fires before 3 s
    assert gestures(dev.output)[0][2] < 3000
