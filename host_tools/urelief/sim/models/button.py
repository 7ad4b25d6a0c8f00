"""A person pressing the panic button, as the pin sees it: contact bounce on make and break.

The edge lists are plain data (`press_edges`, `multi_press_edges`, `bump_edges`) so a test can
feed them straight to the firmware's recogniser; `HumanButton` plays them on a VirtualDevice
through `dev.pin(gpio).drive` at the right device times (`dev.clock.call_later`).

Bounce figures: small tactile switches (e.g. Omron B3F, C&K PTS645) are specified at
<= 5 ms bounce; make bounce is longer than break bounce, with sub-millisecond chatter.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

Edge = tuple[float, int]  # (t_ms, level at the pin)


class Human:
    """Edge generator: a hand on a switch wired to `active` level (0: switch to ground)."""

    def __init__(self, active: int = 0, bounce_ms: float = 5.0, seed: int = 1):
        self.active = active
        self.bounce_ms = bounce_ms
        self.rng = random.Random(seed)

    def _bounce(self, t: float, to_level: int, span_ms: float) -> list[Edge]:
        """Chatter starting at t that settles at `to_level` within span_ms."""
        if span_ms <= 0:
            return [(t, to_level)]
        n = self.rng.randrange(2, 7) * 2 + 1  # odd: the last edge lands on to_level
        times = sorted(self.rng.uniform(0, span_ms) for _ in range(n - 1))
        out = [(t, to_level)]
        level = to_level
        for dt in times:
            level = 1 - level
            out.append((t + dt, level))
        out.append((t + span_ms, to_level))
        return _clean(out)

    def press_edges(self, t0: float, hold_ms: float) -> list[Edge]:
        """One press: contact made at t0, released hold_ms later; both ends bounce. The make
        bounce settles within the first half of the press (a 3 ms knock cannot chatter for
        5 ms), so the break always comes after it and the pin ends open."""
        make = self._bounce(t0, self.active, min(self.bounce_ms, hold_ms / 2))
        brk = self._bounce(t0 + hold_ms, 1 - self.active, self.bounce_ms * 0.6)
        return _clean(make + brk)

    def multi_press_edges(self, t0: float, n: int, press_ms: float = 150,
                          gap_ms: float = 250) -> list[Edge]:
        """n presses of press_ms each, gap_ms between a release and the next press (a press
        never starts before the last one's break bounce has settled)."""
        out: list[Edge] = []
        t = t0
        for _ in range(n):
            out += self.press_edges(t, press_ms)
            t = max(t + press_ms + gap_ms, out[-1][0] + 0.1)
        return out

    def bump_edges(self, t0: float, ms: float = 50) -> list[Edge]:
        """A knock in a pocket: the contact closes briefly, with bounce, then opens."""
        return self.press_edges(t0, ms)

    def chatter_edges(self, t0: float, ms: float = 5) -> list[Edge]:
        """Contact chatter only (vibration, a worn switch): never settles pressed."""
        return self._bounce(t0, self.active, ms) + [(t0 + ms + 0.5, 1 - self.active)]


def _clean(edges: Iterable[Edge]) -> list[Edge]:
    """Drop repeated levels (they are no edge)."""
    out: list[Edge] = []
    for t, lv in edges:
        if out and out[-1][1] == lv:
            continue
        out.append((t, lv))
    return out


def sampled(edges: list[Edge], start: float, end: float, every_ms: float,
            idle: int = 1) -> list[Edge]:
    """The level a poller reading every `every_ms` sees (the pin before any edge: idle)."""
    out = []
    i, level, t = 0, idle, start
    while t <= end:
        while i < len(edges) and edges[i][0] <= t:
            level = edges[i][1]
            i += 1
        out.append((t, level))
        t += every_ms
    return out


class HumanButton(Human):
    """A Human pressing the button of a VirtualDevice (released = switch open, so the pin
    floats to its pull; pass released=1 to drive it instead)."""

    def __init__(self, dev, gpio: int, active: int = 0, released: int | None = None,
                 bounce_ms: float = 5.0, seed: int = 1):
        super().__init__(active, bounce_ms, seed)
        self.dev, self.gpio, self.released = dev, gpio, released

    def _drive(self, level: int) -> None:
        self.dev.pin(self.gpio).drive(level if level == self.active else self.released)

    def play(self, edges: list[Edge], after_ms: float = 0) -> None:
        """Schedule edges (times relative to now + after_ms) from any thread."""
        def schedule() -> None:
            for t, level in edges:
                self.dev.clock.call_later(after_ms + t, _bind(self._drive, level))
        self.dev.clock.post(schedule)

    def press(self, hold_ms: float, after_ms: float = 0) -> float:
        """Press and hold for hold_ms; returns the ms until the release has settled."""
        edges = self.press_edges(0, hold_ms)
        self.play(edges, after_ms)
        return after_ms + edges[-1][0]

    def presses(self, n: int, press_ms: float = 150, gap_ms: float = 250,
                after_ms: float = 0) -> float:
        edges = self.multi_press_edges(0, n, press_ms, gap_ms)
        self.play(edges, after_ms)
        return after_ms + edges[-1][0]

    def bump(self, ms: float = 50, after_ms: float = 0) -> float:
        edges = self.bump_edges(0, ms)
        self.play(edges, after_ms)
        return after_ms + edges[-1][0]


def _bind(fn: Callable[[int], None], level: int) -> Callable[[], None]:
    return lambda: fn(level)
