"""Battery gauge on the MicroPython VM: ADC -> volts -> % on the Li-ion curve, smoothing,
low-battery hysteresis, charging pin; the firmware's table against the simulator's cell model
(two implementations of the same published curve)."""

from pathlib import Path

from urelief.paths import FIRMWARE
from urelief.sim.models.battery import LiIonCell, ocv_v

FAKE = Path(__file__).with_name("fake_machine")


def test_percent_table_matches_the_cell_model(mpy):
    mvs = [round(ocv_v(s / 100) * 1000) for s in range(0, 101)]
    got = mpy.json(f"from periph.battery import percent\nimport json\n"
                  f"print(json.dumps([percent(mv) for mv in {mvs}]))")
    for soc, pct in enumerate(got):
        # linear interpolation between table points: within 3 points where the curve is steep
        # (below 10 %), within 1.5 on the plateau
        assert abs(pct - soc) <= (3 if soc < 10 else 1.5), (soc, pct)
    assert got == sorted(got)  # monotonic


def test_percent_clamps_and_known_points(mpy):
    got = mpy.json("from periph.battery import percent\nimport json\n"
                  "print(json.dumps([percent(v) for v in (0, 2654, 3300, 3803, 4103, 4200, 5000)]))")
    assert got[0] == 0 and got[1] == 0
    assert 2 <= got[2] <= 4
    assert got[3] == 50
    assert got[4:] == [100, 100, 100]


def test_gauge_divider_smoothing_and_low_hysteresis(mpy):
    out = mpy.json("""
import json
from periph.battery import Gauge
g = Gauge(2.0)
seen = []
g.feed(2000)                      # 4.000 V at the cell
seen.append((g.cell_mv, g.percent, g.low))
for _ in range(3):
    g.feed(1000)                  # a 2 V glitch is damped, not followed
seen.append((g.cell_mv, g.percent, g.low))
for _ in range(40):
    g.feed(1845)                  # 3.69 V: ~13 %
seen.append((g.cell_mv, g.percent, g.low))
for _ in range(40):
    g.feed(1862)                  # 3.724 V: ~19 %, still low (hysteresis)
seen.append((g.cell_mv, g.percent, g.low))
for _ in range(40):
    g.feed(1900)                  # 3.80 V: ~47 %, cleared
seen.append((g.cell_mv, g.percent, g.low))
print(json.dumps(seen))
""")
    assert out[0] == [4000, 87, False]
    assert 2500 < out[1][0] < 4000  # moved towards the glitch but not onto it
    assert abs(out[2][0] - 3690) <= 4 and out[2][2] is True
    assert out[3][1] < 20 and out[3][2] is True
    assert out[4][1] > 40 and out[4][2] is False


def test_driver_median_rejects_a_spike_and_reads_charging(mpy):
    out = mpy.json("""
import json, machine
machine.ADC.uv = [1900000, 1901000, 3100000, 1899000, 1900500]  # one spike in five reads
machine._levels[9] = 0  # charger's CHRG pin pulled low: charging
from periph.battery import Battery
b = Battery({'gpio': 35, 'divider': 2.0}, {'gpio': 9, 'active': 'low', 'pull': 'up'})
mv = b.sample()
nb = Battery({'gpio': 35, 'divider': 2.0})
print(json.dumps({'mv': mv, 'volts': b.volts, 'charging': b.charging, 'none': nb.charging}))
""", path=(FAKE, FIRMWARE))
    assert out["mv"] == 3800 and abs(out["volts"] - 3.8) < 1e-6
    assert out["charging"] is True
    assert out["none"] is None  # a board without a charge-status pin says "unknown"


def test_cell_model_drains_and_sags():
    cell = LiIonCell(capacity_mah=1500, soc=1.0)
    cell.drain(1500, 30 * 60 * 1000)  # 1.5 A for 30 min: half the charge
    assert abs(cell.soc - 0.5) < 1e-9
    assert cell.terminal_mv(2000) < cell.terminal_mv(0) - 250  # a 2 A burst sags ~300 mV


def test_sampled_low_turns_on_once_per_fall(mpy):
    # As the heartbeat loop looks at it: one sample per look, `low` rising once per fall.
    out = mpy.json("""
import json
from periph.battery import Battery
class Adc:
    uv = 1950000                       # 3.90 V at the cell
    def read_uv(self):
        return Adc.uv
bat = Battery({'gpio': 4, 'divider': 2.0}, adc=Adc())
calls = []
was = bat.low
for uv, looks in ((1950000, 20), (1830000, 40),   # 3.66 V: ~9 %
                  (1835000, 20),                  # wobbling around the edge: no second fall
                  (1950000, 40), (1830000, 40)):  # charged again, then down again: a second
    Adc.uv = uv
    for _ in range(looks):
        bat.sample()
        if bat.low and not was:
            calls.append(bat.percent)
        was = bat.low
print(json.dumps(calls))
""")
    assert len(out) == 2 and all(p <= 15 for p in out)


PMU = """
import json
from periph.battery import PmuBattery
class I2C:                                  # an AXP2101 as registers
    def __init__(self, regs):
        self.regs = regs
    def readfrom_mem_into(self, addr, reg, buf):
        assert addr == 0x34
        for i in range(len(buf)):
            buf[i] = self.regs.get(reg + i, 0)
    def writeto_mem(self, addr, reg, buf):
        assert addr == 0x34
        for i, b in enumerate(buf):
            self.regs[reg + i] = b
mv = 3803
bus = I2C({0x00: 0x08, 0x01: 0x20, 0x30: 0x02, 0x34: 0xE0 | (mv >> 8), 0x35: mv & 0xFF})
pmu = PmuBattery(i2c=bus)
out = {'adc_ctrl': bus.regs[0x30], 'mv': pmu.sample(), 'pct': pmu.percent,
       'charging': pmu.charging}
bus.regs[0x01] = 0x40                       # discharging
out['discharging'] = not pmu.charging
bus.regs[0x00] = 0x00                       # cell removed
out['absent'] = pmu.sample()
print(json.dumps(out))
"""


def test_axp2101_pmu_gauge(mpy):
    out = mpy.json(PMU)
    assert out["adc_ctrl"] == 0x03  # VBAT measurement switched on, other bits kept
    assert out["mv"] == 3803  # high bits outside the 13-bit field ignored
    assert out["pct"] == 50
    assert out["charging"] is True and out["discharging"] is True
    assert out["absent"] is None


def test_from_board_picks_the_reader(mpy):
    out = mpy.json("""
import json
from periph import battery
sim = battery.from_board({'pins': {'battery_adc': {'gpio': 4, 'divider': 2.0}}})
none = battery.from_board({'pins': {}, 'power': {'battery': 'none'}})
print(json.dumps([type(sim).__name__, none]))
""", path=(FAKE, FIRMWARE))
    assert out == ["Battery", None]
