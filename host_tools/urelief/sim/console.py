"""The virtual board's USB serial console.

The MicroPython process reads and writes a raw pseudo-terminal (the board side). Everything it
prints is kept for tests (`VirtualDevice.output`) and, when a USB port is opened, relayed to a
second raw pseudo-terminal that real tools (mpremote, miniterm) open. On the way in, the bridge
does what a board's USB/UART driver does and the unix port does not:
- Ctrl-C while code runs raises KeyboardInterrupt (the byte is consumed): a frame to the board's
  shims, raised where the code next waits or touches hardware; a board that does not take it
  within 200 ms (a busy loop) gets a SIGINT;
- Ctrl-D at an empty raw REPL is a soft reset: the VM restarts, runs boot.py, and comes back in
  the raw REPL announcing `MPY: soft reboot` then `raw REPL; CTRL-B to exit`.
"""

from __future__ import annotations

import os
import pty
import tty
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from urelief.sim.port import BoardPort

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
MAX_KEPT = 8 * 1024 * 1024  # bytes of console output kept for tests


class Console:
    def __init__(self, port: BoardPort):
        self._port = port
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        port.watch(self._master, "console")
        self._out = bytearray()
        self._tail = b""
        self._raw_empty = False  # the raw REPL is waiting with nothing typed
        self._hiding = False  # after a raw soft reset: hide output until the raw banner
        self._hidden = bytearray()
        self._usb_master = self._usb_slave = -1
        self.usb_path: str | None = None

    def device_tty(self) -> int:
        return self._slave

    def text(self) -> str:
        return self._out.decode("utf-8", "replace")

    def open_usb(self) -> str:
        """Create the host-facing serial port; returns its path (give it to mpremote)."""
        if self.usb_path is None:
            self._usb_master, self._usb_slave = pty.openpty()
            tty.setraw(self._usb_slave)  # keep the slave open: a tool may come and go
            os.set_blocking(self._usb_master, False)
            self._port.watch(self._usb_master, "usb")
            self.usb_path = os.ttyname(self._usb_slave)
        return self.usb_path

    def write(self, data: bytes) -> None:
        """Type into the console as a USB host would (thread-safe)."""
        self._port.call(lambda: self._from_host(bytes(data)))

    def note(self, text: str) -> None:
        self._to_host(text.encode())

    def soft_reboot_banner(self) -> None:
        self._to_host(b"MPY: soft reboot\r\n")

    def close(self) -> None:
        for fd in (self._master, self._slave, self._usb_master, self._usb_slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass

    # -- the host loop's side ----------------------------------------------------------------
    def on_readable(self, tag: str) -> None:
        fd = self._master if tag == "console" else self._usb_master
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            return
        if tag == "console":
            self._from_board(data)
        else:
            self._from_host(data)

    def drain(self) -> None:
        """Take in everything the board has printed so far."""
        while True:
            try:
                data = os.read(self._master, 65536)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            self._from_board(data)

    def _from_board(self, data: bytes) -> None:
        if self._hiding:
            self._hidden += data
            i = self._hidden.find(RAW_BANNER)
            if i < 0:
                return
            data = bytes(self._hidden[i:])
            self._hidden.clear()
            self._hiding = False
        self._to_host(data)
        self._tail = (self._tail + data)[-64:]
        self._raw_empty = self._tail.endswith(RAW_BANNER + b">") or self._tail.endswith(b"\x04>")

    def _to_host(self, data: bytes) -> None:
        self._out += data
        if len(self._out) > MAX_KEPT:
            del self._out[: len(self._out) - MAX_KEPT]
        if self._usb_master >= 0:
            try:
                os.write(self._usb_master, data)
            except (BlockingIOError, OSError):
                pass  # nobody reading: a USB CDC port drops what the host does not take

    def to_usb(self, data: bytes) -> None:
        """Bytes for the USB host only (the ROM loader's binary answers; kept out of output)."""
        if self._usb_master >= 0:
            try:
                os.write(self._usb_master, data)
            except (BlockingIOError, OSError):
                pass

    def _from_host(self, data: bytes) -> None:
        rom = self._port.rom()
        if rom is not None:
            rom.feed(data)
            return
        fwd = bytearray()
        for b in data:
            if b == 0x03 and self._port.code_running():
                self._send(fwd)
                fwd.clear()
                self._port.interrupt()
                continue
            if b == 0x04 and self._raw_empty and not fwd:
                self._raw_soft_reset()
                return  # the rest is for the board after it reboots; a tool waits first
            fwd.append(b)
            self._raw_empty = False
        self._send(fwd)

    def _send(self, data: bytes | bytearray) -> None:
        if data:
            try:
                os.write(self._master, data)
            except (BlockingIOError, OSError):
                pass

    def _raw_soft_reset(self) -> None:
        # What the old VM still printed is hidden with the new one's boot.py output, up to the
        # raw REPL's banner (mpremote expects nothing else after its Ctrl-D).
        self._raw_empty = False
        self._hiding = True
        self._hidden.clear()
        self._tail = b""
        self._port.soft_reset(raw=True)
        self._send(b"\r\x01")  # back into the raw REPL once boot.py has run
