"""Provisioning fixtures: a migrated registry with a class, and virtual boards that are plugged
into a USB port path (a symlink to the board's pty, as udev would make /dev/ttyACM0) with the
sim board's hardware fitted: SIM7080 modem emulator, GNSS receiver, Li-ion cell."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from urelief.build import build
from urelief.sim.device import VirtualDevice
from urelief.sim.models.battery import BatteryModel, LiIonCell
from urelief.sim.models.gnss_uart import GnssReceiver, Trajectory
from urelief.sim.modem import make

ROSTER = """pupil_ref,full_name,class_name,guardian1_name,guardian1_phone,consent_given_by,consent_date
P-001,Kim Minji,4-2,Kim Sora,+821012345678,Kim Sora,2026-03-02
P-002,Lee Hana,4-2,Lee Dong,+821099998888,Lee Dong,2026-03-03
P-003,Park Seo,4-2,Park Ana,+821055554444,Park Ana,2026-03-04
"""
SEOUL = (37.5665, 126.9780, 38.0)


@pytest.fixture(scope="session")
def built_firmware(tmp_path_factory) -> Path:
    """The firmware as `make build` makes it, built privately (build/firmware is shared)."""
    out = tmp_path_factory.mktemp("build") / "firmware"
    build(out=out)
    return out


class Police:
    """The registry as the police server keeps it: SQLite, a server key, one school."""

    def __init__(self, tmp: Path):
        from urelief.registry import migrate
        from urelief.registry.db import Database
        from urelief.registry.keys import ServerKey
        from urelief.registry.service import Registry, cli_actor

        self.url = f"sqlite:///{tmp / 'registry.db'}"
        migrate.upgrade(self.url)
        self.key_hex = os.urandom(32).hex()
        self.registry = Registry(Database(self.url), ServerKey(bytes.fromhex(self.key_hex)))
        self.actor = cli_actor()
        self.school = self.registry.create_school(self.actor, "D1", "Demo Elementary")

    def import_roster(self, text: str = ROSTER) -> dict[str, int]:
        self.registry.import_roster(self.actor, self.school["id"], text)
        items = self.registry.list_subscribers(self.actor, school_id=self.school["id"])["items"]
        return {s["pupil_ref"]: s["id"] for s in items}

    def device(self, device_id: int) -> dict:
        return self.registry.get_device(self.actor, device_id)

    def devices(self) -> list[dict]:
        return self.registry.list_devices(self.actor)["items"]


@pytest.fixture
def police(tmp_path) -> Iterator[Police]:
    p = Police(tmp_path)
    yield p
    p.registry.db.dispose()


class Bench:
    """Virtual boards and the port paths they are plugged into."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.ports = tmp / "dev"
        self.ports.mkdir()
        self.blank = tmp / "blank"  # a board fresh from MicroPython: nothing but its pin map
        self.blank.mkdir()
        self.boards: list[Board] = []

    def board(self, name: str, modem: bool = True, **kw) -> Board:
        b = Board(self, name, modem=modem, **kw)
        self.boards.append(b)
        return b

    def close(self) -> None:
        for b in self.boards:
            b.unplug()


class Board:
    """One virtual board with a persistent flash image and unique id, plugged at ports/<name>.
    plug() powers it on (USB power); unplug() cuts the power and removes the port."""

    def __init__(self, bench: Bench, name: str, modem: bool = True, battery_soc: float = 0.8):
        self.bench, self.name = bench, name
        self.flash = bench.tmp / f"{name}.img"
        self.uid = os.urandom(6)
        self.port = str(bench.ports / name)
        self.with_modem = modem
        self.battery_soc = battery_soc
        self.dev: VirtualDevice | None = None
        self.motor: list[tuple[int, float]] = []

    def plug(self) -> Board:
        dev = VirtualDevice(board="sim", flash=self.flash, firmware=self.bench.blank,
                            clock="virtual", run_ahead=True, heap_kb=256, unique_id=self.uid)
        pins = dev.board["pins"]
        self.modem = None
        if self.with_modem:
            self.modem = make("sim7080").attach(dev, uart_id=pins["modem_uart"]["id"],
                                                pwrkey_gpio=pins["modem_pwrkey"]["gpio"])
        dev.pin(pins["vibration"]["gpio"]).on_change(lambda lv, t: self.motor.append((lv, t)))
        pty = dev.console.open_usb()
        dev.start()
        # Models with timers only once the board runs: a virtual clock running ahead of a
        # board that is off would have nothing to stop at.
        deadline = time.monotonic() + 10
        while dev.state != "running" and time.monotonic() < deadline:
            time.sleep(0.01)
        self.gnss = GnssReceiver(dev, Trajectory(lambda t: SEOUL, sats=9, hdop=0.9),
                                 uart_id=pins["gnss_uart"]["id"], baud=pins["gnss_uart"]["baud"],
                                 ttff_ms=1000).attach()
        adc = pins["battery_adc"]
        self.battery = BatteryModel(dev, adc["gpio"], adc["divider"],
                                    LiIonCell(soc=self.battery_soc), load_ma=30)
        dev.clock.post(lambda: self.battery.start(every_ms=1000))
        self.dev = dev
        if os.path.lexists(self.port):
            os.unlink(self.port)
        os.symlink(pty, self.port)
        return self

    def unplug(self) -> None:
        if os.path.lexists(self.port):
            os.unlink(self.port)
        if self.dev is not None:
            # Models' timers go first: with the board off and time running ahead, periodic
            # timers would keep the host loop busy and stop() would wait for it in vain.
            gnss, battery = self.gnss, self.battery
            self.dev.clock.post(lambda: (gnss.power(False), battery.stop()))
            self.dev.stop()
            if self.modem is not None:
                self.modem.close()
            self.dev = None


@pytest.fixture
def bench(tmp_path, built_firmware) -> Iterator[Bench]:
    b = Bench(tmp_path)
    yield b
    b.close()


SERVER = "sos.urelief.test:7420"
GATEWAY = "+82112"


@pytest.fixture
def provision_cli(police, tmp_path, built_firmware):
    """provision_cli("device", "--port", …) -> click Result of `urelief provision …` run against
    the police registry, with this test's labels directory and provisioning log."""
    from click.testing import CliRunner
    from urelief.cli import main

    def run(*args: str):
        common = ["--board", "sim", "--db", police.url, "--server", SERVER, "--sms", GATEWAY,
                  "--labels", str(tmp_path / "labels"), "--log", str(tmp_path / "provisioning.db"),
                  "--firmware", str(built_firmware), "--selftest-timeout", "20"]
        cmd = ["provision", *args] + (common if args[0] != "status" else
                                      ["--log", str(tmp_path / "provisioning.db")])
        return CliRunner().invoke(main, cmd, env={"URELIEF_SERVER_KEY": police.key_hex},
                                  catch_exceptions=False)

    return run


def mpremote(port: str, *args: str, timeout: float = 60):
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", os.path.realpath(port),
                           *args], capture_output=True, text=True, timeout=timeout)


def read_back(port: str, names: list[str], dest: Path) -> dict[str, bytes]:
    """The files as the board's filesystem holds them, copied back with mpremote."""
    args: list[str] = []
    for n in names:
        (dest / n).parent.mkdir(parents=True, exist_ok=True)
        args += ["fs", "cp", f":{n}", str(dest / n), "+"]
    # Ctrl-C into a running app can catch the simulator's shims with the heap locked (the VM
    # then reboots into main.py and mpremote waits in vain): one more try.
    for attempt in (1, 2):
        try:
            r = mpremote(port, *args[:-1], timeout=30)
            break
        except subprocess.TimeoutExpired:
            if attempt == 2:
                raise
    assert r.returncode == 0, r.stderr
    return {n: (dest / n).read_bytes() for n in names}


def server_verifies(police, device_json: dict, counter: int = 1):
    """Seal an SOS with the device's secret as the terminal would; the police server's own
    device cache (its KeyStore) checks it. -> protocol Accepted or Rejected."""
    from urelief import protocol as p
    from urelief.server.devices import DeviceCache

    pkt = p.encode_uplink(p.Sos(report=p.Report(battery_pct=80)),
                          device_id=device_json["device_id"], key_id=device_json["key_id"],
                          secret=bytes.fromhex(device_json["secret"]), counter=counter)
    cache = DeviceCache(police.registry.db, police.registry.server_key)
    return p.decode_uplink(pkt, cache, cache, commit=False)
