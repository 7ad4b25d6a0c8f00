"""One powered-on virtual board: the real firmware on a real MicroPython VM.

Processes and channels (see docs/architecture.md):
- the board is a `micropython -i _vboot.py` process (`vmproc.ChipRun`, heap capped like an
  ESP32); its USB serial console is a pseudo-terminal (`console.Console`), its peripherals a
  framed pipe pair (`frames`, kinds in `shims/_vframes.py`) answered by `chip.Chip`;
- the host loop thread (`hostloop.HostLoop`) owns the clock, the hardware models' timers and
  the wire, and moves device time; resets and deep sleep end the process and start a new one
  against the same littlefs flash image, exactly as the chip reboots.
This module is the facade tests and tools use, and the chip's power lifecycle.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from urelief.paths import BOARDS, BUILD_FIRMWARE
from urelief.sim import vm
from urelief.sim.chip import (  # noqa: F401  (re-exported: the reset causes tests read)
    DEEPSLEEP_RESET,
    EXT0_WAKE,
    EXT1_WAKE,
    HARD_RESET,
    PWRON_RESET,
    SOFT_RESET,
    TIMER_WAKE,
    WDT_RESET,
    Chip,
)
from urelief.sim.clock import INF, Clock
from urelief.sim.console import Console
from urelief.sim.frames import NAMES
from urelief.sim.hostloop import HostLoop
from urelief.sim.peripherals import HostAdc, HostI2c, HostPin, HostUart
from urelief.sim.port import BoardPort
from urelief.sim.romloader import Chip as RomChip
from urelief.sim.romloader import RomLoader
from urelief.sim.shims import _vframes as K
from urelief.sim.spiflash import SpiFlash
from urelief.sim.vmproc import FLASH_BLOCKS, SHIMS, ChipRun, VmError, install_flash  # noqa: F401

BOOT_STRAP_GPIO = 0  # held low at a chip reset: ROM serial download mode (ESP32, ESP32-S3)
PSRAM_HEAP_KB = 512  # MicroPython's heap on a PSRAM board is megabytes; capped so leaks show


class DeviceError(RuntimeError):
    pass


def board_heap_kb(board: dict) -> int:
    """The MicroPython heap a board gives the firmware, in this 64-bit VM's bytes: a plain
    ESP32's ~110 KB (vm.CHIP_HEAP_KB / vm.WORD_RATIO, 155 KB here), far more with PSRAM."""
    if board.get("psram", "none") != "none":
        return PSRAM_HEAP_KB
    return round(vm.CHIP_HEAP_KB / vm.WORD_RATIO)


class VirtualDevice:
    def __init__(
        self,
        board: str | Path = "sim",
        flash: str | Path | None = None,
        clock: str = "virtual",
        heap_kb: int | None = None,
        firmware: str | Path | None = None,
        run_ahead: bool | None = None,
        unique_id: bytes | None = None,
        cpu_scale: float = 1.0,
        image: str = "stock",
    ):
        """cpu_scale: device us per host CPU us while the firmware runs (virtual clock);
        urelief.sim.chipspeed.factor(soc) runs it at the chip's speed. image: the MicroPython
        image on the chip, "stock" (no ROMFS, as Espressif boards ship today) or "romfs" (built
        with MICROPY_VFS_ROM and the romfs partition table: `vfs.rom_ioctl`, /rom)."""
        if image not in ("stock", "romfs"):
            raise ValueError("image must be 'stock' or 'romfs'")
        self.image = image
        if clock not in ("virtual", "real"):
            raise ValueError("clock must be 'virtual' or 'real'")
        self.board_file = Path(board) if str(board).endswith(".json") else BOARDS / f"{board}.json"
        self.board = json.loads(self.board_file.read_text())
        self.heap_kb = heap_kb if heap_kb is not None else board_heap_kb(self.board)
        self._tmp = tempfile.TemporaryDirectory(prefix="urelief-dev-")
        self.flash = Path(flash) if flash else Path(self._tmp.name) / "flash.img"
        self.firmware = Path(firmware) if firmware else BUILD_FIRMWARE
        self.unique_id = unique_id or os.urandom(6)
        self.clock = Clock(clock == "virtual", kick=lambda: self.loop.kick())
        self.loop = HostLoop(self, run_ahead if run_ahead is not None else not self.clock.virtual)
        self.port = BoardPort(self)
        self.chip = Chip(self, self.port, self.unique_id,
                         self.flash.with_name(self.flash.name + ".nvs.json"))
        self.console = Console(self.port)
        self.reset_causes: list[int] = []
        self.errors: list[BaseException] = []
        self.state = "off"  # off | running | sleeping | download (ROM loader) | halted (no app)
        self.soc = self.board.get("soc", "esp32s3")
        self.spiflash = SpiFlash(self.flash, 4096 * FLASH_BLOCKS)
        self.rom: RomLoader | None = None  # the ROM's serial loader while in download mode
        self.chip_run: ChipRun | None = None  # the VM process while the CPU runs
        self.boots = 0
        self.cpu_scale = cpu_scale
        self._cpu_done_s = 0.0  # CPU time of the VM processes of earlier boots

    # -- the public hardware -----------------------------------------------------------------
    def pin(self, gpio: int) -> HostPin:
        return self.chip.pin(gpio)

    def uart(self, uart_id: int) -> HostUart:
        return self.chip.uart(uart_id)

    def adc(self, gpio: int) -> HostAdc:
        return self.chip.adc(gpio)

    def i2c(self, bus_id: int) -> HostI2c:
        return self.chip.i2c(bus_id)

    @property
    def heap_peak(self) -> dict[str, int]:
        return self.chip.heap_peak

    @property
    def cpu_s(self) -> float:
        """Host CPU time the chip's VM processes have run since start(), s (urelief.sim.chipspeed
        turns it into the chip's)."""
        run = self.chip_run
        return self._cpu_done_s + (run.cpu_s() if run is not None else 0.0)

    @property
    def output(self) -> str:
        return self.console.text()

    @property
    def reset_cause(self) -> int | None:
        return self.reset_causes[-1] if self.reset_causes else None

    # -- power (any thread) ------------------------------------------------------------------
    def start(self) -> VirtualDevice:
        """Power on (making a factory flash image from `firmware` if there is none yet)."""
        if not self.flash.exists() or self.flash.stat().st_size == 0:
            self.format_flash(self.firmware)
        self.loop.start()
        self.loop.call(lambda: self._boot(PWRON_RESET, 0))
        return self

    def format_flash(self, tree: Path | None) -> None:
        """Erase the flash and install `tree` (a deployed firmware directory) on littlefs."""
        if tree is not None and not Path(tree).is_dir():
            raise DeviceError(f"no firmware tree at {tree}: run `make build`")
        self.chip.nvs_path.unlink(missing_ok=True)
        try:
            install_flash(self.flash, tree, self.board_file)
        except VmError as e:
            raise DeviceError(str(e)) from e

    def power_cycle(self, off_ms: float = 100) -> None:
        """Cut the power (RAM, RTC memory and RTC time are lost; flash and NVS stay), restore."""
        def cut():
            self.kill()
            self.chip.power_lost()
            self.clock.call_later(off_ms, lambda: self._boot(PWRON_RESET, 0))
        self.loop.call(cut)

    def hard_reset(self) -> None:
        """The EN (reset) button."""
        self.loop.call(lambda: self.restart(HARD_RESET))

    def stop(self) -> None:
        """Power off and release everything."""
        if not self.loop.running:
            return
        self.loop.call(self.kill)
        self.loop.stop()
        self.console.close()
        self._tmp.cleanup()

    def __enter__(self) -> VirtualDevice:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- running (test thread) ---------------------------------------------------------------
    def run_for(self, ms: float, timeout_s: float = 60) -> None:
        """Let `ms` of device time pass (virtual: as fast as the firmware allows)."""
        if not self.clock.virtual:
            time.sleep(ms / 1000.0)
            self._raise_errors()
            return
        target = self.clock.now_us() + ms * 1000.0
        loop = self.loop
        # Pure time: the board may skip its idles without asking, up to the target (a lease).
        loop.lease_ok = True
        try:
            self.run_until(lambda: self.clock.now_us() >= target, timeout_s=timeout_s,
                           horizon_us=target)
        finally:
            loop.lease_ok = loop.horizon == INF

    def run_until(self, pred: Callable[[], bool], timeout_ms: float = 60_000, timeout_s: float = 60,
                  horizon_us: float | None = None) -> bool:
        """Run until pred() is true (checked in the host loop) or timeout_ms of device time."""
        limit = self.clock.now_us() + timeout_ms * 1000.0 if horizon_us is None else horizon_us
        deadline = time.monotonic() + timeout_s
        loop = self.loop
        with loop.cond:
            if self.clock.virtual:
                loop.horizon = max(loop.horizon, limit)
            loop.stop_pred = pred  # the host loop stops moving time once this holds
            loop.kick()
            while True:
                if pred():
                    break
                if self.clock.now_us() >= limit:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeviceError(
                        f"device time stuck at {self.clock.now_ms():.0f} ms for {timeout_s} s "
                        f"(state {self.state}); console tail:\n{self.output[-1500:]}")
                loop.cond.wait(min(left, 0.05))
            loop.stop_pred = None
            if loop.horizon != INF:
                loop.horizon = self.clock.now_us()  # time stands still until the next run
        self._raise_errors()
        return bool(pred())

    def wait_output(self, text: str, timeout_ms: float = 60_000) -> bool:
        return self.run_until(lambda: text in self.output, timeout_ms=timeout_ms)

    def line(self, prefix: str) -> str | None:
        """The first complete console line starting with prefix, or None."""
        for ln in self.output.split("\n")[:-1]:
            if ln.startswith(prefix):
                return ln.rstrip("\r")
        return None

    def wait_line(self, prefix: str, timeout_ms: float = 60_000, timeout_s: float = 60) -> str:
        """Run until a complete console line starts with prefix; return it."""
        if not self.run_until(lambda: self.line(prefix) is not None, timeout_ms=timeout_ms,
                              timeout_s=timeout_s):
            raise DeviceError(f"no line {prefix!r} within {timeout_ms} ms; console tail:\n"
                              f"{self.output[-1500:]}")
        return self.line(prefix) or ""

    def _raise_errors(self) -> None:
        if self.errors:
            e = self.errors.pop(0)
            raise DeviceError(f"a hardware model failed: {e!r}\n{''.join(traceback.format_exception(e))[-1500:]}") from e

    # -- the wire (host loop thread) ---------------------------------------------------------
    def model_failed(self, e: BaseException) -> None:
        """A hardware model raised: the board carries on, the test hears of it."""
        self.errors.append(e)

    def send_frame(self, kind: int, payload: bytes = b"") -> None:
        if self.chip_run is not None:
            self.chip_run.send(kind, payload)

    def reply(self, payload: bytes) -> None:
        """The answer to the request the board waits on."""
        self.send_frame(K.REPLY, payload)

    def send_event(self, kind: int, payload: bytes) -> None:
        """An event stamped with the device time (a UART's bytes, a pin's level)."""
        # Events reach only a running board: a UART's bytes are lost while the chip is off.
        if self.state != "running":
            return
        self.loop.event_sent()
        self.send_frame(kind, struct.pack(">q", int(self.clock.now_us())) + payload)

    def read_chan(self) -> None:
        run = self.chip_run
        if run is None:
            return
        got = run.receive()
        if got is None:
            self._board_exited()
            return
        for kind, t_us, payload in got:
            self.loop.board_spoke(kind, t_us)
            handler = self.chip.handlers.get(kind)
            if handler is None:
                self.model_failed(DeviceError(
                    f"unknown frame {NAMES.get(kind, hex(kind))} from the board"))
            else:
                handler(payload)
            if self.chip_run is not run:
                break  # the chip reset or slept: the rest was never sent

    # -- the chip's power lifecycle (host loop thread) ---------------------------------------
    def _boot(self, cause: int, wake: int, mode: str = "normal", strap: bool = True) -> None:
        self.kill()
        self.chip.boot_cause, self.chip.boot_wake = cause, wake
        if strap and cause in (PWRON_RESET, HARD_RESET) and self.pin(BOOT_STRAP_GPIO).external == 0:
            self._enter_download(cause)
            return
        problem = self.spiflash.boot_check(self.soc)
        if problem:  # the ROM finds no bootable image and stops there
            self.console.note(f"{problem}\r\n")
            self.state = "halted"
            self.reset_causes.append(cause)
            return
        self.chip_run = ChipRun(flash=self.flash, heap_kb=self.heap_kb,
                                tty=self.console.device_tty(), mode=mode,
                                virtual=self.clock.virtual, cpu_scale=self.cpu_scale,
                                romfs=self.spiflash.romfs_partition(self.soc)
                                if self.image == "romfs" else None)
        self.loop.board_started(self.chip_run.rfd)
        self.state = "running"
        self.boots += 1
        self.reset_causes.append(cause)

    def _enter_download(self, cause: int) -> None:
        """BOOT held low at reset: the ROM waits for esptool on the USB serial port."""
        self.state = "download"
        self.reset_causes.append(cause)

        def run_app():  # FLASH_END "run", or the stub's RUN_USER_CODE: boot, BOOT not sampled
            self.clock.post(lambda: self._boot(HARD_RESET, 0, strap=False))

        self.rom = RomLoader(RomChip(self.soc, self.unique_id), self.spiflash,
                             self.console.to_usb, run_app)
        self.console.note(self.rom.banner().decode())

    def kill(self) -> None:
        """The chip stops: the process dies wherever it is (nothing unflushed survives)."""
        self.rom = None
        run, self.chip_run = self.chip_run, None
        self.loop.board_stopped()
        if run is not None:
            self._cpu_done_s += run.cpu_s()
            run.kill()
        self.chip.stopped()
        self.state = "off"

    def restart(self, cause: int) -> None:
        self._boot(cause, 0)

    def soft_reboot(self, mode: str = "normal") -> None:
        """MicroPython's soft reset: a new VM, the reset cause unchanged."""
        self.kill()
        self.console.soft_reboot_banner()
        self._boot(self.chip.boot_cause, self.chip.boot_wake, mode=mode)

    def _board_exited(self) -> None:
        # The VM ended by itself (Ctrl-D at the REPL, sys.exit, a crash): a soft reboot.
        run = self.chip_run
        rc = run.exit_code() if run else 0
        self.kill()
        self.console.soft_reboot_banner()
        if rc not in (0, -signal.SIGKILL):
            self.console.note(f"[virtual board: VM exited with {rc}, rebooting]\r\n")
        self._boot(self.chip.boot_cause, self.chip.boot_wake)

    def deep_sleep(self) -> None:
        self.kill()
        self.state = "sleeping"

    def check_wake_pins(self) -> None:
        if self.state == "sleeping":
            reason = self.chip.wake_reason()
            if reason:
                self.wake_from_sleep(reason)

    def wake_from_sleep(self, reason: int) -> None:
        if self.state == "sleeping":
            self._boot(DEEPSLEEP_RESET, reason)
