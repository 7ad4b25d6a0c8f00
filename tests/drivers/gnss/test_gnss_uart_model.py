"""The GNSS receiver model (CPython) and the firmware's GNSS service reading it over a UART.

Fast checks run the model against a 30-line stand-in for the device API; one test runs it on a
real VirtualDevice with the firmware's service reading UART 2 through asyncio.StreamReader."""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
import re
import shutil
from pathlib import Path

import gpsd_chk as G
import pynmea2
import pytest
from urelief.paths import FIRMWARE
from urelief.sim.models.gnss_uart import GnssReceiver, Trajectory, log_epochs
from urelief.sim.replay_nmea import replay


class _Timer:
    def __init__(self):
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


class FakeDevice:
    """Just the device API the model uses: a clock with timers, a UART, a pin."""

    def __init__(self):
        self.t = 0.0
        self._q: list = []
        self._n = itertools.count()
        self.rx: list[tuple[float, bytes]] = []  # (device ms, bytes) delivered to the firmware
        self.clock = self
        self.peer = None

    def now_ms(self):
        return self.t

    def call_later(self, ms, fn):
        timer = _Timer()
        heapq.heappush(self._q, (self.t + ms, next(self._n), fn, timer))
        return timer

    def post(self, fn):
        self.call_later(0, fn)

    def uart(self, uart_id):
        assert uart_id == 2
        return self

    def attach(self, peer):
        self.peer = peer

    def send(self, data):
        self.rx.append((self.t, data))

    def run_for(self, ms):
        end = self.t + ms
        while self._q and self._q[0][0] <= end:
            self.t, _, fn, timer = heapq.heappop(self._q)
            if not timer.cancelled:
                fn()
        self.t = end


def _walk():
    # A school run: 3 waypoints in Seoul, walking pace.
    return Trajectory.waypoints([(37.5665, 126.9780, 38.0), (37.5675, 126.9790, 40.0),
                                 (37.5685, 126.9770, 42.0)], speed_mps=1.4)


def test_cold_start_then_fixes_at_1hz_at_line_rate():
    dev = FakeDevice()
    rx = GnssReceiver(dev, _walk()).attach()
    dev.run_for(45_000)
    fixes = [t for t, d in dev.rx if d.startswith(b"$GPRMC") and b",A," in d]
    assert fixes and 30_000 <= fixes[0] <= 31_500  # cold TTFF ~30 s
    assert rx.first_fix_ms is not None and rx.first_fix_ms >= 30_000
    gaps = [b - a for a, b in itertools.pairwise(fixes)]
    assert all(abs(g - 1000) < 1 for g in gaps)
    nofix = [d for t, d in dev.rx if t < 30_000]
    assert nofix and all(b",V," in d or b",0,00," in d or b"A,1," in d for d in nofix)
    # bytes take their wire time: RMC then VTG arrive len(VTG)*10/9600 s apart
    t_rmc, t_vtg = [t for t, d in dev.rx if d.startswith((b"$GPRMC", b"$GPVTG"))][-2:]
    vtg = [d for _, d in dev.rx if d.startswith(b"$GPVTG")][-1]
    assert t_vtg - t_rmc == pytest.approx(len(vtg) * 10_000 / 9600)


def test_hot_start_after_a_short_power_off():
    dev = FakeDevice()
    rx = GnssReceiver(dev, _walk()).attach()
    dev.run_for(40_000)
    rx.power(False)
    dev.run_for(60_000)
    n = len(dev.rx)
    assert all(t <= 40_000 + 500 for t, _ in dev.rx)  # silent while off
    rx.power(True)
    dev.run_for(3_000)
    fixes = [t for t, d in dev.rx[n:] if d.startswith(b"$GPRMC") and b",A," in d]
    assert fixes and fixes[0] - 100_000 <= 2_500  # hot TTFF ~1 s


def test_trajectory_sentences_are_valid_nmea_and_decode_on_the_firmware(tmp_path):
    dev = FakeDevice()
    walk = _walk()
    GnssReceiver(dev, walk, ttff_ms=0).attach()
    dev.run_for(60_000)
    data = b"".join(d for _, d in dev.rx)
    for line in data.decode().split("\r\n"):
        if line:
            pynmea2.parse(line, check=True)
    log = tmp_path / "walk.nmea"
    log.write_bytes(data)
    epochs, stats = replay(log)
    assert stats["bad_checksum"] == stats["malformed"] == stats["bad_fields"] == 0
    assert len(epochs) >= 58 and all(e["mode"] == 3 for e in epochs)
    for e in epochs:
        t = dt.datetime.fromisoformat(e["time"].replace("Z", "+00:00")) - walk.start
        lat, lon, alt = walk.position(t.total_seconds())
        assert abs(e["lat"] - lat) < 2e-6 and abs(e["lon"] - lon) < 2e-6
        assert e["alt_msl"] == pytest.approx(alt, abs=0.05)
    moving = [e["speed"] for e in epochs[2:]]
    assert all(abs(s - 1.4) < 0.01 for s in moving)


def test_log_source_plays_every_epoch_once():
    log = G.DATA / "bu353s4.log"
    epochs = log_epochs(log)
    dev = FakeDevice()
    GnssReceiver(dev, log, ttff_ms=0).attach()
    dev.run_for(len(epochs) * 1000 + 5000)
    sent = b"".join(d for _, d in dev.rx)
    assert sent == b"".join(line + b"\r\n" for ep in epochs for line in ep)


_MAIN = """
import asyncio, machine
from gnss.service import Gnss

def show(f):
    print("FIX", f.mode, f.iso_time(), f.lat, f.lon, f.alt_msl)

async def main():
    uart = machine.UART(2, 9600, tx=43, rx=44, rxbuf=1024)
    g = Gnss()
    g.on_fix = show
    g.power(True)
    await g.run_uart(asyncio.StreamReader(uart))

asyncio.run(main())
"""


def test_firmware_service_reads_the_receiver_on_a_virtual_device(tmp_path):
    device = pytest.importorskip("urelief.sim.device")
    fw = tmp_path / "fw"
    shutil.copytree(FIRMWARE / "gnss", fw / "gnss", ignore=shutil.ignore_patterns("__pycache__"))
    (fw / "main.py").write_text(_MAIN)
    dev = device.VirtualDevice(firmware=fw, flash=tmp_path / "flash.img")
    try:
        dev.start()
        rx = GnssReceiver(dev, _walk()).attach()
        whole = re.compile(r"^FIX 3 (\S+ ){3}\S+\r?\n", re.M)  # a complete line, not a partial one
        dev.run_until(lambda: whole.search(dev.output) is not None, timeout_ms=40_000,
                      timeout_s=120)
        first = whole.search(dev.output).group(0).strip()
    finally:
        dev.stop()
    _, mode, when, lat, lon, alt = first.split()
    assert rx.first_fix_ms is not None and rx.first_fix_ms >= 30_000  # cold start
    assert when.startswith("2026-01-01T00:00:")
    assert abs(float(lat) - 37.5665) < 1e-3 and abs(float(lon) - 126.978) < 1e-3
    assert json.loads(alt) == pytest.approx(38.0, abs=2.0)
    assert Path(fw / "main.py").exists()
