"""NMEA 0183 (up to 4.11) sentence parser: pure, fed one line at a time, never raises on input.

`Nmea.feed(line)` checks framing and checksum, decodes GGA RMC GSA GNS VTG GLL ZDA GST GSV from
any talker (two capital letters: GP GN GL GA GB BD GQ QZ PQ GI ...) and Garmin's $PGRMZ altitude,
and leaves the sentence's values in attributes until the next call (None =
empty field). Nothing is allocated per sentence beyond what the caller's line already is: fields
are located by index into the line and numbers are read straight into ints in fixed units.
Everything refused is counted in the statistics attributes, never raised.
"""

from array import array

from micropython import const

# Sentence formatters: the three ASCII letters packed into an int.
GGA = const(0x474741)
RMC = const(0x524D43)
GSA = const(0x475341)
GNS = const(0x474E53)
VTG = const(0x565447)
GLL = const(0x474C4C)
ZDA = const(0x5A4441)
GSV = const(0x475356)
GST = const(0x475354)
RMZ = const(0x524D5A)  # $PGRMZ: Garmin altitude (proprietary, talker "PG")
_PG = const(0x5047)

# Talkers the epoch keeps apart: GPS, any-GNSS, GLONASS, Galileo, BeiDou (4.1 and legacy), QZSS
# (4.11, legacy and Quectel's PQ), NavIC. Any other talker is accepted too (NMEA 0183 lets an
# integrated system use its own, e.g. II, IN); the epoch gives those one shared slot.
TALKERS = (0x4750, 0x474E, 0x474C, 0x4741, 0x4742, 0x4244, 0x4751, 0x515A, 0x5051, 0x4749)

_MAX_FIELDS = const(64)  # GSV 4.11 has 21 fields, GSA 19; receivers append more: beyond is noise
_NMEA_MAX = const(82)  # spec limit, '$' to LF inclusive; real receivers exceed it
_E7 = const(10000000)
_MIN_E6_MAX = const(60000000)  # 60 minutes in 1e-6 minute

_A = const(65)  # 'A' (valid / autonomous)
_N = const(78)  # 'N' (no fix / north)
_S = const(83)
_E = const(69)
_W = const(87)
_T = const(84)
_D = const(68)
_FT_E6 = const(304800)  # metres per foot, 1e-6


def dec(buf, a, b, scale):
    """The decimal number in buf[a:b] as an int in units of 10**-scale, rounded half up;
    None when the field is empty or not a number."""
    while a < b and buf[a] == 32:  # receivers pad fields to a width with spaces
        a += 1
    while b > a and buf[b - 1] == 32:
        b -= 1
    if a >= b:
        return None
    neg = buf[a] == 45  # '-'
    if neg or buf[a] == 43:  # '+'
        a += 1
    v = 0
    frac = -1  # digits kept after the point, -1 before it
    digits = 0
    up = 0  # the first dropped digit was >= 5
    while a < b:
        c = buf[a]
        a += 1
        if c == 46:  # '.'
            if frac >= 0:
                return None
            frac = 0
            continue
        if c < 48 or c > 57:
            return None
        digits += 1
        if frac >= scale:
            if frac == scale:
                up = c >= 53
                frac += 1
            continue
        if frac >= 0:
            frac += 1
        v = v * 10 + c - 48
    if not digits:
        return None
    if frac < 0:
        frac = 0
    while frac < scale:
        v *= 10
        frac += 1
    if up:
        v += 1
    return -v if neg else v


def coord(buf, a, b, hemi, max_deg):
    """(d)ddmm.mmmm and its hemisphere byte (N/S/E/W) -> 1e-7 degree; None if empty or bad."""
    p = a
    while p < b and buf[p] != 46:
        p += 1
    if p - a < 3:
        return None
    deg = dec(buf, a, p - 2, 0)
    mins = dec(buf, p - 2, b, 6)  # 1e-6 minute
    if deg is None or mins is None or deg < 0 or mins < 0 or mins >= _MIN_E6_MAX:
        return None
    v = deg * _E7 + (mins + 3) // 6
    if v > max_deg * _E7:
        return None
    if hemi == _S or hemi == _W:
        return -v
    if hemi == _N or hemi == _E:
        return v
    return None


def hms(buf, a, b):
    """hhmmss[.sss] -> ms since 00:00; None if empty or bad (a leap second 60 is allowed)."""
    if b - a < 6:
        return None
    h = dec(buf, a, a + 2, 0)
    m = dec(buf, a + 2, a + 4, 0)
    s = dec(buf, a + 4, b, 3)
    if h is None or m is None or s is None or not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 61000):
        return None
    return (h * 60 + m) * 60000 + s


def ymd(y, m, d):
    """yyyymmdd int, None unless a plausible calendar date; 2-digit years: 80-99 -> 19xx."""
    if y is None or m is None or d is None or not (1 <= m <= 12 and 1 <= d <= 31 and y >= 0):
        return None
    if y < 80:
        y += 2000
    elif y < 100:
        y += 1900
    return y * 10000 + m * 100 + d


def ddmmyy(buf, a, b):
    """ddmmyy -> yyyymmdd int; None if empty or bad."""
    if b - a != 6:
        return None
    return ymd(dec(buf, a + 4, b, 0), dec(buf, a + 2, a + 4, 0), dec(buf, a, a + 2, 0))


class Nmea:
    """Statistics (counts of lines): `parsed` understood; `unsupported` valid but not ours
    (proprietary, other formatters or talkers); `bad_checksum`; `truncated` no or short checksum;
    `garbage` noise before '$' or a line with none; `malformed` framing broken (too many fields,
    bad address); `bad_fields` fields that did not parse (the rest of the sentence is used);
    `long` sentences over the 82-character limit (accepted); `unchecked` sentences with no
    checksum field at all (accepted, as gpsd does: NMEA 0183 before 2.0 made it optional; every
    field is still checked); `zero_rejected` (0,0) reported valid."""

    def __init__(self):
        self._f = array("H", bytes(2 * (_MAX_FIELDS + 1)))  # index of each field's comma
        self._buf = b""
        self._n = 0
        self.lines = self.parsed = self.unsupported = self.bad_checksum = 0
        self.truncated = self.garbage = self.malformed = self.bad_fields = 0
        self.long = self.zero_rejected = self.unchecked = 0
        self._clear()

    def _clear(self):
        self.talker = 0  # two ASCII letters packed, e.g. 0x4750 'GP'
        self.kind = 0  # formatter code (GGA, RMC...), 0 when the line was not understood
        self.time_ms = None
        self.date = None  # yyyymmdd
        self.lat_e7 = self.lon_e7 = None
        self.valid = None  # True/False from status, quality or mode indicator
        self.quality = None  # GGA fix quality 0-8
        self.fix_type = None  # GSA 1 none, 2 2D, 3 3D
        self.alt_mm = None  # above mean sea level
        self.sep_mm = None  # geoid separation
        self.speed_mms = None
        self.course_cdeg = None  # true course, 0.01 degree
        self.hdop_c = self.pdop_c = self.vdop_c = None  # DOP * 100
        self.sats = None  # satellites used (GGA, GNS)
        self.prns = None  # PRNs listed used (GSA)
        self.sys_id = None  # GSA system ID (NMEA 4.1)
        self.faa = 0  # mode indicator byte (A D E F M N P R S), 0 if absent
        self.in_view = None  # GSV
        self.lat_sd_cm = self.lon_sd_cm = None  # GST 1-sigma position errors
        self.fix_dim = None  # PGRMZ 1 none, 2 2D, 3 3D

    def stats(self):
        return {
            "lines": self.lines, "parsed": self.parsed, "unsupported": self.unsupported,
            "bad_checksum": self.bad_checksum, "truncated": self.truncated,
            "garbage": self.garbage, "malformed": self.malformed, "bad_fields": self.bad_fields,
            "long": self.long, "zero_rejected": self.zero_rejected, "unchecked": self.unchecked,
        }

    # --- fields: k counts from 1 after the address field; absent fields read as empty
    def _a(self, k):
        return self._f[k - 1] + 1 if k <= self._n else 0

    def _b(self, k):
        return self._f[k] if k <= self._n else 0

    def _num(self, k, scale):
        a = self._a(k)
        b = self._b(k)
        if a >= b:
            return None
        v = dec(self._buf, a, b, scale)
        if v is None:
            self.bad_fields += 1
        return v

    def _ch(self, k):
        a = self._a(k)
        return self._buf[a] if a < self._b(k) else 0

    def _time(self, k):
        a = self._a(k)
        b = self._b(k)
        if a >= b:
            return None
        v = hms(self._buf, a, b)
        if v is None:
            self.bad_fields += 1
        return v

    def _pos(self, k):
        """lat,N/S,lon,E/W starting at field k -> sets lat_e7/lon_e7 (both or neither)."""
        buf = self._buf
        a = self._a(k)
        c = self._a(k + 2)
        if a >= self._b(k) and c >= self._b(k + 2):
            return
        lat = coord(buf, a, self._b(k), self._ch(k + 1), 90)
        lon = coord(buf, c, self._b(k + 2), self._ch(k + 3), 180)
        if lat is None or lon is None:
            self.bad_fields += 1
            return
        self.lat_e7 = lat
        self.lon_e7 = lon

    def _speed_kn(self, k):
        kn = self._num(k, 3)  # knots * 1000
        if kn is not None:
            self.speed_mms = (kn * 1852 + 1800) // 3600

    # --- sentences
    def feed(self, line, first=0, end=-1):
        """Parse the sentence in line[first:end] (bytes; trailing CR/LF optional). Returns the
        formatter code when the sentence was understood, else 0. Never raises on content."""
        self._clear()
        buf = line
        if end < 0:
            end = len(buf)
        while end > first and (buf[end - 1] == 10 or buf[end - 1] == 13 or buf[end - 1] == 32):
            end -= 1
        if end == first:
            return 0  # an empty line is no sentence
        self.lines += 1
        start = buf.rfind(b"$", first, end)
        if start < 0:
            self.garbage += 1
            return 0
        if start > first:
            self.garbage += 1  # noise or a cut sentence before this one: dropped, counted
        star = buf.find(b"*", start, end)
        if star < 0:
            star = end  # no checksum field: taken if whole (below), counted
        elif end - star < 3:
            self.truncated += 1
            return 0
        else:
            want = _hex(buf[star + 1]) << 4 | _hex(buf[star + 2])
            x = 0
            for i in range(start + 1, star):
                x ^= buf[i]
            if x != want:
                self.bad_checksum += 1
                return 0
            if star + 3 < end:
                self.garbage += 1  # bytes after the checksum
        if star + 5 - start > _NMEA_MAX:
            self.long += 1
        f = self._f
        n = 0
        i = buf.find(b",", start, star)
        while i >= 0:
            if n == _MAX_FIELDS:
                self.malformed += 1
                return 0
            f[n] = i
            n += 1
            i = buf.find(b",", i + 1, star)
        f[n] = star
        self._n = n
        if star == end and (n < _fields(_kind(buf, start)) or f[0] - start != 6):
            self.truncated += 1  # no checksum and fields missing: a cut line
            return 0
        if n == 0:
            self.malformed += 1
            return 0
        if f[0] - start != 6:
            if buf[start + 1] == 80:  # 'P': proprietary
                self.unsupported += 1
            else:
                self.malformed += 1
            return 0
        self._buf = buf
        talker = buf[start + 1] << 8 | buf[start + 2]
        kind = _kind(buf, start)
        if star == end:
            self.unchecked += 1
        if not (_cap(buf[start + 1]) and _cap(buf[start + 2])) or not self._decode(talker, kind):
            self.unsupported += 1
            self._buf = b""
            return 0
        self._buf = b""
        self.talker = talker
        self.kind = kind
        if self.valid and self.lat_e7 == 0 and self.lon_e7 == 0:
            self.zero_rejected += 1
            self.valid = False
            self.lat_e7 = self.lon_e7 = None
        self.parsed += 1
        return kind

    def _decode(self, talker, kind):
        if talker == _PG:
            return kind == RMZ and self._pgrmz()
        if kind == GGA:
            self.time_ms = self._time(1)
            self._pos(2)
            q = self._num(6, 0)
            self.quality = q
            if q is not None:
                self.valid = q > 0
            self.sats = self._num(7, 0)
            self.hdop_c = self._num(8, 2)
            self.alt_mm = self._num(9, 3)
            self.sep_mm = self._num(11, 3)
        elif kind == RMC:
            self.time_ms = self._time(1)
            s = self._ch(2)
            self._pos(3)
            self._speed_kn(7)
            self.course_cdeg = self._num(8, 2)
            a = self._a(9)
            b = self._b(9)
            if a < b:
                self.date = ddmmyy(self._buf, a, b)
                if self.date is None:
                    self.bad_fields += 1
            self.faa = self._ch(12)
            if s:  # field 13 (4.1 navigational status) V = "no status given", not "no fix"
                # D: receivers that put the mode in the status field (gpsd takes it as valid)
                self.valid = (s == _A or s == _D) and self.faa != _N
        elif kind == GLL:
            self._pos(1)
            self.time_ms = self._time(5)
            s = self._ch(6)
            self.faa = self._ch(7)
            if s:
                self.valid = s == _A and self.faa != _N
        elif kind == GNS:
            self.time_ms = self._time(1)
            self._pos(2)
            a = self._a(6)
            b = self._b(6)
            if a < b:
                self.faa = self._buf[a]
                self.valid = False
                while a < b:  # one indicator per constellation: any fix is a fix
                    if self._buf[a] != _N:
                        self.valid = True
                    a += 1
            self.sats = self._num(7, 0)
            self.hdop_c = self._num(8, 2)
            self.alt_mm = self._num(9, 3)
            self.sep_mm = self._num(10, 3)
        elif kind == VTG:
            # 2.x+: course,T,course,M,knots,N,km/h,K[,mode]; some receivers leave the unit letters
            # empty (`054.7,,,,005.5,,010.2,`), so the layout is told by the field count
            if self._ch(2) == _T or self._n >= 8:
                self.course_cdeg = self._num(1, 2)
                self._speed_kn(5)
                self.faa = self._ch(9)
            else:  # NMEA 1.x: course true, course magnetic, knots, km/h
                self.course_cdeg = self._num(1, 2)
                self._speed_kn(3)
            if self.faa:
                self.valid = self.faa != _N
            if self.faa == _E:  # estimated (dead reckoning): NMEA 2.3 calls it not valid, gpsd
                self.speed_mms = self.course_cdeg = None  # drops it; RMC's own speed still counts
        elif kind == GSA:
            self.fix_type = self._num(2, 0)
            used = 0
            for k in range(3, 15):
                if self._a(k) < self._b(k):
                    used += 1
            self.prns = used
            self.pdop_c = self._num(15, 2)
            self.hdop_c = self._num(16, 2)
            self.vdop_c = self._num(17, 2)
            self.sys_id = self._num(18, 0)
        elif kind == ZDA:
            self.time_ms = self._time(1)
            d = self._num(2, 0)
            m = self._num(3, 0)
            y = self._num(4, 0)
            if d is not None or m is not None or y is not None:
                self.date = ymd(y, m, d)
                if self.date is None:
                    self.bad_fields += 1
        elif kind == GSV:
            self.in_view = self._num(3, 0)
        elif kind == GST:
            self.time_ms = self._time(1)
            self.lat_sd_cm = self._num(6, 2)
            self.lon_sd_cm = self._num(7, 2)
        else:
            return False
        return True

    def _pgrmz(self):
        """$PGRMZ,alt,f,dim: altitude in whole feet (MSL, as Garmin's GGA) and the fix dimension
        (Garmin 190-00684-00 rev C, "Garmin Proprietary NMEA 0183 Sentences")."""
        a = self._a(1)
        b = a
        while b < self._b(1) and self._buf[b] != 46:  # whole feet: what precedes any '.'
            b += 1
        if a < b and self._ch(2) == 102:  # 'f'
            ft = dec(self._buf, a, b, 0)
            if ft is None:
                self.bad_fields += 1
            else:
                self.alt_mm = (ft * _FT_E6 + (500 if ft >= 0 else -500)) // 1000
        d = self._ch(3)
        if 49 <= d <= 51:  # '1'..'3'
            self.fix_dim = d - 48
            self.valid = d > 49
        return True


def _kind(buf, start):
    """The formatter after '$' and the talker, packed (0 when the line is too short)."""
    if len(buf) < start + 6:
        return 0
    return buf[start + 3] << 16 | buf[start + 4] << 8 | buf[start + 5]


def _fields(kind):
    """Fields a whole sentence has at least (NMEA 0183 2.0 layouts; later versions add more).
    GGA without its DGPS station and RMC without its magnetic variation (SiRF leaves it off)
    are whole: gpsd takes them too (13 and 8 fields; RMC's date kept here)."""
    if kind == GGA:
        return 13
    if kind == RMC:
        return 9
    if kind == GSA:
        return 17
    if kind == GNS or kind == RMZ:
        return 12 if kind == GNS else 3
    if kind == VTG or kind == GST:
        return 8
    if kind == GLL or kind == ZDA:
        return 6
    if kind == GSV:
        return 3  # counts; satellites follow, 4 fields each
    return 1  # not ours: its layout is unknown


def _cap(c):
    return 65 <= c <= 90


def _hex(c):
    """Value of one hex digit byte, or 256 (never a checksum) when it is not one."""
    if 48 <= c <= 57:
        return c - 48
    if 65 <= c <= 70:
        return c - 55
    if 97 <= c <= 102:
        return c - 87
    return 256
