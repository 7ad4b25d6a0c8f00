"""The board as the console and the pin/UART models see it: a few operations, nothing else of
the device. Every method may be called from the host loop thread only, except `call`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from urelief.sim.shims import _vframes as K

if TYPE_CHECKING:
    from urelief.sim.device import VirtualDevice
    from urelief.sim.peripherals import HostPin
    from urelief.sim.romloader import RomLoader


class BoardPort:
    def __init__(self, dev: VirtualDevice):
        self._dev = dev

    def call(self, fn: Callable[[], None]) -> None:
        """Run fn in the host loop (now, if this is the host loop). Any thread."""
        self._dev.loop.call(fn)

    def watch(self, fd: int, tag: str) -> None:
        """The host loop hands `console_readable(tag)` to the console when fd can be read."""
        self._dev.loop.watch(fd, tag)

    # -- what the USB console does to the board ----------------------------------------------
    def rom(self) -> RomLoader | None:
        """The ROM's serial loader while the chip is in download mode."""
        return self._dev.rom

    def code_running(self) -> bool:
        """The VM executes code (a Ctrl-C now interrupts it), as opposed to waiting at the REPL."""
        run = self._dev.chip_run
        return run is not None and run.code_running()

    def interrupt(self) -> None:
        self._dev.loop.interrupt()

    def soft_reset(self, raw: bool) -> None:
        """MicroPython's soft reset: the VM restarts with the same reset cause (raw: straight
        back into the raw REPL after boot.py, main.py not run)."""
        self._dev.soft_reboot(mode="raw" if raw else "normal")

    # -- what the pin and UART models do -----------------------------------------------------
    def drive_pin(self, pin: HostPin, change: Callable[[], None]) -> None:
        """Apply `change` to the pin in the host loop; the board hears of a new level."""
        dev = self._dev

        def apply() -> None:
            old = pin.level
            change()
            if pin.level != old:
                dev.send_event(K.PIN_LEVEL, bytes((pin.gpio, pin.level)))
                dev.check_wake_pins()
        self.call(apply)

    def uart_rx(self, uart_id: int, data: bytes) -> None:
        """Bytes arriving on the board's RX line, now."""
        self._dev.send_event(K.UART_RX, bytes((uart_id,)) + bytes(data))
