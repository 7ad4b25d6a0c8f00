"""GNSS service: the last fix and its age, whatever feeds it (a UART receiver or the modem's GNSS).

Thin and I/O-agnostic: `feed_line` takes NMEA lines, `feed_fix` takes a Fix parsed from a modem
answer (gnss.at); `run_uart` and `run_modem` are the two loops that feed it on the device.
"""

import asyncio
import time

from micropython import const

from gnss.epoch import Epoch
from gnss.nmea import Nmea

_CR = const(13)


def _glued(line, a, b):
    """Index of a '$' in line[a:b] that follows a '*hh' checksum (two sentences with no line end
    between them), else -1."""
    c = line.find(b"$", a + 3, b)
    while c > 0:
        if line[c - 3] == 42:  # '*'
            return c
        c = line.find(b"$", c + 1, b)
    return -1


class Gnss:
    """`fix`: the last Fix with a position (None before the first); `last`: the last epoch of
    any mode; `age_ms()`: ms since `fix`; `updated`: an Event set at each epoch."""

    gap_ms = 300  # UART silence that ends an epoch (1 Hz receivers pause between bursts)
    poll_ms = 1000  # modem GNSS query period

    def __init__(self, power=None, ticks_ms=time.ticks_ms):
        self.nmea = Nmea()
        self.epoch = Epoch()
        self.fix = None
        self.last = None
        self.on = False
        self.on_fix = None  # optional callback(fix) at each epoch
        self.updated = asyncio.Event()
        self._power = power  # callable(bool) switching the receiver, or None
        self._ticks = ticks_ms
        self._rx_ms = 0  # ticks of the last line from the UART

    def power(self, on):
        """Switch the receiver on or off; off ends the epoch in progress."""
        if self._power:
            self._power(on)
        self.on = on
        if not on:
            self.end_epoch()

    def age_ms(self):
        return None if self.fix is None else self.fix.age_ms(self._ticks())

    def feed_line(self, line):
        """One line from the receiver (bytes). Sentences ended by a lone CR, as some receivers
        send them, or run together with no line end (a '$' right after a '*hh' checksum), are
        split here."""
        n = len(line)
        a = 0
        while a < n:
            b = line.find(b"\r", a)
            if b < 0:
                b = n
            c = _glued(line, a, b)
            if c > 0:
                b = c - 1  # the next sentence starts at c
            if self.nmea.feed(line, a, b + (c > 0)):
                f = self.epoch.add(self.nmea, self._ticks())
                if f:
                    self._done(f)
            a = b + 1

    def end_epoch(self):
        f = self.epoch.flush(self._ticks())
        if f:
            self._done(f)

    def feed_fix(self, f):
        """A Fix from another source (the modem's GNSS): stamped now and taken as an epoch."""
        f.t_ms = self._ticks()
        self._done(f)

    def _done(self, f):
        self.last = f
        if f.has_position:
            self.fix = f
        if self.on_fix:
            self.on_fix(f)
        self.updated.set()

    async def run_uart(self, reader):
        """Feed lines from an asyncio.StreamReader (over machine.UART) forever. A silence of
        `gap_ms` ends the epoch at once instead of at the next burst; a side task watches for
        it, so no read is ever cancelled (a cancelled readline would lose a partial line)."""
        self._rx_ms = self._ticks()
        quiet = asyncio.create_task(self._end_on_silence())
        try:
            while True:
                line = await reader.readline()
                self._rx_ms = self._ticks()
                if line:
                    self.feed_line(line)
        finally:
            quiet.cancel()

    async def _end_on_silence(self):
        while True:
            await asyncio.sleep_ms(self.gap_ms)
            if time.ticks_diff(self._ticks(), self._rx_ms) >= self.gap_ms:
                self.end_epoch()

    async def run_modem(self, query, parse):
        """While on, every `poll_ms`: `await query()` (the modem's answer, e.g. the +CGNSINF line)
        and `parse(answer)` -> Fix or None (gnss.at)."""
        while self.on:
            f = parse(await query())
            if f:
                self.feed_fix(f)
            await asyncio.sleep_ms(self.poll_ms)
