"""Virtual boards on USB ports and a police registry, for the provisioning tests and bench.

A `Board` is a virtual board (urelief.sim) with the sim board's hardware fitted — SIM7080 modem
emulator, GNSS receiver, Li-ion cell — whose USB serial port appears at a path (a symlink to its
pty, as udev makes /dev/ttyACM0) while it is plugged in. `Police` is the registry as the police
server keeps it: SQLite, a server key, one school.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from urelief.sim.device import BOOT_STRAP_GPIO, VirtualDevice
from urelief.sim.models.battery import BatteryModel, LiIonCell
from urelief.sim.models.gnss_uart import GnssReceiver, Trajectory
from urelief.sim.modem import make

SEOUL = (37.5665, 126.9780, 38.0)


def roster_csv(n: int, class_name: str = "4-2") -> str:
    """A made-up class of n pupils in the registry's roster format."""
    rows = ["pupil_ref,full_name,class_name,guardian1_name,guardian1_phone,consent_given_by,"
            "consent_date"]
    rows += [f"B-{i:03d},Pupil {i},{class_name},Guardian {i},+8210555{i:05d},Guardian {i},"
             "2026-03-02" for i in range(1, n + 1)]
    return "\n".join(rows) + "\n"


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

    def import_roster(self, text: str) -> dict[str, int]:
        self.registry.import_roster(self.actor, self.school["id"], text)
        items = self.registry.list_subscribers(self.actor, school_id=self.school["id"])["items"]
        return {s["pupil_ref"]: s["id"] for s in items}

    def device(self, device_id: int) -> dict:
        return self.registry.get_device(self.actor, device_id)

    def devices(self) -> list[dict]:
        return self.registry.list_devices(self.actor)["items"]


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

    def __init__(self, bench: Bench, name: str, modem: bool = True, battery_soc: float = 0.8,
                 port: str | None = None, image: str = "stock", heap_kb: int = 256):
        self.bench, self.name = bench, name
        self.flash = bench.tmp / f"{name}.img"
        self.uid = os.urandom(6)
        self.port = str(bench.ports / (port or name))  # boards may share one port, in turn
        self.with_modem = modem
        self.battery_soc = battery_soc
        self.image, self.heap_kb = image, heap_kb  # its MicroPython build: ROMFS or not, heap
        self.dev: VirtualDevice | None = None
        self.motor: list[tuple[int, float]] = []

    def plug(self, boot_held: bool = False) -> Board:
        """boot_held: the operator holds BOOT while plugging in (ROM download mode, for esptool)."""
        dev = VirtualDevice(board="sim", flash=self.flash, firmware=self.bench.blank,
                            clock="virtual", run_ahead=True, heap_kb=self.heap_kb, unique_id=self.uid,
                            image=self.image)
        if boot_held:
            dev.pin(BOOT_STRAP_GPIO).drive(0)
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
        while dev.state not in ("running", "download") and time.monotonic() < deadline:
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

    def release_boot_and_reset(self) -> None:
        """The operator lets go of BOOT and presses EN: the chip boots what is on its flash."""
        assert self.dev is not None
        self.dev.pin(BOOT_STRAP_GPIO).drive(None)
        self.dev.hard_reset()

    def unplug(self) -> None:
        if self.dev is not None and os.path.islink(self.port) and \
                os.readlink(self.port) == self.dev.console.usb_path:
            os.unlink(self.port)  # only our own port: another board may be on it now
        if self.dev is not None:
            # Models' timers go first: with the board off and time running ahead, periodic
            # timers would keep the host loop busy and stop() would wait for it in vain.
            gnss, battery = self.gnss, self.battery
            self.dev.clock.post(lambda: (gnss.power(False), battery.stop()))
            self.dev.stop()
            if self.modem is not None:
                self.modem.close()
            self.dev = None
