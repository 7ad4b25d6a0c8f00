"""Epoch assembler: merges the sentences a receiver sends for one measurement into one `Fix`.

An epoch ends when a time-stamped sentence (GGA RMC GLL GNS ZDA GST) carries a different UTC time,
or, with no time to go by (no fix yet), when a talker's formatter comes a second time, or when the
first time arrives after such sentences with an empty time (a receiver just out of "no sky"),
or when a talker's formatter repeats the same time (a receiver whose clock stopped on losing lock:
that epoch is no fix, its position an old one).
The date is carried across epochs (GGA alone has none) and rolled over at midnight. A date before
`not_before` is a receiver hit by the 10-bit GPS week rollover (it counts from 1999-08-22 or
2019-04-07 again): it is moved forward by 1024 weeks until it is not.
"""


from micropython import const

from gnss.fix import MODE_2D, MODE_3D, MODE_NO_FIX, MODE_UNKNOWN, Fix
from gnss.nmea import GGA, GLL, GNS, GSA, GST, RMC, RMZ, TALKERS, VTG, ZDA

_HALF_DAY_MS = const(43200000)
_ROLLOVER_DAYS = const(7168)  # 1024 GPS weeks
# GPS-UTC has been 18 s since 2017-01-01: a receiver reporting an earlier date cannot be right
# today (gpsd's timebase.c takes the same boundary for its week-rollover guard).
NOT_BEFORE = const(20170101)

_DAYS = b"\x1f\x1c\x1f\x1e\x1f\x1e\x1f\x1f\x1e\x1f\x1e\x1f"  # days per month, non-leap


def next_day(date):
    """yyyymmdd of the day after `date`."""
    y = date // 10000
    m = date // 100 % 100
    d = date % 100 + 1
    last = _DAYS[m - 1] + (m == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0))
    if d > last:
        d = 1
        m += 1
        if m > 12:
            m = 1
            y += 1
    return y * 10000 + m * 100 + d


def day_number(date):
    """Days since 0000-03-01 of yyyymmdd (proleptic Gregorian, years from March)."""
    y = date // 10000
    m = date // 100 % 100
    d = date % 100
    if m < 3:
        y -= 1
        m += 12
    return 365 * y + y // 4 - y // 100 + y // 400 + (153 * (m - 3) + 2) // 5 + d - 1


def from_day_number(n):
    """yyyymmdd of a `day_number`."""
    y = (10000 * n + 14780) // 3652425
    doy = n - (365 * y + y // 4 - y // 100 + y // 400)
    if doy < 0:
        y -= 1
        doy = n - (365 * y + y // 4 - y // 100 + y // 400)
    mi = (100 * doy + 52) // 3060
    d = doy - (mi * 306 + 5) // 10 + 1
    m = mi + 3
    if m > 12:
        m -= 12
        y += 1
    return y * 10000 + m * 100 + d


def past_rollover(date, not_before):
    """`date` moved forward by whole 1024-week periods until it is not before `not_before`."""
    if date >= not_before:
        return date
    n = day_number(date)
    floor = day_number(not_before)
    while n < floor:
        n += _ROLLOVER_DAYS
    return from_day_number(n)


def isqrt(n):
    """Integer square root (Newton), without floats."""
    if n <= 0:
        return 0
    x = n
    y = (x + 1) // 2
    while y < x:
        x = y
        y = (x + n // x) // 2
    return x


def _cs(t_ms):
    """Time in 10 ms, rounded: the resolution at which stamps name the same epoch (eXplorist 210
    stamps GLL .295 beside GGA .30 for one measurement; SL869 sends epochs 10 ms apart)."""
    return (t_ms + 5) // 10


def _bit(kind):
    """A bit per time-stamping formatter, 0 for the others."""
    if kind == GGA:
        return 1
    if kind == RMC:
        return 2
    if kind == GLL:
        return 4
    if kind == GNS:
        return 8
    if kind == ZDA:
        return 16
    if kind == GST:
        return 32
    return 0


def _slot(talker):
    """Index into Epoch._seen: one per known talker, one shared by all others."""
    for i in range(len(TALKERS)):
        if TALKERS[i] == talker:
            return i
    return len(TALKERS)


class Epoch:
    """Feed it each sentence `Nmea.feed` understood: `add(nmea, now_ms)` returns the finished
    previous epoch's `Fix` when this sentence starts a new one, else None; `flush(now_ms)` ends
    the current epoch (end of input, receiver off). `not_before` (yyyymmdd): earlier dates are
    week-rollover victims (see the module)."""

    def __init__(self, not_before=NOT_BEFORE):
        self.date = None  # last date seen (yyyymmdd), carried
        self.had_fix = False  # a 2D/3D epoch was seen: the receiver's clock is set
        self.not_before = not_before
        self._seen = bytearray(len(TALKERS) + 1)  # per talker: bits of the formatters seen
        self._date_time = None  # time_ms of the epoch that set `date`
        self._start()

    def _start(self):
        for i in range(len(self._seen)):
            self._seen[i] = 0
        self._count = 0
        self._time = None
        self._stale = False  # the receiver repeats the last epoch's time: its clock stopped
        self._untimed = False  # a time-stamping sentence came with its time empty
        self._zda = False  # the time came from ZDA: a time message, trusted without a fix
        self._date = None
        self._lat = self._lon = None
        self._gga_valid = None  # GGA/GNS verdict; None if none came
        self._rmc_valid = None  # RMC/GLL/VTG verdict
        self._last_ok = None  # verdict of the last GGA/GNS/RMC/GLL
        self._gsa = 0  # best GSA fix type
        self._prns = None
        self._alt = None
        self._rmz_alt = None  # Garmin $PGRMZ altitude: used when GGA/GNS gave none
        self._dim = 0  # $PGRMZ fix dimension
        self._speed = None
        self._course = None
        self._hdop = None
        self._sats = None
        self._acc = None  # GST horizontal 1-sigma, cm

    def add(self, p, now_ms=None):
        kind = p.kind
        done = None
        bit = _bit(kind)
        if bit:
            seen = self._seen
            i = _slot(p.talker)
            t = p.time_ms
            stale = False
            if self._count:
                if t is not None and self._time is not None:
                    new = _cs(t) != _cs(self._time)
                    if not new and seen[i] & bit:  # the same formatter, the same time again
                        new = stale = True
                elif t is not None and self._untimed:
                    new = True  # the first time after empty ones: the sky came, a new epoch
                else:  # no time to go by: this talker's formatter comes a second time
                    new = seen[i] & bit
                if new:
                    done = self.flush(now_ms)
                    self._stale = stale
            seen[i] |= bit
            if t is None and self._time is None:
                self._untimed = True
        self._count += 1
        if p.time_ms is not None:
            self._time = p.time_ms  # the latest stamp (they may differ by a few ms, see _cs)
            if kind == ZDA:
                self._zda = True
        if p.date is not None:
            self._date = p.date
        if kind == GSA:
            if p.fix_type is not None and self._gsa < p.fix_type <= MODE_3D:
                self._gsa = p.fix_type
            if p.prns:
                self._prns = (self._prns or 0) + p.prns
        elif kind == GGA or kind == GNS:
            if p.valid is not None:
                self._gga_valid = p.valid
            if p.valid and p.alt_mm is not None:
                self._alt = p.alt_mm
            if p.sats is not None:
                self._sats = p.sats
        elif kind == RMC or kind == GLL or kind == VTG:
            if p.valid is not None:
                self._rmc_valid = p.valid
        elif kind == RMZ:
            if p.fix_dim is not None:
                self._dim = p.fix_dim
            if p.valid and p.alt_mm is not None:
                self._rmz_alt = p.alt_mm
        if bit and bit < 16 and p.valid is not None:  # GGA RMC GLL GNS
            self._last_ok = p.valid
        if p.lat_e7 is not None and p.valid:
            self._lat = p.lat_e7
            self._lon = p.lon_e7
        if p.speed_mms is not None and p.valid is not False:
            self._speed = p.speed_mms
        if p.course_cdeg is not None and p.valid is not False:
            self._course = p.course_cdeg
        if p.hdop_c is not None:
            self._hdop = p.hdop_c
        if p.lat_sd_cm is not None and p.lon_sd_cm is not None:
            self._acc = isqrt(p.lat_sd_cm * p.lat_sd_cm + p.lon_sd_cm * p.lon_sd_cm)
        return done

    def flush(self, now_ms=None):
        """The current epoch as a Fix (None if it is empty); a new epoch starts."""
        if not self._count:
            return None
        f = Fix()
        f.t_ms = now_ms
        f.time_ms = self._time
        if self._date is not None:
            self.date = past_rollover(self._date, self.not_before)
            self._date_time = self._time
        elif self.date is not None and self._time is not None:
            if self._date_time is not None and self._date_time - self._time > _HALF_DAY_MS:
                self.date = next_day(self.date)  # the clock wrapped: midnight passed
            self._date_time = self._time
        f.date = self.date
        # Mode: GSA says it outright; else GGA/GNS (3D when it has an altitude); else RMC/GLL.
        ok = self._gga_valid if self._gga_valid is not None else self._rmc_valid
        if ok is False and self._last_ok:
            ok = True  # GGA said no fix, a later RMC/GLL has one (its position): the receiver
            # caught up within the epoch; gpsd, merging in order, reports that fix too
        if self._alt is None:
            self._alt = self._rmz_alt
        if self._stale:
            f.mode = MODE_NO_FIX  # a stopped clock: the position is an old one, repeated
        elif self._gsa:
            f.mode = self._gsa
        elif self._dim and ok is not None:
            f.mode = self._dim
        elif ok:
            f.mode = MODE_3D if self._alt is not None else MODE_2D
            if self._sats is not None and self._sats < 4:
                f.mode = MODE_2D  # x, y, z and the clock need 4 (fewer: a held altitude, or a
                # per-constellation count as SiRFstarV's GPGGA/GLGGA; gpsd says 2D at most too)
        elif ok is False:
            f.mode = MODE_NO_FIX
        else:
            f.mode = MODE_UNKNOWN
        if f.mode >= MODE_2D and ok is not False and self._lat is not None:
            f.lat_e7 = self._lat
            f.lon_e7 = self._lon
            f.alt_mm = self._alt  # in 2D the receiver's held altitude: kept, mode says so
            f.speed_mms = self._speed
            f.course_cdeg = self._course
            f.accuracy_cm = self._acc
        elif f.mode >= MODE_2D:
            f.mode = MODE_NO_FIX
        if f.mode >= MODE_2D:
            self.had_fix = True
        elif not (self._zda or self.had_fix):
            f.time_ms = None  # before any fix, RMC/GGA time may be the receiver's RTC guess
        f.hdop_c = self._hdop
        f.sats_used = self._sats if self._sats is not None else self._prns
        self._start()
        return f
