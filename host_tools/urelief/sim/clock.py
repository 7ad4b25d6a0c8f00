"""The virtual board's clock, kept by the host. Times are device microseconds since power-on.

Real mode: device time is wall time since the device object started. Virtual mode: device time
moves only when the firmware idles (asyncio waiting, sleep_ms, lightsleep) or sleeps, and then
jumps straight to the next thing that can happen — a hardware model's timer, the end of the
firmware's own wait, or the horizon a test allows with `run_for`. Virtual time is the chip's
ticks plus the idle time skipped; the chip's ticks count the CPU time its VM had (cpuclock.c), so
it never runs ahead while the board waits for the host, and CPU time the firmware spends counts
1:1 (times the board's CPU scale).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable

INF = float("inf")


class Timer:
    __slots__ = ("t_us", "fn", "cancelled")

    def __init__(self, t_us: float, fn: Callable[[], None]):
        self.t_us, self.fn, self.cancelled = t_us, fn, False

    def cancel(self) -> None:
        self.cancelled = True


class Hold:
    """While any hold is taken, virtual time runs 1:1 with real time (a real peer is awaited)."""

    def __init__(self, clock: Clock):
        self._clock = clock
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._clock._holds -= 1
            self._clock._kick()

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class Clock:
    def __init__(self, virtual: bool, kick: Callable[[], None] = lambda: None):
        self.virtual = virtual
        self._kick = kick  # wakes the host loop after a change from another thread
        self._t0 = time.monotonic()
        self._now_us = 0.0
        self._q: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._posts: deque[Callable[[], None]] = deque()
        self._holds = 0
        # observe(t_us) before time moves on and after each timer: an energy meter integrates
        # the parts' states between these moments (sim/energy.py)
        self.observers: list[Callable[[float], None]] = []

    # -- reading ---------------------------------------------------------------------------
    def now_us(self) -> float:
        if self.virtual:
            return self._now_us
        return (time.monotonic() - self._t0) * 1e6

    def now_ms(self) -> float:
        return self.now_us() / 1000.0

    # -- scheduling (any thread) --------------------------------------------------------------
    def call_at_us(self, t_us: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(t_us, fn)
        with self._lock:
            heapq.heappush(self._q, (t_us, next(self._seq), timer))
        self._kick()
        return timer

    def call_later(self, delay_ms: float, fn: Callable[[], None]) -> Timer:
        return self.call_at_us(self.now_us() + max(0.0, delay_ms) * 1000.0, fn)

    def post(self, fn: Callable[[], None]) -> None:
        """Run fn() in the host loop at the device's current time, soon. Thread-safe."""
        self._posts.append(fn)
        self._kick()

    def hold_realtime(self) -> Hold:
        self._holds += 1
        return Hold(self)

    @property
    def held(self) -> bool:
        return self._holds > 0

    @property
    def has_posts(self) -> bool:
        return bool(self._posts)

    # -- the host loop's side --------------------------------------------------------------
    def next_due_us(self) -> float:
        with self._lock:
            while self._q and self._q[0][2].cancelled:
                heapq.heappop(self._q)
            return self._q[0][0] if self._q else INF

    def _pop_due(self, t_us: float) -> Timer | None:
        with self._lock:
            while self._q and self._q[0][2].cancelled:
                heapq.heappop(self._q)
            if self._q and self._q[0][0] <= t_us:
                return heapq.heappop(self._q)[2]
        return None

    def run_posts(self, on_error: Callable[[BaseException], None]) -> None:
        while self._posts:
            fn = self._posts.popleft()
            try:
                fn()
            except Exception as e:  # a broken model must not stop the board
                on_error(e)

    def advance_to(self, t_us: float, on_error: Callable[[BaseException], None]) -> None:
        """Run every timer due up to t_us in time order; virtual time ends at t_us."""
        obs = self.observers
        for o in obs:
            o(self.now_us())
        while True:
            timer = self._pop_due(t_us)
            if timer is None:
                break
            if self.virtual and timer.t_us > self._now_us:
                for o in obs:
                    o(timer.t_us)
                self._now_us = timer.t_us
            try:
                timer.fn()
            except Exception as e:
                on_error(e)
            for o in obs:
                o(self.now_us())
        if self.virtual and t_us > self._now_us:
            for o in obs:
                o(t_us)
            self._now_us = t_us
