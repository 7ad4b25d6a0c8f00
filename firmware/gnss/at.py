"""Fixes from modem-integrated GNSS answers (one response line each), the same `Fix` as NMEA.

Each parser takes the response line (str or bytes, with its '+XXX: ' prefix) and returns a Fix:
mode 1 when the modem answers "no fix", None when the line is not that answer at all.
Fields are read by position; trailing extra fields (firmware revisions add some) are ignored.
"""

from micropython import const

from gnss.fix import MODE_2D, MODE_3D, MODE_NO_FIX, Fix
from gnss.nmea import coord, ddmmyy, dec, hms, ymd

_E7 = const(10000000)


def _fields(line, prefix):
    if isinstance(line, str):
        line = line.encode()
    line = line.strip()
    if not line.startswith(prefix):
        return None
    return [f.strip() for f in line[len(prefix) :].split(b",")]


def _n(f, scale):
    return dec(f, 0, len(f), scale)


def _deg(f, max_deg):
    """Signed decimal degrees -> 1e-7 degree, None if empty or out of range."""
    v = _n(f, 7)
    if v is None or not -max_deg * _E7 <= v <= max_deg * _E7:
        return None
    return v


def _ddmm(f, hemi, max_deg):
    """ddmm.mmmm with its hemisphere as a separate field or glued at the end ('3150.7223N')."""
    if not hemi and f and f[-1] in b"NSEW":
        hemi = f[-1:]
        f = f[:-1]
    return coord(f, 0, len(f), hemi[0] if hemi else 0, max_deg)


def _kmh(f):
    v = _n(f, 3)  # km/h * 1000 -> mm/s
    return None if v is None else (v * 10 + 18) // 36


def _knots(f):
    v = _n(f, 3)
    return None if v is None else (v * 1852 + 1800) // 3600


def _position(fix, lat, lon, alt):
    """Set the position and the mode it supports: 3D with an altitude, 2D without."""
    if lat is None or lon is None or (lat == 0 and lon == 0):
        fix.mode = MODE_NO_FIX
        return fix
    fix.lat_e7 = lat
    fix.lon_e7 = lon
    fix.alt_mm = alt
    fix.mode = MODE_3D if alt is not None else MODE_2D
    return fix


def cgnsinf(line):
    """SIMCom SIM7000/SIM7080/SIM868 `+CGNSINF:` run,fix,yyyyMMddhhmmss.sss,lat,lon,alt,
    speed km/h,course,fix mode,-,HDOP,PDOP,VDOP,-,in view,GPS used,GLONASS used,... (21 fields
    documented, 22 seen from a SIM7000: only the first 17 are read)."""
    f = _fields(line, b"+CGNSINF:")
    if f is None or len(f) < 8:
        return None
    fix = Fix()
    t = f[2]
    if len(t) >= 14:
        fix.date = ymd(_n(t[0:4], 0), _n(t[4:6], 0), _n(t[6:8], 0))
        fix.time_ms = hms(t, 8, len(t))
    if _n(f[1], 0) != 1:
        fix.mode = MODE_NO_FIX
        return fix
    _position(fix, _deg(f[3], 90), _deg(f[4], 180), _n(f[5], 3))
    fix.speed_mms = _kmh(f[6])
    fix.course_cdeg = _n(f[7], 2)
    if len(f) > 10:
        fix.hdop_c = _n(f[10], 2)
    if len(f) > 16:
        gps = _n(f[15], 0)
        glo = _n(f[16], 0)
        if gps is not None or glo is not None:
            fix.sats_used = (gps or 0) + (glo or 0)
    return fix


def cgpsinfo(line):
    """SIMCom SIM7500/SIM7600/A7670 `+CGPSINFO:` ddmm.mmmmmm,N,dddmm.mmmmmm,E,ddmmyy,
    hhmmss.s,alt,speed knots,course (all empty without a fix)."""
    f = _fields(line, b"+CGPSINFO:")
    if f is None or len(f) < 8:
        return None
    fix = Fix()
    fix.date = ddmmyy(f[4], 0, len(f[4]))
    fix.time_ms = hms(f[5], 0, len(f[5]))
    _position(fix, _ddmm(f[0], f[1], 90), _ddmm(f[2], f[3], 180), _n(f[6], 3))
    if fix.mode >= MODE_2D:
        fix.speed_mms = _knots(f[7])
        if len(f) > 8:
            fix.course_cdeg = _n(f[8], 2)
    return fix


def cgnssinfo(line):
    """SIMCom `+CGNSSINFO:` mode,GPS SVs,GLONASS SVs,[Galileo SVs,]BeiDou SVs,lat,N/S,lon,E/W,
    ddmmyy,hhmmss.s,alt,speed knots,course,PDOP,HDOP,VDOP. SIM7600 sends 16 fields; A7670 adds
    Galileo (17+) and may give decimal degrees instead of ddmm.mmmm."""
    f = _fields(line, b"+CGNSSINFO:")
    if f is None or len(f) < 15:
        return None
    fix = Fix()
    mode = _n(f[0], 0)
    k = 4 if len(f) == 16 else 5  # index of latitude
    svs = 0
    for i in range(1, k):
        svs += _n(f[i], 0) or 0
    fix.date = ddmmyy(f[k + 4], 0, len(f[k + 4]))
    fix.time_ms = hms(f[k + 5], 0, len(f[k + 5]))
    if mode is None or mode < 2:
        fix.mode = MODE_NO_FIX
        return fix
    lat = f[k]
    if lat.find(b".") >= 4:
        lat = _ddmm(lat, f[k + 1], 90)
        lon = _ddmm(f[k + 2], f[k + 3], 180)
    else:
        lat = _deg(lat, 90)
        lon = _deg(f[k + 2], 180)
        if lat is not None and f[k + 1] == b"S":
            lat = -lat
        if lon is not None and f[k + 3] == b"W":
            lon = -lon
    _position(fix, lat, lon, _n(f[k + 6], 3))
    if fix.mode >= MODE_2D:
        fix.mode = MODE_3D if mode >= 3 and fix.alt_mm is not None else MODE_2D
        fix.speed_mms = _knots(f[k + 7])
        fix.course_cdeg = _n(f[k + 8], 2)
        fix.hdop_c = _n(f[k + 10], 2)
        fix.sats_used = svs
    return fix


def qgpsloc(line):
    """Quectel `+QGPSLOC:` UTC,lat,lon,HDOP,alt,fix(2/3),COG ddd.mm,spkm,spkn,ddmmyy,nsat.
    <mode> 0 glues the hemisphere to ddmm.mmmm ('3150.7223N'), 2 gives signed degrees; <mode> 1
    puts the hemisphere in its own field (13 fields). No fix is `+CME ERROR: 516`, not this."""
    f = _fields(line, b"+QGPSLOC:")
    if f is None or len(f) < 11:
        return None
    fix = Fix()
    if len(f) >= 13:  # <mode> 1: lat,N/S,lon,E/W
        lat = _ddmm(f[1], f[2], 90)
        lon = _ddmm(f[3], f[4], 180)
        f = [f[0], b"", b""] + f[5:]
    elif f[1] and f[1][-1] in b"NS":
        lat = _ddmm(f[1], b"", 90)
        lon = _ddmm(f[2], b"", 180)
    else:
        lat = _deg(f[1], 90)
        lon = _deg(f[2], 180)
    fix.time_ms = hms(f[0], 0, len(f[0]))
    fix.date = ddmmyy(f[9], 0, len(f[9]))
    _position(fix, lat, lon, _n(f[4], 3))
    if fix.mode >= MODE_2D:
        if _n(f[5], 0) == 2:
            fix.mode = MODE_2D
        fix.hdop_c = _n(f[3], 2)
        cog = _n(f[6], 2)  # ddd.mm: degrees and minutes
        if cog is not None:
            fix.course_cdeg = cog // 100 * 100 + (cog % 100 * 100 + 30) // 60
        fix.speed_mms = _kmh(f[7])
        fix.sats_used = _n(f[10], 0)
    return fix
