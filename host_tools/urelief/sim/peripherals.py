"""The electrical side of the virtual board's pins, UARTs and ADC, as the host models see them.

Hardware models (button, battery, modem, GNSS receiver) use only these objects and the clock.
All callbacks run in the device's host loop thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from urelief.sim.port import BoardPort

MODE_IN, MODE_OUT, MODE_OPEN_DRAIN = 0, 1, 2
PULL_NONE, PULL_UP, PULL_DOWN = 0, 1, 2


class HostPin:
    def __init__(self, port: BoardPort, gpio: int):
        self._port, self.gpio = port, gpio
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
        self._port.drive_pin(self, lambda: setattr(self, "external", level))

    def on_change(self, cb: Callable[[int, float], None]) -> None:
        """cb(level, t_ms) whenever the firmware changes this pin's output level."""
        self._watchers.append(cb)

    # from the device
    def _written(self, level: int, t_ms: float) -> None:
        old = self.level
        self.out_level = level
        if self.level != old or self.mode != MODE_IN:
            for cb in list(self._watchers):
                cb(self.level, t_ms)


class UartPeer(Protocol):
    def on_device_tx(self, data: bytes) -> None: ...


class HostUart:
    def __init__(self, port: BoardPort, uart_id: int):
        self._port, self.uart_id = port, uart_id
        self.peers: list[UartPeer] = []
        self.tx_log = bytearray()  # everything the firmware sent (kept for tests; trimmed)

    def attach(self, peer: UartPeer) -> None:
        self.peers.append(peer)

    def send(self, data: bytes) -> None:
        """Bytes arriving on the firmware's RX line, now."""
        if data:
            self._port.uart_rx(self.uart_id, data)

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


class I2cTarget(Protocol):
    def on_write(self, data: bytes) -> None: ...

    def on_read(self, n: int) -> bytes: ...


class HostI2c:
    """An I2C bus: targets answer at their 7-bit address; others do not acknowledge."""

    def __init__(self, bus_id: int):
        self.bus_id = bus_id
        self.targets: dict[int, I2cTarget] = {}

    def attach(self, addr: int, target: I2cTarget) -> None:
        self.targets[addr] = target

    def transfer(self, op: int, addr: int, n: int, data: bytes) -> bytes | None:
        """op 0 scan, 1 write, 2 read; None is a NACK."""
        if op == 0:
            return bytes(sorted(self.targets))
        target = self.targets.get(addr)
        if target is None:
            return None
        if op == 1:
            target.on_write(data)
            return b""
        out = bytes(target.on_read(n))
        return (out + bytes(n))[:n]


class RegisterTarget:
    """A target with 8-bit registers behind an auto-incrementing pointer (most PMUs and
    sensors): a write sets the pointer then stores bytes; a read returns from the pointer."""

    def __init__(self) -> None:
        self.regs = bytearray(256)
        self.ptr = 0

    def read_reg(self, reg: int) -> int:
        return self.regs[reg]

    def write_reg(self, reg: int, value: int) -> None:
        self.regs[reg] = value

    def on_write(self, data: bytes) -> None:
        if not data:
            return
        self.ptr = data[0]
        for b in data[1:]:
            self.write_reg(self.ptr, b)
            self.ptr = (self.ptr + 1) & 0xFF

    def on_read(self, n: int) -> bytes:
        out = bytearray()
        for _ in range(n):
            out.append(self.read_reg(self.ptr) & 0xFF)
            self.ptr = (self.ptr + 1) & 0xFF
        return bytes(out)
