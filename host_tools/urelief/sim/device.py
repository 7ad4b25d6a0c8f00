"""One powered-on virtual board: the real firmware on a real MicroPython VM.

Processes and channels (see docs/architecture.md):
- the board is a `micropython -i _vboot.py` process (heap capped like an ESP32); its USB serial
  console is a pseudo-terminal, its peripherals a framed pipe pair to this host object;
- this object's loop thread owns the clock, the hardware models' timers, the pins, UARTs and
  ADC, the watchdog and the power state; resets and deep sleep end the process and start a new
  one against the same littlefs flash image, exactly as the chip reboots.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from urelief.paths import BOARDS, BUILD_FIRMWARE
from urelief.sim import vm
from urelief.sim.clock import INF, Clock
from urelief.sim.console import Console, sigint_caught
from urelief.sim.peripherals import HostAdc, HostI2c, HostPin, HostUart
from urelief.sim.romloader import Chip, RomLoader
from urelief.sim.spiflash import SpiFlash

SHIMS = Path(__file__).with_name("shims")
FLASH_BLOCKS = 512  # 2 MiB littlefs partition of 4 KiB blocks (ESP32 4 MB flash layout)
SHIM_RESERVE_KB = 48  # heap the Python peripheral shims may use on top of the firmware's budget
BOOT_STRAP_GPIO = 0  # held low at a chip reset: ROM serial download mode (ESP32, ESP32-S3)

# machine.reset_cause() / wake_reason() values (ESP32 port)
PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5
EXT0_WAKE, EXT1_WAKE, TIMER_WAKE = 2, 3, 4

_EVENT_FRAMES = (0x55, 0x45)  # U, E: count towards the device's `events`


class DeviceError(RuntimeError):
    pass


PSRAM_HEAP_KB = 512  # MicroPython's heap on a PSRAM board is megabytes; capped so leaks show


def board_heap_kb(board: dict) -> int:
    """The MicroPython heap a board gives the firmware: ~96 KB on a plain ESP32 / ESP32-S3
    (the GC heap grows to ~110 KB in all), far more with PSRAM."""
    return PSRAM_HEAP_KB if board.get("psram", "none") != "none" else vm.DEFAULT_HEAP_KB


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
    ):
        if clock not in ("virtual", "real"):
            raise ValueError("clock must be 'virtual' or 'real'")
        self.board_file = Path(board) if str(board).endswith(".json") else BOARDS / f"{board}.json"
        self.board = json.loads(self.board_file.read_text())
        self.heap_kb = heap_kb if heap_kb is not None else board_heap_kb(self.board)
        self._tmp = tempfile.TemporaryDirectory(prefix="urelief-dev-")
        self.flash = Path(flash) if flash else Path(self._tmp.name) / "flash.img"
        self.firmware = Path(firmware) if firmware else BUILD_FIRMWARE
        self.unique_id = unique_id or os.urandom(6)
        self.clock = Clock(clock == "virtual", kick=self._kick)
        # Tests step virtual time with run_for; an interactive device runs ahead freely.
        self._horizon = INF if (run_ahead if run_ahead is not None else not self.clock.virtual) else 0.0
        self._pins: dict[int, HostPin] = {}
        self._uarts: dict[int, HostUart] = {}
        self._adcs: dict[int, HostAdc] = {}
        self._i2cs: dict[int, HostI2c] = {}
        self.reset_causes: list[int] = []
        self.heap_peak = {"alloc": 0, "live": 0}
        self.errors: list[BaseException] = []
        self.state = "off"  # off | running | sleeping | download (ROM loader) | halted (no app)
        self.soc = self.board.get("soc", "esp32s3")
        self.spiflash = SpiFlash(self.flash, 4096 * FLASH_BLOCKS)
        self.rom: RomLoader | None = None  # the ROM's serial loader while in download mode
        self._proc: subprocess.Popen | None = None
        self._rx = bytearray()
        self._to_dev = bytearray()
        self._chan_r = self._chan_w = -1
        self._sent_events = 0
        self._idle_events = 0
        self._boot_cause, self._boot_wake = PWRON_RESET, 0
        self._idle: tuple[str, float] | None = None  # (kind 'idle'|'light', until_us) owed a W
        self._idle_real = (0.0, 0.0)  # (monotonic s, device us) when a held idle began
        self._last_msg = (0.0, 0.0)  # (monotonic s, device us) of the last frame from the board
        self._wdt_ms = 0
        self._wdt_timer = None
        self._wake_cfg: dict[str, tuple] = {}
        self._sleep_timer = None
        self._rtc_mem = b""
        self._rtc_offset_us = 946684800 * 1_000_000  # RTC at 2000-01-01 after power-on
        self._nvs_path = self.flash.with_name(self.flash.name + ".nvs.json")
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._sel = selectors.DefaultSelector()
        self._kick_r, self._kick_w = os.pipe()
        os.set_blocking(self._kick_r, False)
        os.set_blocking(self._kick_w, False)
        self._sel.register(self._kick_r, selectors.EVENT_READ, "kick")
        self.console = Console(self)
        self._thread: threading.Thread | None = None
        self._watching_w = -1
        self._notified = 0.0
        # Leases only while time alone is awaited (run_for, or running ahead freely): a wait on
        # a predicate must see the board stop where the predicate turned true.
        self._lease_ok = self._horizon == INF
        self._stop_pred: Callable[[], bool] | None = None
        self._stopping = False
        self._more = False  # the host loop stopped moving time with more still due
        self._intr_at: float | None = None  # monotonic s of a Ctrl-C the board has not taken
        self.boots = 0

    # -- the public hardware -----------------------------------------------------------------
    def pin(self, gpio: int) -> HostPin:
        return self._pins.setdefault(gpio, HostPin(self, gpio))

    def uart(self, uart_id: int) -> HostUart:
        return self._uarts.setdefault(uart_id, HostUart(self, uart_id))

    def adc(self, gpio: int) -> HostAdc:
        return self._adcs.setdefault(gpio, HostAdc(gpio))

    def i2c(self, bus_id: int) -> HostI2c:
        return self._i2cs.setdefault(bus_id, HostI2c(bus_id))

    @property
    def output(self) -> str:
        return self.console.text()

    @property
    def reset_cause(self) -> int | None:
        return self.reset_causes[-1] if self.reset_causes else None

    # -- power ------------------------------------------------------------------------------
    def start(self) -> VirtualDevice:
        """Power on (making a factory flash image from `firmware` if there is none yet)."""
        if not self.flash.exists() or self.flash.stat().st_size == 0:
            self.format_flash(self.firmware)
        self._thread = threading.Thread(target=self._loop, name="urelief-device", daemon=True)
        self._thread.start()
        self._call(lambda: self._spawn(PWRON_RESET, 0))
        return self

    def format_flash(self, tree: Path | None) -> None:
        """Erase the flash and install `tree` (a deployed firmware directory) on littlefs."""
        if tree is not None and not Path(tree).is_dir():
            raise DeviceError(f"no firmware tree at {tree}: run `make build`")
        self.flash.parent.mkdir(parents=True, exist_ok=True)
        with open(self.flash, "wb") as f:
            f.write(b"\xff" * 4096 * FLASH_BLOCKS)
        self._nvs_path.unlink(missing_ok=True)
        env = vm.micropython_env([SHIMS])
        env.update(URELIEF_MODE="install", URELIEF_FLASH=str(self.flash),
                   URELIEF_FLASH_BLOCKS=str(FLASH_BLOCKS),
                   URELIEF_INSTALL_SRC=str(Path(tree).resolve()) if tree else "",
                   URELIEF_INSTALL_BOARD=str(self.board_file.resolve()))
        proc = subprocess.run([vm.micropython_exe(), str(SHIMS / "_vboot.py")], env=env,
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise DeviceError(f"flash install failed: {proc.stdout}{proc.stderr}")

    def power_cycle(self, off_ms: float = 100) -> None:
        """Cut the power (RAM, RTC memory and RTC time are lost; flash and NVS stay), restore."""
        def cut():
            self._kill()
            self._rtc_mem = b""
            self._rtc_offset_us = 946684800 * 1_000_000
            self.clock.call_later(off_ms, lambda: self._spawn(PWRON_RESET, 0))
        self._call(cut)

    def hard_reset(self) -> None:
        """The EN (reset) button."""
        self._call(lambda: self._restart(HARD_RESET))

    def stop(self) -> None:
        """Power off and release everything."""
        if self._thread is None:
            return
        self._call(self._kill)
        self._stopping = True
        self._kick()
        self._thread.join(5)
        self._thread = None
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
        # Pure time: the board may skip its idles without asking, up to the target (a lease).
        self._lease_ok = True
        try:
            self.run_until(lambda: self.clock.now_us() >= target, timeout_s=timeout_s,
                           horizon_us=target)
        finally:
            self._lease_ok = self._horizon == INF

    def run_until(self, pred: Callable[[], bool], timeout_ms: float = 60_000, timeout_s: float = 60,
                  horizon_us: float | None = None) -> bool:
        """Run until pred() is true (checked in the host loop) or timeout_ms of device time."""
        limit = self.clock.now_us() + timeout_ms * 1000.0 if horizon_us is None else horizon_us
        deadline = time.monotonic() + timeout_s
        with self._cond:
            if self.clock.virtual:
                self._horizon = max(self._horizon, limit)
            self._stop_pred = pred  # the host loop stops moving time once this holds
            self._kick()
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
                self._cond.wait(min(left, 0.05))
            self._stop_pred = None
            if self._horizon != INF:
                self._horizon = self.clock.now_us()  # time stands still until the next run
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
            raise DeviceError(f"a hardware model failed: {e!r}") from e

    # -- to the board ------------------------------------------------------------------------
    def _send_frame(self, kind: int, payload: bytes = b"") -> None:
        if self._chan_w < 0:
            return
        self._to_dev += struct.pack(">BH", kind, len(payload)) + payload
        self._flush_to_dev()

    def _send_event(self, kind: int, payload: bytes) -> None:
        # Events reach only a running board: a UART's bytes are lost while the chip is off.
        if self.state != "running":
            return
        self._sent_events += 1
        self._send_frame(kind, struct.pack(">q", int(self.clock.now_us())) + payload)

    def _flush_to_dev(self) -> None:
        while self._to_dev and self._chan_w >= 0:
            try:
                n = os.write(self._chan_w, self._to_dev[:65536])
            except BlockingIOError:
                return
            except OSError:
                self._to_dev.clear()
                return
            del self._to_dev[:n]

    def _pin_changing(self, pin: HostPin, change: Callable[[], None]) -> None:
        def apply():
            old = pin.level
            change()
            if pin.level != old:
                self._send_event(0x45, bytes((pin.gpio, pin.level)))
                self._check_wake_pins()
        self._call(apply)

    # -- host loop ---------------------------------------------------------------------------
    def _kick(self) -> None:
        try:
            os.write(self._kick_w, b"k")
        except (BlockingIOError, OSError):
            pass

    def _call(self, fn: Callable[[], None]) -> None:
        """Run fn in the host loop (now, if this is the host loop)."""
        if threading.current_thread() is self._thread:
            fn()
        else:
            self.clock.post(fn)

    def _error(self, e: BaseException) -> None:
        self.errors.append(e)

    def _loop(self) -> None:
        while not self._stopping:
            timeout = self._select_timeout()
            for key, _ in self._sel.select(timeout):
                with self._lock:
                    tag = key.data
                    if tag == "kick":
                        try:
                            os.read(self._kick_r, 4096)
                        except BlockingIOError:
                            pass
                    elif tag == "chan":
                        self._read_chan()
                    elif tag == "chan_w":
                        self._flush_to_dev()
                    else:
                        self.console.on_readable(tag)
            with self._lock:
                self.clock.run_posts(self._error)
                self._check_interrupt()
                self._tick()
                self._update_write_interest()
                # Wake a waiting test thread now and then, not at every frame (GIL contention).
                now = time.monotonic()
                if now - self._notified > 0.002 or self._idle is not None:
                    self._notified = now
                    self._cond.notify_all()
        with self._lock:
            self._kill()

    def _select_timeout(self) -> float | None:
        if self._intr_at is not None:
            return 0.05
        if not self.clock.virtual:
            nxt = self.clock.next_due_us()
            return None if nxt == INF else max(0.0, (nxt - self.clock.now_us()) / 1e6)
        if self._more:
            return 0.0
        if self.clock.held and (self._idle or self.state == "sleeping"):
            return 0.005
        if self.state == "running" and self._idle is None:
            nxt = self.clock.next_due_us()
            return 0.05 if nxt == INF else min(0.05, max(0.0, (nxt - self.clock.now_us()) / 1e6))
        return None

    def _update_write_interest(self) -> None:
        # Watch the pipe for room only while bytes wait (rare: the board reads promptly).
        want = self._chan_w if self._to_dev and self._chan_w >= 0 else -1
        if want == self._watching_w:
            return
        if self._watching_w >= 0:
            try:
                self._sel.unregister(self._watching_w)
            except (KeyError, ValueError):
                pass
        if want >= 0:
            self._sel.register(want, selectors.EVENT_WRITE, "chan_w")
        self._watching_w = want

    def _tick(self) -> None:
        c = self.clock
        if not c.virtual:
            c.advance_to(c.now_us(), self._error)
            return
        if self.state == "running" and self._idle is None:
            # A busy board (running code, or blocked at its REPL) lives in real time.
            t0, d0 = self._last_msg
            c.advance_to(d0 + (time.monotonic() - t0) * 1e6, self._error)
            return
        # The board waits (idle, light or deep sleep) or is off: move time to the next thing.
        # A bounded number of steps per tick: the models' periodic timers never run out while
        # time may run ahead freely, and the loop must still see the USB port and a stop().
        self._more = False
        for _ in range(256):
            if self._stopping or not (self._idle is not None or
                                      self.state in ("sleeping", "off", "download", "halted")):
                return
            if self._idle is not None and self._idle_woken():
                return
            if self._stop_pred is not None:
                self.console.drain()  # what the board printed before it idled
                if self._stop_pred():
                    return
            until = self._idle[1] if self._idle else INF
            nxt = min(until, c.next_due_us(), self._horizon)
            if nxt == INF:
                return
            if c.held:
                wall0, dev0 = self._idle_real
                due_wall = wall0 + (nxt - dev0) / 1e6
                if time.monotonic() < due_wall:
                    c.advance_to(dev0 + (time.monotonic() - wall0) * 1e6, self._error)
                    return
            if nxt > c.now_us() or nxt == c.now_us():
                c.advance_to(nxt, self._error)
            if self._idle is not None and self._idle_woken():
                return
            if self._idle is not None and c.now_us() >= until:
                self._wake_board()
                return
            if c.now_us() >= self._horizon and c.next_due_us() > self._horizon:
                return  # wait for the test to allow more time
        self._more = True  # more to do: come back at once, after a look at the descriptors

    def _idle_woken(self) -> bool:
        if self._idle is not None and self._sent_events > self._idle_events:
            self._wake_board()
            return True
        return False

    def _wake_board(self) -> None:
        # The lease lets the board skip its own idles up to the next thing the host has
        # scheduled (or the horizon) without a round trip; it ends when the board speaks.
        self._idle = None
        lease = 0.0
        if self._lease_ok and self.clock.virtual and not self.clock.held and not self.clock._posts:
            lease = min(self.clock.next_due_us(), self._horizon)
        lease = min(lease, 2**62)
        self._send_frame(0x57, struct.pack(">qq", int(self.clock.now_us()), int(lease)))

    # -- frames from the board ---------------------------------------------------------------
    def _read_chan(self) -> None:
        try:
            data = os.read(self._chan_r, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._board_exited()
            return
        self._rx += data
        while len(self._rx) >= 3:
            kind, n = struct.unpack_from(">BH", self._rx)
            if len(self._rx) < 3 + n:
                break
            payload = bytes(self._rx[3:3 + n])
            del self._rx[:3 + n]
            t_us = struct.unpack_from(">q", payload)[0]
            self._on_frame(kind, t_us, payload[8:])
            if self._proc is None:
                break

    def _on_frame(self, kind: int, t_us: float, p: bytes) -> None:
        c = self.clock
        if c.virtual:
            self._last_msg = (time.monotonic(), t_us)
            if t_us > c.now_us():
                c.advance_to(t_us, self._error)
        handler = self._FRAMES.get(kind)
        if handler is None:
            self._error(DeviceError(f"unknown frame {kind:#x} from the board"))
            return
        handler(self, p)

    def _f_boot(self, p: bytes) -> None:
        levels = {str(g): pin.level for g, pin in self._pins.items()}
        info = dict(now_us=int(self.clock.now_us()), reset_cause=self._boot_cause,
                    wake_reason=self._boot_wake, rtc_mem=self._rtc_mem.hex(),
                    rtc_offset_us=self._rtc_offset_us, unique_id=self.unique_id.hex(),
                    levels=levels)
        self._send_frame(0x56, json.dumps(info).encode())

    def _f_idle(self, p: bytes, kind: str = "idle") -> None:
        until, seen = struct.unpack(">qI", p)
        if kind == "light":
            until = -1 if until < 0 else self.clock.now_us() + until * 1000
        self._idle = (kind, INF if until < 0 else float(until))
        self._idle_events = seen
        self._idle_real = (time.monotonic(), self.clock.now_us())

    def _f_light(self, p: bytes) -> None:
        self._f_idle(p, "light")

    def _f_uart(self, p: bytes) -> None:
        self.uart(p[0])._from_device(p[1:])

    def _f_pin_out(self, p: bytes) -> None:
        self.pin(p[0])._written(p[1], self.clock.now_ms())

    def _f_pin_cfg(self, p: bytes) -> None:
        pin = self.pin(p[0])
        pin.mode, pin.pull = p[1], p[2]
        self._send_frame(0x56, bytes((pin.level,)))

    def _f_adc(self, p: bytes) -> None:
        self._send_frame(0x56, struct.pack(">i", self.adc(p[0]).read_uv()))

    def _f_i2c(self, p: bytes) -> None:
        bus, addr, op, n = struct.unpack_from(">BBBH", p)
        try:
            got = self.i2c(bus).transfer(op, addr, n, p[5:])
        except Exception as e:  # a broken model NACKs, and the test hears of it
            self._error(e)
            got = None
        self._send_frame(0x56, b"\x01" if got is None else b"\x00" + got)

    def _f_wdt(self, p: bytes) -> None:
        self._wdt_ms = struct.unpack(">i", p)[0]
        self._f_feed(b"")

    def _f_feed(self, p: bytes) -> None:
        if self._wdt_ms <= 0:
            return
        if self._wdt_timer is not None:
            self._wdt_timer.cancel()
        self._wdt_timer = self.clock.call_later(self._wdt_ms, lambda: self._restart(WDT_RESET))

    def _f_reset(self, p: bytes) -> None:
        self._restart(SOFT_RESET)

    def _f_deepsleep(self, p: bytes) -> None:
        ms = struct.unpack(">q", p)[0]
        self._kill()
        self.state = "sleeping"
        if ms > 0:
            self._sleep_timer = self.clock.call_later(ms, lambda: self._wake_from_sleep(TIMER_WAKE))
        self._check_wake_pins()

    def _f_wake_cfg(self, p: bytes) -> None:
        kind, gpio, mask, level = struct.unpack(">bbQb", p)
        if kind == 0:
            self._wake_cfg.pop("ext0", None) if gpio < 0 else self._wake_cfg.__setitem__("ext0", (gpio, level))
        else:
            self._wake_cfg["ext1"] = (mask, level)

    def _f_nvs_load(self, p: bytes) -> None:
        store = self._nvs_load()
        self._send_frame(0x56, json.dumps(store.get(p.decode(), {})).encode())

    def _f_nvs_commit(self, p: bytes) -> None:
        n = p[0]
        ns, kv = p[1:1 + n].decode(), json.loads(p[1 + n:])
        store = self._nvs_load()
        store[ns] = kv
        tmp = self._nvs_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(store))
        os.replace(tmp, self._nvs_path)

    def _nvs_load(self) -> dict:
        try:
            return json.loads(self._nvs_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _f_rtc_mem(self, p: bytes) -> None:
        self._rtc_mem = p

    def _f_rtc_set(self, p: bytes) -> None:
        self._rtc_offset_us = struct.unpack(">q", p)[0]

    def _f_heap(self, p: bytes) -> None:
        alloc, live = struct.unpack(">ii", p)
        self.heap_peak["alloc"] = max(self.heap_peak["alloc"], alloc)
        self.heap_peak["live"] = max(self.heap_peak["live"], live)

    def _f_sync(self, p: bytes) -> None:
        pass  # the frame's time stamp is the message

    def _f_intr_taken(self, p: bytes) -> None:
        self._intr_at = None

    _FRAMES = {0x59: _f_sync, 0x42: _f_boot, 0x49: _f_idle, 0x4C: _f_light, 0x54: _f_uart, 0x50: _f_pin_out,
               0x43: _f_pin_cfg, 0x41: _f_adc, 0x44: _f_wdt, 0x46: _f_feed, 0x52: _f_reset,
               0x53: _f_deepsleep, 0x4B: _f_wake_cfg, 0x47: _f_nvs_load, 0x4E: _f_nvs_commit,
               0x4D: _f_rtc_mem, 0x5A: _f_rtc_set, 0x48: _f_heap, 0x51: _f_i2c, 0x58: _f_intr_taken}

    # -- process lifecycle -------------------------------------------------------------------
    def _spawn(self, cause: int, wake: int, mode: str = "normal", strap: bool = True) -> None:
        self._kill()
        self._boot_cause, self._boot_wake = cause, wake
        if strap and cause in (PWRON_RESET, HARD_RESET) and self.pin(BOOT_STRAP_GPIO).external == 0:
            self._enter_download(cause)
            return
        problem = self.spiflash.boot_check(self.soc)
        if problem:  # the ROM finds no bootable image and stops there
            self.console.note(f"{problem}\r\n")
            self.state = "halted"
            self.reset_causes.append(cause)
            return
        h2d_r, h2d_w = os.pipe()
        d2h_r, d2h_w = os.pipe()
        env = vm.micropython_env([SHIMS])
        env.update(URELIEF_CHAN=f"{h2d_r},{d2h_w}", URELIEF_FLASH=str(self.flash),
                   URELIEF_FLASH_BLOCKS=str(FLASH_BLOCKS), URELIEF_MODE=mode,
                   URELIEF_SHIM_RESERVE=str(SHIM_RESERVE_KB * 1024),
                   URELIEF_CLOCK="virtual" if self.clock.virtual else "real")
        slave = self.console.device_tty()

        def child_setup():
            os.setsid()
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # MicroPython installs its own

        self._proc = subprocess.Popen(
            [vm.micropython_exe(), "-X", f"heapsize={self.heap_kb + SHIM_RESERVE_KB}k", "-i",
             str(SHIMS / "_vboot.py")],
            stdin=slave, stdout=slave, stderr=slave, env=env, pass_fds=(h2d_r, d2h_w),
            preexec_fn=child_setup, close_fds=True)
        os.close(h2d_r)
        os.close(d2h_w)
        self._chan_r, self._chan_w = d2h_r, h2d_w
        os.set_blocking(self._chan_r, False)
        os.set_blocking(self._chan_w, False)
        self._sel.register(self._chan_r, selectors.EVENT_READ, "chan")
        self._rx.clear()
        self._to_dev.clear()
        self._sent_events = 0
        self._idle = None
        self._last_msg = (time.monotonic(), self.clock.now_us())
        self.state = "running"
        self.boots += 1
        self.reset_causes.append(cause)

    def _enter_download(self, cause: int) -> None:
        """BOOT held low at reset: the ROM waits for esptool on the USB serial port."""
        self.state = "download"
        self.reset_causes.append(cause)

        def run_app():  # FLASH_END "run", or the stub's RUN_USER_CODE: boot, BOOT not sampled
            self.clock.post(lambda: self._spawn(HARD_RESET, 0, strap=False))

        self.rom = RomLoader(Chip(self.soc, self.unique_id), self.spiflash, self.console.to_usb,
                             run_app)
        self.console.note(self.rom.banner().decode())

    def _interrupt(self) -> None:
        """Ctrl-C from the USB host while code runs (host loop thread)."""
        self._send_frame(0x58)
        self._intr_at = time.monotonic()
        if self._idle is not None:
            self._wake_board()  # an idle board takes it at once

    def _check_interrupt(self) -> None:
        # Not taken within 200 ms: the code runs without waiting (a busy loop), signal the VM.
        if self._intr_at is not None and time.monotonic() - self._intr_at > 0.2:
            self._intr_at = None
            proc = self._proc
            if proc is not None:
                if sigint_caught(proc.pid):
                    proc.send_signal(signal.SIGINT)

    def _kill(self) -> None:
        """The chip stops: the process dies wherever it is (nothing unflushed survives)."""
        self.rom = None
        self._intr_at = None
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
        for fd in (self._chan_r, self._chan_w):
            if fd >= 0:
                try:
                    self._sel.unregister(fd)
                except (KeyError, ValueError):
                    pass
                os.close(fd)
        self._watching_w = -1
        self._chan_r = self._chan_w = -1
        self._idle = None
        for t in (self._wdt_timer, self._sleep_timer):
            if t is not None:
                t.cancel()
        self._wdt_timer = self._sleep_timer = None
        self._wdt_ms = 0
        self.state = "off"

    def _restart(self, cause: int) -> None:
        self._kill()
        self._spawn(cause, 0)

    def _board_exited(self) -> None:
        # The VM ended by itself (Ctrl-D at the REPL, sys.exit, a crash): a soft reboot.
        proc = self._proc
        rc = proc.wait() if proc else 0
        self._kill()
        self.console.soft_reboot_banner()
        if rc not in (0, -signal.SIGKILL):
            self.console.note(f"[virtual board: VM exited with {rc}, rebooting]\r\n")
        self._spawn(self._boot_cause, self._boot_wake)

    # -- deep sleep wake ---------------------------------------------------------------------
    def _check_wake_pins(self) -> None:
        if self.state != "sleeping":
            return
        ext0 = self._wake_cfg.get("ext0")
        if ext0 and self.pin(ext0[0]).level == ext0[1]:
            self._wake_from_sleep(EXT0_WAKE)
            return
        ext1 = self._wake_cfg.get("ext1")
        if ext1:
            mask, level = ext1
            gpios = [g for g in range(64) if mask >> g & 1]
            levels = [self.pin(g).level for g in gpios]
            if (level and any(levels)) or (not level and gpios and not any(levels)):
                self._wake_from_sleep(EXT1_WAKE)

    def _wake_from_sleep(self, reason: int) -> None:
        if self.state == "sleeping":
            self._spawn(DEEPSLEEP_RESET, reason)
