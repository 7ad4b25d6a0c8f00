"""A GNSS receiver wired to a UART of the virtual device: NMEA at 1 Hz, from a recorded log or a
scripted trajectory, with a time to first fix.

Uses only the device API (`dev.uart(id).attach/send`, `dev.clock.call_later/now_ms`,
`dev.pin(gpio).on_change/level`). Bytes leave at the line rate (10 bits a byte), so a 9600 baud
receiver takes ~0.3 s to send an epoch, as on the wire.

Figures (datasheet typicals, open sky): time to first fix cold ~26-35 s (u-blox NEO-M8 26 s,
Quectel L76 35 s: 30 s here), hot ~1 s when the receiver kept its ephemeris (valid ~2-4 h; here a
fix within `ephemeris_ms` before power-off). Output starts ~100 ms after the second.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

COLD_TTFF_MS = 30_000
HOT_TTFF_MS = 1_000
EPHEMERIS_MS = 2 * 3600_000
_EARTH_M = 6_371_000.0
_TIMED = re.compile(rb"^\$..(RMC|GGA|GLL|GNS|ZDA),(\d{6}(?:\.\d+)?)?,")

# What a receiver without a fix says each second (empty fields; u-blox style).
NO_FIX = ("$GPRMC,,V,,,,,,,,,,N*53", "$GPGGA,,,,,,0,00,99.99,,,,,,*48",
          "$GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99*30")


def sentence(body: str) -> str:
    """'$body*hh' with the NMEA checksum."""
    x = 0
    for c in body.encode("ascii"):
        x ^= c
    return f"${body}*{x:02X}"


def log_epochs(path: str | Path) -> list[list[bytes]]:
    """A gpsd-style NMEA log cut into epochs: a new epoch at each new UTC stamp. '#' lines are
    dropped; LF, CR LF and lone CR all end a line."""
    epochs: list[list[bytes]] = []
    stamp = None
    for raw in Path(path).read_bytes().split(b"\n"):
        for line in raw.rstrip(b"\r\n").split(b"\r"):
            if not line.strip() or line.startswith(b"#"):
                continue
            m = _TIMED.match(line)
            t = m.group(2) if m else None
            if not epochs or (t and stamp and t != stamp):
                epochs.append([])
            if t:
                stamp = t
            epochs[-1].append(line)
    return epochs


class Trajectory:
    """Where the receiver is at t seconds after power-on: `position(t) -> (lat°, lon°, alt m)`,
    UTC from `start`. Waypoints (lat, lon, alt) are joined at `speed_mps` along great circles."""

    def __init__(self, position: Callable[[float], tuple[float, float, float]],
                 start: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=dt.UTC), sats: int = 9,
                 hdop: float = 0.9):
        self.position, self.start, self.sats, self.hdop = position, start, sats, hdop

    @classmethod
    def waypoints(cls, points: Sequence[tuple[float, float, float]], speed_mps: float = 1.4,
                  **kw) -> Trajectory:
        legs = [(a, b, _distance(a, b)) for a, b in zip(points, points[1:], strict=False)]

        def at(t: float) -> tuple[float, float, float]:
            d = t * speed_mps
            for a, b, n in legs:
                if d <= n and n > 0:
                    f = d / n
                    return tuple(x + (y - x) * f for x, y in zip(a, b, strict=True))  # type: ignore[return-value]
                d -= n
            return points[-1]

        return cls(at, **kw)

    def epoch(self, t: float) -> list[bytes]:
        """RMC, VTG, GGA, GSA for second t (speed and course from the last second's motion)."""
        lat, lon, alt = self.position(t)
        plat, plon, _ = self.position(max(t - 1, 0))
        dist = _distance((plat, plon, 0), (lat, lon, 0))
        kn = dist / (1852 / 3600)
        course = f"{_bearing(plat, plon, lat, lon):.1f}" if dist > 0.05 else ""
        now = self.start + dt.timedelta(seconds=t)
        hms = now.strftime("%H%M%S.") + f"{now.microsecond // 10000:02d}"
        la = _ddmm(lat, 2) + ("N" if lat >= 0 else "S")
        lo = _ddmm(lon, 3) + ("E" if lon >= 0 else "W")
        la, lo = la[:-1] + "," + la[-1], lo[:-1] + "," + lo[-1]
        prns = ",".join(f"{p:02d}" for p in range(1, self.sats + 1)[:12])
        prns += "," * (12 - min(self.sats, 12))
        body = [
            f"GPRMC,{hms},A,{la},{lo},{kn:.3f},{course},{now:%d%m%y},,,A",
            f"GPVTG,{course},T,,M,{kn:.3f},N,{kn * 1.852:.3f},K,A",
            f"GPGGA,{hms},{la},{lo},1,{self.sats:02d},{self.hdop:.2f},{alt:.1f},M,0.0,M,,",
            f"GPGSA,A,3,{prns},{self.hdop * 1.6:.2f},{self.hdop:.2f},{self.hdop * 1.3:.2f}",
        ]
        return [sentence(b).encode() for b in body]


class GnssReceiver:
    """UART peer streaming NMEA to the firmware once a second while powered.

    source: a log path (its epochs are played one a second, then the receiver goes quiet) or a
    Trajectory. Before the first fix (cold `ttff_ms`, or hot after a recent fix) it sends the
    no-fix sentences. `power_pin`: follow that firmware output (at `power_active`, 1 = high) as
    the receiver's enable; without it the receiver is powered from `attach()` on."""

    def __init__(self, dev, source: str | Path | Trajectory, uart_id: int = 2, baud: int = 9600,
                 ttff_ms: float = COLD_TTFF_MS, hot_ttff_ms: float = HOT_TTFF_MS,
                 power_pin: int | None = None, offset_ms: float = 100, power_active: int = 1):
        self.dev, self.uart_id, self.baud = dev, uart_id, baud
        self.ttff_ms, self.hot_ttff_ms, self.offset_ms = ttff_ms, hot_ttff_ms, offset_ms
        self.trajectory = source if isinstance(source, Trajectory) else None
        self._log: Iterator[list[bytes]] | None = (
            None if self.trajectory else iter(log_epochs(source)))
        self.power_pin = power_pin
        self.power_active = power_active
        self.on = False
        self.fixed = False
        self.first_fix_ms: float | None = None  # device time of the first fix since power-on
        self.last_fix_ms: float | None = None
        self.received = bytearray()  # what the firmware sent the receiver (commands)
        self._on_ms = 0.0
        self._ttff = ttff_ms
        self._timers: list = []
        self._uart = None

    def attach(self) -> GnssReceiver:
        self._uart = self.dev.uart(self.uart_id)
        self._uart.attach(self)
        if self.power_pin is None:
            self.dev.clock.post(lambda: self.power(True))
        else:
            pin = self.dev.pin(self.power_pin)
            pin.on_change(lambda level, _t: self.power(level == self.power_active))
            if pin.mode != 0 and pin.level == self.power_active:
                self.dev.clock.post(lambda: self.power(True))
        return self

    def on_device_tx(self, data: bytes) -> None:
        self.received += data

    def power(self, on: bool) -> None:
        """Switch the receiver (sim thread). Hot start if it had a fix within EPHEMERIS_MS."""
        if on == self.on:
            return
        self.on = on
        now = self.dev.clock.now_ms()
        if not on:
            for t in self._timers:
                t.cancel()
            self._timers.clear()
            self.fixed = False
            return
        recent = self.last_fix_ms is not None and now - self.last_fix_ms < EPHEMERIS_MS
        self._ttff = self.hot_ttff_ms if recent else self.ttff_ms
        self._on_ms = now
        self.first_fix_ms = None
        self._schedule(1000 - now % 1000 + self.offset_ms)

    def _schedule(self, delay_ms: float) -> None:
        del self._timers[:-20]  # fired ones need no cancelling; at most ~8 are pending
        self._timers.append(self.dev.clock.call_later(delay_ms, self._epoch))

    def _epoch(self) -> None:
        if not self.on:
            return
        now = self.dev.clock.now_ms()
        since = now - self._on_ms
        if since < self._ttff:
            lines = [s.encode() for s in NO_FIX]
        else:
            lines = self._fix_lines(since / 1000)
            if lines is None:
                return  # the log is over: the receiver falls silent
            if not self.fixed:
                self.fixed = True
                self.first_fix_ms = now
            self.last_fix_ms = now
        self._transmit(lines)
        self._schedule(1000)

    def _fix_lines(self, t_s: float) -> list[bytes] | None:
        if self.trajectory:
            return self.trajectory.epoch(math.floor(t_s))
        return next(self._log, None)  # type: ignore[arg-type]

    def _transmit(self, lines: list[bytes]) -> None:
        """Each sentence arrives when its last byte has crossed the wire."""
        ms_per_byte = 10_000 / self.baud
        t = 0.0
        for line in lines:
            data = line + b"\r\n"
            t += len(data) * ms_per_byte
            self._timers.append(self.dev.clock.call_later(t, lambda d=data: self._send(d)))

    def _send(self, data: bytes) -> None:
        if self.on and self._uart is not None:
            self._uart.send(data)


def _ddmm(deg: float, width: int) -> str:
    deg = abs(deg)
    d = int(deg)
    m = round((deg - d) * 60, 4)
    if m >= 60:
        d, m = d + 1, 0.0
    return f"{d:0{width}d}{m:07.4f}"


def _distance(a, b) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * _EARTH_M * math.asin(min(1.0, math.sqrt(h)))


def _bearing(la1: float, lo1: float, la2: float, lo2: float) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (la1, lo1, la2, lo2))
    y = math.sin(lo2 - lo1) * math.cos(la2)
    x = math.cos(la1) * math.sin(la2) - math.sin(la1) * math.cos(la2) * math.cos(lo2 - lo1)
    return (math.degrees(math.atan2(y, x)) + 360) % 360
