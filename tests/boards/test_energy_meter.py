"""The simulator's energy meter (urelief.sim.energy) on the virtual board: each part's state
over device time, integrated with power.py's figures; CPU time charged at the chip's speed."""

import textwrap

import pytest
from urelief import power
from urelief.sim import chipspeed
from urelief.sim.device import VirtualDevice
from urelief.sim.energy import EnergyMeter
from urelief.sim.models.battery import LiIonCell


def test_a_duty_cycle_is_charged_part_by_part(tmp_path):
    fw = tmp_path / "fw"
    fw.mkdir()
    (fw / "main.py").write_text(textwrap.dedent("""
        import time, machine
        machine.Pin(25, machine.Pin.OUT, value=1)   # the motor on ...
        time.sleep_ms(400)                          # ... for 400 ms of 'work'
        machine.Pin(25, machine.Pin.OUT, value=0)
        machine.deepsleep(20000)                    # then 20 s asleep, woken by the RTC timer
        """))
    dev = VirtualDevice(board="devkitc-wrover-sim7080g-ublox", flash=tmp_path / "flash.img",
                        firmware=fw)
    cell = LiIonCell(soc=0.5)
    parts = power.PARTS["devkitc-wrover-sim7080g-ublox"]
    try:
        dev.start()
        meter = EnergyMeter(dev, parts, motor_gpio=25, cell=cell, chip_factor=10).start()
        dev.run_for(61_000)
        meter.stop()
    finally:
        dev.stop()
    rep = meter.report()
    by = {(c["part"], c["state"]): c for c in rep["consumers"]}
    ms = meter.ms
    assert dev.boots == 3  # power-on, then wakes at ~20.4 and ~40.8 s
    awake, deep = ms[("mcu", "awake")], ms[("mcu", "deep")]
    assert awake + deep == pytest.approx(61_000, abs=1)
    assert 3 * 400 <= awake < 3 * 1000  # 400 ms a boot, plus the VM's start
    assert 3 * 380 < ms[("motor", "on")] < 3 * 600
    # CPU seconds at the chip's speed: the factor given, on the VM's own CPU time
    assert 0 < rep["cpu_host_s"] < awake / 1000
    assert by[("mcu", "active")]["s_per_day"] == pytest.approx(rep["cpu_host_s"] * 10 / rep["days"], rel=1e-2)
    assert by[("mcu", "idle")]["s_per_day"] == pytest.approx(
        (awake / 1000 - rep["cpu_host_s"]) / rep["days"], rel=1e-2)
    assert rep["awake_fraction"] == pytest.approx((awake + rep["cpu_host_s"] * 9000) / 61_000, rel=1e-2)
    # energy: each state's time x its figure; the cell drained as the states were (awake at
    # the idle figure: the CPU split is known once the run is over)
    def mah(fig, t_ms):
        return power.ma(fig) * t_ms / 3_600_000
    live = (mah(parts.mcu["idle"], awake) + mah(parts.mcu["deep"], deep)
            + mah(power.MOTOR, ms[("motor", "on")]) + sum(mah(f, 61_000) for f in parts.static))
    assert (0.5 - cell.soc) * cell.capacity_mah == pytest.approx(live, rel=1e-3)
    total = sum(c["mah_per_day"] for c in rep["consumers"]) * rep["days"]
    assert total == pytest.approx(live - mah(parts.mcu["idle"], rep["cpu_host_s"] * 1000)
                                  + mah(parts.mcu["active"], rep["cpu_host_s"] * 10_000), rel=2e-3)
    assert rep["standby_days"] < 1500 * 0.8 / (total * 86_400_000 / 61_000)


def test_chip_factor_follows_the_published_ratio(monkeypatch):
    monkeypatch.delenv(chipspeed.ENV, raising=False)
    s3, esp32 = chipspeed.factor("esp32s3"), chipspeed.factor("esp32")
    assert s3 == chipspeed.HOST_OVER_S3
    assert esp32 / s3 == pytest.approx(15.4 / 8.9)
    monkeypatch.setenv(chipspeed.ENV, "12.5")
    assert chipspeed.factor("esp32") == 12.5


def test_every_part_figure_is_sourced_and_in_a_unit():
    for name, parts in power.PARTS.items():
        figs = [*parts.mcu.values(), *parts.modem.values(), *parts.gnss.values(), parts.motor,
                *parts.static]
        for f in figs:
            assert f.kind in ("datasheet", "vendor", "derived", "assumed") and len(f.source) > 20
            assert 0 < power.ma(f) < 500, (name, f.name)
        assert power.ma(parts.mcu["deep"]) < 0.02 and power.ma(parts.mcu["active"]) > 10
