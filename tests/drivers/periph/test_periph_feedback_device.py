"""Haptics and battery drivers on the virtual board: the motor pin plays the patterns' exact
rhythm in device time while the LED stays dark; the battery gauge reads the Li-ion cell model
through the sim board's divider and raises low-battery when the cell runs down."""

import re
import shutil
import textwrap

import pytest
from urelief.paths import FIRMWARE
from urelief.sim.device import VirtualDevice
from urelief.sim.models.battery import BatteryModel, LiIonCell

MOTOR, LED, BAT_ADC = 10, 2, 4  # boards/sim.json vibration, (an LED we add), battery_adc

MAIN = """
import asyncio
from periph.battery import Battery
from periph.haptics import Haptics
bat = Battery({'gpio': 4, 'divider': 2.0})
h = Haptics({'gpio': 10, 'active': 'high'}, {'gpio': 2, 'active': 'low'}, light=False)

async def gauge(n):
    for _ in range(n):
        bat.sample()
        await asyncio.sleep_ms(100)
    print('battery', bat.cell_mv, bat.percent, bat.low)

async def main():
    await asyncio.sleep_ms(200)
    await gauge(3)
    h.play('dispatched')
    h.play('question')
    while h.busy:
        await asyncio.sleep_ms(50)
    print('played', h.played)
    await asyncio.sleep_ms(3000)   # the cell runs down meanwhile (at 7 s device time)
    await gauge(20)

asyncio.run(main())
"""


@pytest.fixture
def dev(tmp_path):
    root = tmp_path / "fw"
    (root / "periph").mkdir(parents=True)
    for name in ("__init__.py", "battery.py", "haptics.py"):
        shutil.copy(FIRMWARE / "periph" / name, root / "periph" / name)
    (root / "main.py").write_text(textwrap.dedent(MAIN))
    d = VirtualDevice(board="sim", flash=tmp_path / "flash.img", firmware=root)
    yield d
    d.stop()


def durations(edges):
    """[(level, t_ms)] -> [(level, ms held)] for each level but the last."""
    return [(lv, round(t2 - t1)) for (lv, t1), (_, t2) in zip(edges, edges[1:], strict=False)]


def test_patterns_rhythm_dark_led_and_battery_gauge(dev, wait_console):
    cell = LiIonCell(capacity_mah=1500, soc=0.5)
    model = BatteryModel(dev, BAT_ADC, divider=2.0, cell=cell)
    model.apply()  # the cell is there before power-on
    motor, led = [], []
    dev.pin(MOTOR).on_change(lambda lv, t: motor.append((lv, t)))
    dev.pin(LED).on_change(lambda lv, t: led.append((lv, t)))
    dev.start()
    dev.clock.post(lambda: dev.clock.call_later(7000, lambda: model.set_soc(0.07)))
    assert wait_console(dev, lambda out: "played" in out, 20_000)
    first = dev.output.split("battery ")[1].split()
    assert abs(int(first[0]) - 3803) <= 3  # 50 % SoC: 3.803 V on the published curve
    assert 48 <= int(first[1]) <= 52 and first[2] == "False"

    ons = [(lv, t) for lv, t in motor]
    while ons and ons[0][0] == 0:
        ons.pop(0)  # the constructor's "motor off" at start
    assert ons
    got = durations(ons)
    want = [(1, 600), (0, 300), (1, 600), (0, 300), (1, 600), (0, 800),  # dispatched + gap
            (1, 150), (0, 150), (1, 150), (0, 150), (1, 700)]  # question
    assert len(got) >= len(want)
    for (glv, gms), (wlv, wms) in zip(got, want, strict=False):
        assert glv == wlv and abs(gms - wms) <= 5, (got, want)
    assert motor[-1][0] == 0  # off at the end
    assert all(lv == 1 for lv, _ in led)  # active-low LED only ever driven off: covert

    def gauge_lines(out):  # whole lines only: the console may be mid-line
        return re.findall(r"battery (\d+) (\d+) (\w+)\r?\n", out)

    assert wait_console(dev, lambda out: len(gauge_lines(out)) == 2, 20_000)
    last = gauge_lines(dev.output)[1]
    assert int(last[1]) <= 8 and last[2] == "True"
