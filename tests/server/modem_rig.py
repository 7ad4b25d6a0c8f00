"""The project's modem emulator (`urelief.sim.modem`, the one the firmware tests drive) behind a
real pseudo-terminal, as a USB modem looks to pyserial: the gateway opens `rig.port`, bytes go
through the kernel's tty layer, and the emulator answers on a real-time clock. Its SMS side is
a `SmsNetwork`, so a test can put handsets on it and deliver to the modem's own number."""

from __future__ import annotations

import os
import selectors
import threading
import time
import tty

from urelief.sim.clock import Clock
from urelief.sim.modem.dialects import A7670
from urelief.sim.modem.emulator import Timing
from urelief.sim.modem.network import Sms, SmsNetwork

# Datasheet timings shortened so a test does not wait seconds for boot and +CMGS.
FAST = Timing(at_ready_ms=0, sim_ready_ms=20, sms_ready_ms=20, register_ms=20, answer_ms=1,
              sms_submit_ms=30)


class Handset:
    """A phone on the emulated SMS network: `net.attach(number, Handset(), rig.clock)`."""

    def __init__(self):
        self.inbox: list[Sms] = []

    def sms_delivered(self, sms: Sms) -> None:
        self.inbox.append(sms)


class ModemOnPty:
    """`ModemOnPty(network, msisdn)`; `.port` for pyserial; `.modem` is the emulator (faults,
    log); `close()` stops it. Acts as the emulator's board: `.clock` and `.uart(n)`."""

    def __init__(self, network: SmsNetwork, msisdn: str = "+821099900000",
                 link: str | None = None):
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self.link = link  # a stable name (as udev's /dev/serial/by-id/…) that replug re-points
        if link:
            os.symlink(self.port, link)
            self.port = link
        self.plugged = True
        self._plug_to: bool | None = None
        self._kick_r, self._kick_w = os.pipe()
        os.set_blocking(self._kick_w, False)
        self.clock = Clock(virtual=False, kick=self._kick)
        self._stop = False
        self.errors: list[BaseException] = []
        self.modem = A7670(network, msisdn, timing=FAST)
        self.modem.attach(self, pwrkey_gpio=None, powered=True)
        self._thread = threading.Thread(target=self._run, name="modem-pty", daemon=True)
        self._thread.start()

    # -- the emulator's view of the board ------------------------------------------------------
    def uart(self, uart_id: int) -> ModemOnPty:
        return self

    def attach(self, peer) -> None:
        self._peer = peer

    def send(self, data: bytes) -> None:
        """The modem's TX line: into the pty, towards pyserial (nowhere while unplugged)."""
        if self.plugged:
            os.write(self._master, data)

    def unplug(self) -> None:
        """The USB cable out: the host's port is gone (reads fail); the modem, still powered,
        keeps taking SMS into its SIM store."""
        self._plug_to = False
        self._kick()
        self.wait(lambda: not self.plugged)

    def replug(self) -> None:
        """Back in: a new tty under the same stable name."""
        self._plug_to = True
        self._kick()
        self.wait(lambda: self.plugged)

    def _swap(self, sel) -> None:
        want, self._plug_to = self._plug_to, None
        if want is False and self.plugged:
            sel.unregister(self._master)
            os.close(self._master)
            os.close(self._slave)
            self.plugged = False
        elif want is True and not self.plugged:
            self._master, self._slave = os.openpty()
            tty.setraw(self._slave)
            os.replace(self._relink(os.ttyname(self._slave)), self.link)
            sel.register(self._master, selectors.EVENT_READ, "pty")
            self.plugged = True

    def _relink(self, target: str) -> str:
        tmp = self.link + ".new"
        os.symlink(target, tmp)
        return tmp

    # -- the host loop -----------------------------------------------------------------------------
    def _kick(self) -> None:
        try:
            os.write(self._kick_w, b"k")
        except BlockingIOError:
            pass

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._master, selectors.EVENT_READ, "pty")
        sel.register(self._kick_r, selectors.EVENT_READ, "kick")
        while not self._stop:
            due = self.clock.next_due_us()
            wait = None if due == float("inf") else max(0.0, (due - self.clock.now_us()) / 1e6)
            if self._plug_to is not None:
                self._swap(sel)
            for key, _ in sel.select(min(wait, 0.5) if wait is not None else 0.5):
                try:
                    data = os.read(key.fd, 4096)
                except OSError:
                    return
                if key.data == "pty" and data:
                    self.modem.on_device_tx(data)
            self.clock.run_posts(self.errors.append)
            self.clock.advance_to(self.clock.now_us(), self.errors.append)

    def call(self, fn) -> None:
        """Run fn() on the emulator's thread (faults are flipped there)."""
        self.clock.post(fn)

    def wait(self, predicate, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("the emulated modem never got there")
            time.sleep(0.01)

    def close(self) -> None:
        self._stop = True
        self._kick()
        self._thread.join(2)
        for fd in ((self._master, self._slave) if self.plugged else ()) + (self._kick_r,
                                                                           self._kick_w):
            os.close(fd)
