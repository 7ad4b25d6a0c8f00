"""The report block every uplink carries (docs/protocol.md section 2), filled from what the
device knows at the event: the last GNSS fix (or the last known one, with its age: never
withheld), the serving cell, the battery, and UTC from the best time source seen."""
from time import ticks_diff

from micropython import const
from proto.packet import TIME_NONE, Report

_TRUST_AGE_S = const(10)  # a fix older than this is "last known", not trusted
_TRUST_ACC_M = const(100)  # nor one worse than this (eCall: trusted = within ~150 m)
_MODE_2D = const(2)


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (eras of 400 years, March-based year)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def unix_s(date, time_ms):
    """date yyyymmdd, time_ms ms since 00:00 UTC -> UTC Unix seconds"""
    return days_from_civil(date // 10000, date // 100 % 100, date % 100) * 86400 + time_ms // 1000


class UtcClock:
    """UTC by the device's ticks_ms, set from the best source seen; a source replaces the current
    one only if it is at least as good (GNSS 3 > network 2 > RTC 1). Valid for ~6 days after
    the last set (ticks_ms differences), which fixes and the modem's clock refresh long before."""
    def __init__(self):
        self.source = TIME_NONE
        self._s = 0  # UTC seconds at ticks _t
        self._t = 0

    def set(self, unix_s, ms, source, at_ticks):
        """unix_s + ms/1000 was the time at at_ticks"""
        if source < self.source:
            return False
        self.source = source
        self._s = unix_s
        self._t = at_ticks - ms
        return True

    def at(self, ticks):
        """-> (UTC seconds, source) at ticks; (None, TIME_NONE) before any source"""
        if self.source == TIME_NONE:
            return None, TIME_NONE
        return self._s + ticks_diff(ticks, self._t) // 1000, self.source


class Cell:
    """The serving cell as the modem last reported it (27.007 +CEREG, +COPS, +CESQ/+CSQ)."""
    def __init__(self):
        self.plmn = None  # "45005" (MCC + 2- or 3-digit MNC)
        self.tac = None
        self.ci = None
        self.rat = 0  # protocol RAT: 0 unknown 1 GSM 2 UMTS 3 LTE 4 LTE-M 5 NB-IoT 6 NR
        self.signal_dbm = None


def rat_of(act, lte_m=False):
    """27.007 <AcT> -> protocol RAT; an LTE-M-only module reports E-UTRAN (7) for LTE-M.
    10 is E-UTRA connected to a 5G core: still an LTE cell; 11-13 NR (13 = EN-DC)."""
    if act is None:
        return 0
    if act in (0, 1, 3, 8):
        return 1
    if act in (2, 4, 5, 6):
        return 2
    if act in (7, 10):
        return 4 if lte_m else 3
    if act == 9:
        return 5
    return 6 if act >= 10 else 0


def fill(at, fix=None, clock=None, battery_pct=None, charging=False, cell=None, drill=False):
    """A Report for an event at ticks `at`. fix: a gnss Fix with a position (current or last
    known) or None; cell: a Cell or None. Never raises for a missing or odd field."""
    r = Report()
    if clock is not None:
        r.time_s, r.time_source = clock.at(at)
    if fix is not None and fix.has_position:
        r.fix = True
        r.lat_e7, r.lon_e7 = fix.lat_e7, fix.lon_e7
        acc = fix.accuracy_m
        r.accuracy_m = None if acc is None else int(acc + 0.5)
        age = None
        if fix.t_ms is not None:
            age = ticks_diff(at, fix.t_ms) // 1000
            age = age if age > 0 else 0
        r.fix_age_s = age
        r.sats = fix.sats_used
        r.trusted = (age is not None and age <= _TRUST_AGE_S and fix.mode >= _MODE_2D and
                     acc is not None and acc <= _TRUST_ACC_M)
        if fix.speed_mms is not None and fix.course_cdeg is not None:
            r.moving = True
            r.speed_cm_s = fix.speed_mms // 10
            r.course_deg = fix.course_cdeg // 100
    if cell is not None and cell.plmn and cell.ci is not None:
        r.cell = True
        r.mcc, r.mnc = cell.plmn[:3], cell.plmn[3:]
        r.tac, r.cell_id, r.rat = cell.tac, cell.ci, cell.rat
        r.signal_dbm = None if cell.signal_dbm is None else int(cell.signal_dbm)
    # a gauge or modem reporting a float must not make the packet unsealable (struct wants ints)
    r.battery_pct = None if battery_pct is None else int(battery_pct)
    r.charging = bool(charging)
    r.drill = drill
    return r
