"""The electrical side of the virtual board's pins, UARTs and ADC, as the host models see them.

Hardware models (button, battery, modem, GNSS receiver) use only these objects and the clock.
All callbacks run in the device's host loop thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from urelief.sim.device import VirtualDevice

MODE_IN, MODE_OUT, MODE_OPEN_DRAIN = 0, 1, 2
PULL_NONE, PULL_UP, PULL_DOWN = 0, 1, 2


class HostPin:
    def __init__(self, dev: VirtualDevice, gpio: int):
        self._dev, self.gpio = dev, gpio
        self.mode, self.pull = MODE_IN, PULL_NONE
        self.external: int | None = None  # what the outside world drives: 0, 1, or None (floating)
        self.out_level = 0  # what the firmware drives (outputs)
        self._watchers: list[Callable[[int, float], None]] = []

    @property
    def level(self) -> int:
        """The level at the pad: the firmware's drive on outputs, else the external drive, else
        the pull (a floating input without pull reads 0)."""
        if self.mode == MODE_OUT:
            return self.out_level
        if self.mode == MODE_OPEN_DRAIN and self.out_level == 0:
            return 0
        if self.external is not None:
            return self.external
        return 1 if self.pull == PULL_UP else 0

    def drive(self, level: int | None) -> None:
        """Drive the pad from outside (a button to ground drives 0; release: None)."""
        self._dev._pin_changing(self, lambda: setattr(self, "external", level))

    def on_change(self, cb: Callable[[int, float], None]) -> None:
        """cb(level, t_ms) whenever the firmware changes this pin's output level."""
        self._watchers.append(cb)

    # from the device
    def _configured(self, mode: int, pull: int) -> None:
        self._dev._pin_changing(self, lambda: (setattr(self, "mode", mode), setattr(self, "pull", pull)))

    def _written(self, level: int, t_ms: float) -> None:
        old = self.level
        self.out_level = level
        if self.level != old or self.mode != MODE_IN:
            for cb in list(self._watchers):
                cb(self.level, t_ms)


class UartPeer(Protocol):
    def on_device_tx(self, data: bytes) -> None: ...


class HostUart:
    def __init__(self, dev: VirtualDevice, uart_id: int):
        self._dev, self.uart_id = dev, uart_id
        self.peers: list[UartPeer] = []
        self.tx_log = bytearray()  # everything the firmware sent (kept for tests; trimmed)

    def attach(self, peer: UartPeer) -> None:
        self.peers.append(peer)

    def send(self, data: bytes) -> None:
        """Bytes arriving on the firmware's RX line, now."""
        if data:
            self._dev._send_event(0x55, bytes((self.uart_id,)) + bytes(data))

    def _from_device(self, data: bytes) -> None:
        self.tx_log += data
        del self.tx_log[:-65536]
        for p in list(self.peers):
            p.on_device_tx(data)


class HostAdc:
    def __init__(self, gpio: int):
        self.gpio = gpio
        self.mv: float = 0.0
        self.source: Callable[[], float] | None = None  # optional live model, returns mV

    def set_mv(self, mv: float) -> None:
        self.mv, self.source = float(mv), None

    def read_uv(self) -> int:
        mv = self.source() if self.source else self.mv
        return int(round(mv * 1000))
