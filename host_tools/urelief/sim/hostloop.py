"""The virtual board's host loop: one thread that owns the clock, the hardware models' timers
and the wire to the chip, and decides how device time moves.

Virtual clock: a running board lives in real time; a waiting board (idle, light or deep sleep)
or an off board moves time straight to the next thing that can happen (a model's timer, the end
of the board's own wait, or the horizon a test allows), then wakes it. A lease lets the board
skip its own idles up to that point without a round trip.
"""

from __future__ import annotations

import os
import selectors
import struct
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from urelief.sim.clock import INF
from urelief.sim.shims import _vframes as K

if TYPE_CHECKING:
    from urelief.sim.device import VirtualDevice

INTR_GRACE_S = 0.2  # a Ctrl-C not taken by then: the code runs without waiting, signal the VM
WAITING_STATES = ("sleeping", "off", "download", "halted")


class HostLoop:
    def __init__(self, dev: VirtualDevice, run_ahead: bool):
        self._dev = dev
        self.clock = dev.clock
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self._sel = selectors.DefaultSelector()
        self._kick_r, self._kick_w = os.pipe()
        os.set_blocking(self._kick_r, False)
        os.set_blocking(self._kick_w, False)
        self._sel.register(self._kick_r, selectors.EVENT_READ, "kick")
        self._thread: threading.Thread | None = None
        self._stopping = False
        # Tests step virtual time with run_for; an interactive device runs ahead freely.
        self.horizon = INF if run_ahead else 0.0
        # Leases only while time alone is awaited (run_for, or running ahead freely): a wait on
        # a predicate must see the board stop where the predicate turned true.
        self.lease_ok = self.horizon == INF
        self.stop_pred: Callable[[], bool] | None = None
        self._more = False  # time stopped moving with more still due: come back at once
        self._idle_until: float | None = None  # device us a waiting board is owed a WAKE at
        self._idle_real = (0.0, 0.0)  # (monotonic s, device us) when a held idle began
        # (monotonic s, board CPU us, device us) at the last frame from the board
        self._last_msg = (0.0, 0.0, 0.0)
        self._at_repl = False  # the board said it entered its REPL and has not spoken since
        self._sent_events = 0  # events sent to this boot of the board
        self._idle_events = 0  # ... of which it had seen when it began to wait
        self._intr_at: float | None = None  # monotonic s of a Ctrl-C the board has not taken
        self._notified = 0.0
        self._watching_w = -1
        self._chan_fd = -1

    # -- any thread --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="urelief-device", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5) -> None:
        self._stopping = True
        self.kick()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def kick(self) -> None:
        try:
            os.write(self._kick_w, b"k")
        except (BlockingIOError, OSError):
            pass

    def call(self, fn: Callable[[], None]) -> None:
        """Run fn in the host loop (now, if this is the host loop)."""
        if threading.current_thread() is self._thread:
            fn()
        else:
            self.clock.post(fn)

    # -- the host loop's side ----------------------------------------------------------------
    def watch(self, fd: int, tag: str) -> None:
        self._sel.register(fd, selectors.EVENT_READ, tag)

    def unwatch(self, fd: int) -> None:
        try:
            self._sel.unregister(fd)
        except (KeyError, ValueError):
            pass

    def board_started(self, chan_fd: int) -> None:
        """A new boot of the chip speaks on chan_fd."""
        self._chan_fd = chan_fd
        self.watch(chan_fd, "chan")
        self._sent_events = 0
        self._idle_until = None
        self._at_repl = False
        self._last_msg = (time.monotonic(), 0.0, self.clock.now_us())

    def board_stopped(self) -> None:
        self._intr_at = None
        self._idle_until = None
        if self._chan_fd >= 0:
            self.unwatch(self._chan_fd)
        if self._watching_w >= 0:
            self.unwatch(self._watching_w)
        self._chan_fd = self._watching_w = -1

    def event_sent(self) -> None:
        self._sent_events += 1

    def board_spoke(self, kind: int, t_us: float) -> None:
        """A frame of `kind` stamped with the board's time t_us arrived."""
        c = self.clock
        if c.virtual:
            run = self._dev.chip_run
            self._last_msg = (time.monotonic(), run.cpu_us() if run else 0.0, t_us)
            self._at_repl = kind == K.SYNC
            if t_us > c.now_us():
                c.advance_to(t_us, self._dev.model_failed)

    def board_idles(self, until_us: float | None, seen: int) -> None:
        """The board waits until until_us (None: for an event) having seen `seen` events."""
        self._idle_until = INF if until_us is None else until_us
        self._idle_events = seen
        self._idle_real = (time.monotonic(), self.clock.now_us())

    @property
    def board_waiting(self) -> bool:
        return self._idle_until is not None

    def interrupt(self) -> None:
        """Ctrl-C from the USB host while code runs."""
        self._dev.send_frame(K.INTR)
        self._intr_at = time.monotonic()
        if self._idle_until is not None:
            self._wake_board()  # a waiting board takes it at once

    def interrupt_taken(self) -> None:
        self._intr_at = None

    def _check_interrupt(self) -> None:
        if self._intr_at is not None and time.monotonic() - self._intr_at > INTR_GRACE_S:
            self._intr_at = None
            run = self._dev.chip_run
            if run is not None:
                run.sigint()

    def _loop(self) -> None:
        dev = self._dev
        while not self._stopping:
            timeout = self._select_timeout()
            for key, _ in self._sel.select(timeout):
                with self.lock:
                    tag = key.data
                    if tag == "kick":
                        try:
                            os.read(self._kick_r, 4096)
                        except BlockingIOError:
                            pass
                    elif tag == "chan":
                        dev.read_chan()
                    elif tag == "chan_w":
                        if dev.chip_run is not None:
                            dev.chip_run.flush()
                    else:
                        dev.console.on_readable(tag)
            with self.lock:
                self.clock.run_posts(dev.model_failed)
                self._check_interrupt()
                self._tick()
                self._update_write_interest()
                # Wake a waiting test thread now and then, not at every frame (GIL contention).
                now = time.monotonic()
                if now - self._notified > 0.002 or self._idle_until is not None:
                    self._notified = now
                    self.cond.notify_all()
        with self.lock:
            dev.kill()

    def _select_timeout(self) -> float | None:
        if self._intr_at is not None:
            return 0.05
        c = self.clock
        if not c.virtual:
            nxt = c.next_due_us()
            return None if nxt == INF else max(0.0, (nxt - c.now_us()) / 1e6)
        if self._more:
            return 0.0
        state = self._dev.state
        if c.held and (self._idle_until is not None or state == "sleeping"):
            return 0.005
        if state == "running" and self._idle_until is None:
            nxt = c.next_due_us()
            return 0.05 if nxt == INF else min(0.05, max(0.0, (nxt - c.now_us()) / 1e6))
        return None

    def _update_write_interest(self) -> None:
        # Watch the pipe for room only while bytes wait (rare: the board reads promptly).
        run = self._dev.chip_run
        want = run.wfd if run is not None and run.backlog else -1
        if want == self._watching_w:
            return
        if self._watching_w >= 0:
            self.unwatch(self._watching_w)
        if want >= 0:
            self._sel.register(want, selectors.EVENT_WRITE, "chan_w")
        self._watching_w = want

    def _tick(self) -> None:
        c, dev = self.clock, self._dev
        if not c.virtual:
            c.advance_to(c.now_us(), dev.model_failed)
            return
        if dev.state == "running" and self._idle_until is None:
            # A busy board lives on its CPU time (what its own ticks count), so a host or a
            # machine too busy to run it moves no device time; one at its REPL, in real time.
            wall0, cpu0, d0 = self._last_msg
            run = dev.chip_run
            if self._at_repl or run is None:
                c.advance_to(d0 + (time.monotonic() - wall0) * 1e6, dev.model_failed)
            else:
                c.advance_to(d0 + max(0.0, run.cpu_us() - cpu0), dev.model_failed)
            return
        # The board waits (idle, light or deep sleep) or is off: move time to the next thing.
        # A bounded number of steps per tick: the models' periodic timers never run out while
        # time may run ahead freely, and the loop must still see the USB port and a stop().
        self._more = False
        for _ in range(256):
            if self._stopping or not (self._idle_until is not None or dev.state in WAITING_STATES):
                return
            if self._idle_woken():
                return
            if self.stop_pred is not None:
                dev.console.drain()  # what the board printed before it idled
                if self.stop_pred():
                    return
            until = self._idle_until if self._idle_until is not None else INF
            nxt = min(until, c.next_due_us(), self.horizon)
            if nxt == INF:
                return
            if c.held:
                wall0, dev0 = self._idle_real
                due_wall = wall0 + (nxt - dev0) / 1e6
                if time.monotonic() < due_wall:
                    c.advance_to(dev0 + (time.monotonic() - wall0) * 1e6, dev.model_failed)
                    return
            if nxt >= c.now_us():
                c.advance_to(nxt, dev.model_failed)
            if self._idle_woken():
                return
            if self._idle_until is not None and c.now_us() >= until:
                self._wake_board()
                return
            if c.now_us() >= self.horizon and c.next_due_us() > self.horizon:
                return  # wait for the test to allow more time
        self._more = True

    def _idle_woken(self) -> bool:
        if self._idle_until is not None and self._sent_events > self._idle_events:
            self._wake_board()
            return True
        return False

    def _wake_board(self) -> None:
        # The lease lets the board skip its own idles up to the next thing the host has
        # scheduled (or the horizon) without a round trip; it ends when the board speaks.
        self._idle_until = None
        c = self.clock
        lease = 0.0
        if self.lease_ok and c.virtual and not c.held and not c.has_posts:
            lease = min(c.next_due_us(), self.horizon)
        lease = min(lease, 2**62)
        self._dev.send_frame(K.WAKE, struct.pack(">qq", int(c.now_us()), int(lease)))
