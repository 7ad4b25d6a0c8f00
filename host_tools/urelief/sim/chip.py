"""The ESP32's on-chip peripherals as the host keeps them, answering the board's frames: pins,
UARTs, ADC and I2C (whose electrical side the hardware models drive), the watchdog, NVS, RTC
memory and time, deep-sleep wake sources, and the heap figures the board reports."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from urelief.sim.peripherals import HostAdc, HostI2c, HostPin, HostUart
from urelief.sim.shims import _vframes as K

if TYPE_CHECKING:
    from urelief.sim.device import VirtualDevice
    from urelief.sim.port import BoardPort

# machine.reset_cause() / wake_reason() values (ESP32 port)
PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5
EXT0_WAKE, EXT1_WAKE, TIMER_WAKE = 2, 3, 4
RTC_AT_POWER_ON_US = 946684800 * 1_000_000  # the RTC reads 2000-01-01 after power-on


class Chip:
    """Host loop thread only, except the `pin`/`uart`/`adc`/`i2c` look-ups."""

    def __init__(self, board: VirtualDevice, port: BoardPort, unique_id: bytes, nvs_path: Path):
        self._board, self._port = board, port
        self.clock = board.clock
        self.unique_id = unique_id
        self.pins: dict[int, HostPin] = {}
        self.uarts: dict[int, HostUart] = {}
        self.adcs: dict[int, HostAdc] = {}
        self.i2cs: dict[int, HostI2c] = {}
        self.heap_peak = {"alloc": 0, "live": 0}
        self.boot_cause, self.boot_wake = PWRON_RESET, 0
        self.rtc_mem = b""
        self.rtc_offset_us = RTC_AT_POWER_ON_US
        self.nvs_path = nvs_path
        self._wdt_ms = 0
        self._wdt_timer = None
        self._sleep_timer = None
        self._wake_cfg: dict[str, tuple] = {}
        self.handlers = {
            K.SYNC: lambda p: None,  # the frame's time stamp is the message
            K.BOOT: self._boot, K.IDLE: self._idle, K.LIGHTSLEEP: self._light,
            K.UART_TX: self._uart_tx, K.PIN_OUT: self._pin_out, K.PIN_CFG: self._pin_cfg,
            K.ADC_READ: self._adc, K.I2C: self._i2c, K.WDT_START: self._wdt,
            K.WDT_FEED: self._feed, K.RESET: lambda p: board.restart(SOFT_RESET),
            K.DEEPSLEEP: self._deepsleep, K.WAKE_CFG: self._wake_config,
            K.NVS_LOAD: self._nvs_load, K.NVS_COMMIT: self._nvs_commit,
            K.RTC_MEM: self._rtc_mem, K.RTC_SET: self._rtc_set, K.HEAP: self._heap,
            K.INTR: lambda p: board.loop.interrupt_taken(),
        }

    # -- the peripherals ---------------------------------------------------------------------
    def pin(self, gpio: int) -> HostPin:
        return self.pins.setdefault(gpio, HostPin(self._port, gpio))

    def uart(self, uart_id: int) -> HostUart:
        return self.uarts.setdefault(uart_id, HostUart(self._port, uart_id))

    def adc(self, gpio: int) -> HostAdc:
        return self.adcs.setdefault(gpio, HostAdc(gpio))

    def i2c(self, bus_id: int) -> HostI2c:
        return self.i2cs.setdefault(bus_id, HostI2c(bus_id))

    # -- power -------------------------------------------------------------------------------
    def power_lost(self) -> None:
        """RAM, RTC memory and RTC time go with the power; flash and NVS stay."""
        self.rtc_mem = b""
        self.rtc_offset_us = RTC_AT_POWER_ON_US

    def stopped(self) -> None:
        """The CPU stops (reset, deep sleep, power off): its timers go with it."""
        for t in (self._wdt_timer, self._sleep_timer):
            if t is not None:
                t.cancel()
        self._wdt_timer = self._sleep_timer = None
        self._wdt_ms = 0

    def wake_reason(self) -> int:
        """The deep-sleep wake source the pins satisfy now (0: none)."""
        ext0 = self._wake_cfg.get("ext0")
        if ext0 and self.pin(ext0[0]).level == ext0[1]:
            return EXT0_WAKE
        ext1 = self._wake_cfg.get("ext1")
        if ext1:
            mask, level = ext1
            gpios = [g for g in range(64) if mask >> g & 1]
            levels = [self.pin(g).level for g in gpios]
            if (level and any(levels)) or (not level and gpios and not any(levels)):
                return EXT1_WAKE
        return 0

    # -- frames from the board ---------------------------------------------------------------
    def _boot(self, p: bytes) -> None:
        levels = {str(g): pin.level for g, pin in self.pins.items()}
        info = dict(now_us=int(self.clock.now_us()), reset_cause=self.boot_cause,
                    wake_reason=self.boot_wake, rtc_mem=self.rtc_mem.hex(),
                    rtc_offset_us=self.rtc_offset_us, unique_id=self.unique_id.hex(),
                    levels=levels)
        self._board.reply(json.dumps(info).encode())

    def _idle(self, p: bytes) -> None:
        until, seen = struct.unpack(">qI", p)
        self._board.loop.board_idles(None if until < 0 else float(until), seen)

    def _light(self, p: bytes) -> None:
        ms, seen = struct.unpack(">qI", p)
        self._board.loop.board_idles(None if ms < 0 else self.clock.now_us() + ms * 1000, seen)

    def _uart_tx(self, p: bytes) -> None:
        self.uart(p[0])._from_device(p[1:])

    def _pin_out(self, p: bytes) -> None:
        self.pin(p[0])._written(p[1], self.clock.now_ms())

    def _pin_cfg(self, p: bytes) -> None:
        pin = self.pin(p[0])
        pin.mode, pin.pull = p[1], p[2]
        self._board.reply(bytes((pin.level,)))

    def _adc(self, p: bytes) -> None:
        self._board.reply(struct.pack(">i", self.adc(p[0]).read_uv()))

    def _i2c(self, p: bytes) -> None:
        bus, addr, op, n = struct.unpack_from(">BBBH", p)
        try:
            got = self.i2c(bus).transfer(op, addr, n, p[5:])
        except Exception as e:  # a broken model NACKs, and the test hears of it
            self._board.model_failed(e)
            got = None
        self._board.reply(b"\x01" if got is None else b"\x00" + got)

    def _wdt(self, p: bytes) -> None:
        self._wdt_ms = struct.unpack(">i", p)[0]
        self._feed(b"")

    def _feed(self, p: bytes) -> None:
        if self._wdt_ms <= 0:
            return
        if self._wdt_timer is not None:
            self._wdt_timer.cancel()
        self._wdt_timer = self.clock.call_later(self._wdt_ms,
                                                lambda: self._board.restart(WDT_RESET))

    def _deepsleep(self, p: bytes) -> None:
        ms = struct.unpack(">q", p)[0]
        self._board.deep_sleep()
        if ms > 0:
            self._sleep_timer = self.clock.call_later(
                ms, lambda: self._board.wake_from_sleep(TIMER_WAKE))
        self._board.check_wake_pins()

    def _wake_config(self, p: bytes) -> None:
        kind, gpio, mask, level = struct.unpack(">bbQb", p)
        if kind == 0:
            if gpio < 0:
                self._wake_cfg.pop("ext0", None)
            else:
                self._wake_cfg["ext0"] = (gpio, level)
        else:
            self._wake_cfg["ext1"] = (mask, level)

    def _nvs_load(self, p: bytes) -> None:
        self._board.reply(json.dumps(self._nvs().get(p.decode(), {})).encode())

    def _nvs_commit(self, p: bytes) -> None:
        n = p[0]
        ns, kv = p[1:1 + n].decode(), json.loads(p[1 + n:])
        store = self._nvs()
        store[ns] = kv
        tmp = self.nvs_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(store))
        os.replace(tmp, self.nvs_path)

    def _nvs(self) -> dict:
        try:
            return json.loads(self.nvs_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _rtc_mem(self, p: bytes) -> None:
        self.rtc_mem = p

    def _rtc_set(self, p: bytes) -> None:
        self.rtc_offset_us = struct.unpack(">q", p)[0]

    def _heap(self, p: bytes) -> None:
        alloc, live = struct.unpack(">ii", p)
        self.heap_peak["alloc"] = max(self.heap_peak["alloc"], alloc)
        self.heap_peak["live"] = max(self.heap_peak["live"], live)
