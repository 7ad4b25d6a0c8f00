"""`Fix`: one GNSS position solution, whatever produced it (NMEA receiver or modem GNSS).

Numbers are kept as integers in fixed units (exact from the text, no heap floats on the way);
properties give floats in SI units for callers that want them.
"""

from time import ticks_diff

from micropython import const

MODE_UNKNOWN = const(0)
MODE_NO_FIX = const(1)
MODE_2D = const(2)
MODE_3D = const(3)

# 1-sigma user range error of single-frequency civil GNSS, m: accuracy ~ HDOP * UERE.
_UERE_CM = const(500)


class Fix:
    """A solution. Units: lat_e7/lon_e7 1e-7 degree, alt_mm mm, speed_mms mm/s, course_cdeg
    0.01 degree, hdop_c HDOP*100; date yyyymmdd int, time_ms ms since 00:00 UTC; t_ms the
    device ticks_ms when the solution was assembled. None = not reported."""

    def __init__(self):
        self.mode = MODE_UNKNOWN
        self.date = None
        self.time_ms = None
        self.lat_e7 = None
        self.lon_e7 = None
        self.alt_mm = None
        self.speed_mms = None
        self.course_cdeg = None
        self.hdop_c = None
        self.sats_used = None
        self.accuracy_cm = None  # set by the source when it reports one (e.g. GST, Quectel HPA)
        self.t_ms = None

    @property
    def has_position(self):
        return self.mode >= MODE_2D and self.lat_e7 is not None

    @property
    def lat(self):
        return None if self.lat_e7 is None else self.lat_e7 / 10000000

    @property
    def lon(self):
        return None if self.lon_e7 is None else self.lon_e7 / 10000000

    @property
    def alt_msl(self):
        return None if self.alt_mm is None else self.alt_mm / 1000

    @property
    def speed(self):
        return None if self.speed_mms is None else self.speed_mms / 1000

    @property
    def course(self):
        return None if self.course_cdeg is None else self.course_cdeg / 100

    @property
    def hdop(self):
        return None if self.hdop_c is None else self.hdop_c / 100

    @property
    def accuracy_m(self):
        """Horizontal accuracy estimate, m: the source's own figure, else HDOP * UERE."""
        if self.accuracy_cm is not None:
            return self.accuracy_cm / 100
        if self.hdop_c is None or not self.has_position:
            return None
        return self.hdop_c * _UERE_CM / 10000

    def age_ms(self, now_ms):
        """ms since the fix was assembled (now_ms from time.ticks_ms()), None if never stamped."""
        if self.t_ms is None:
            return None
        return ticks_diff(now_ms, self.t_ms)

    def iso_time(self):
        """ISO-8601 UTC with ms ('2009-12-09T15:25:05.000Z'), None without both date and time."""
        if self.date is None or self.time_ms is None:
            return None
        t = self.time_ms
        d = self.date
        return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
            d // 10000, d // 100 % 100, d % 100,
            t // 3600000, t // 60000 % 60, t // 1000 % 60, t % 1000,
        )

    def __repr__(self):
        return "Fix(mode=%d %s %s,%s alt=%s hdop=%s sats=%s)" % (
            self.mode, self.iso_time(), self.lat, self.lon, self.alt_msl, self.hdop,
            self.sats_used,
        )
