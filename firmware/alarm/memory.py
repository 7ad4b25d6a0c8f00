"""What the terminal keeps across deep sleep and resets: the last-known fix and serving cell with
their age, UTC as last known, and when the next check-in is due.

- RTC memory (machine.RTC().memory(), 2 KB) holds all of it: kept through deep sleep and every
  reset the RTC domain survives (watchdog, software, brown-out); lost with the power.
- A flash copy of the fix and cell (FILE) outlives a power cut: written before deep sleep and at
  most every _FLASH_EVERY_S while awake (flash wear: a 1 Hz receiver must not write 1 Hz).
Ages run on the RTC clock (time.time(): it counts through deep sleep and resets, and restarts at
2000-01-01 after a power cut). After a power cut the fix from flash has no RTC age; one with its
own UTC time gets its age from the first UTC source (network or GNSS), until then it goes out as
a last-known fix of unknown age — never withheld."""
import json
import time

from console import event, flag, opt
from gnss.fix import Fix
from micropython import const
from proto.packet import TIME_NONE, TIME_RTC

from alarm import report

FILE = "/lastfix"
_VERSION = const(1)
_RTC_EVERY_S = const(5)  # RTC memory copy of a new fix at most this often (cheap, not free)
_FLASH_EVERY_S = const(300)
_FIX = ("mode", "date", "time_ms", "lat_e7", "lon_e7", "alt_mm", "speed_mms", "course_cdeg",
        "hdop_c", "sats_used", "accuracy_cm")
_CELL = ("plmn", "tac", "ci", "rat", "signal_dbm")


def _fields(obj, names):
    return [getattr(obj, n) for n in names]


def _put(obj, names, values):
    for n, v in zip(names, values):
        setattr(obj, n, v)
    return obj


class Memory:
    """m = Memory(machine.RTC()); m.restore(runner, power_cut); ...; m.save(runner, flash=True)"""

    def __init__(self, rtc, path=FILE, log=print):
        self.rtc = rtc
        self.path = path
        self.log = log
        self.checkin_at = None  # RTC s the next check-in is due (None: not known)
        self._pending = None  # a restored fix waiting for UTC to learn its age: its UTC s
        self._rtc_s = self._flash_s = -_FLASH_EVERY_S
        self._written = None  # what the flash copy holds (no rewrite of the same)

    # -------------------------------------------------------------- save
    def record(self, runner, now_s):
        fix = runner.gnss.fix if runner.gnss is not None else None
        rec = {"v": _VERSION, "at": now_s}
        if fix is not None and fix.has_position:
            age = fix.age_ms(time.ticks_ms())
            rec["fix"] = _fields(fix, _FIX)
            rec["fix_at"] = None if age is None else now_s - age // 1000
        c = runner.cell
        if c.plmn and c.ci is not None:
            rec["cell"] = _fields(c, _CELL)
        utc, src = runner.clock.at(time.ticks_ms())
        if utc is not None:
            rec["utc"] = [utc - now_s, src]  # UTC = RTC + offset, as good as its source was
        if runner.checkin_due is not None:
            rec["checkin_at"] = now_s + time.ticks_diff(runner.checkin_due, time.ticks_ms()) // 1000
        return rec

    def save(self, runner, flash=False):
        """Into RTC memory; onto flash too when asked (before deep sleep) or when due."""
        now = time.time()
        rec = self.record(runner, now)
        data = json.dumps(rec)
        lasting = dict(rec)  # what the flash copy is compared by: no times that always move
        lasting.pop("at")
        lasting.pop("checkin_at", None)
        kept = json.dumps(lasting)
        try:
            self.rtc.memory(data.encode())
        except Exception as e:  # a full or failing RTC memory: the flash copy still holds it
            self.log(event("fault", "what=rtc_memory", repr(e)))
        self._rtc_s = now
        if kept != self._written and (flash or now - self._flash_s >= _FLASH_EVERY_S):
            self._flash_s = now
            self._written = kept
            try:
                with open(self.path + ".tmp", "w") as f:
                    f.write(data)
                import os
                os.rename(self.path + ".tmp", self.path)
            except OSError as e:
                self.log(event("fault", "what=lastfix_write", repr(e)))

    def on_fix(self, runner):
        """A new fix: keep it, as often as the copies allow."""
        now = time.time()
        if now - self._rtc_s >= _RTC_EVERY_S:
            self.save(runner)

    # -------------------------------------------------------------- restore
    def _load(self, power_cut):
        """-> (record, from RTC memory?) or (None, False). After a power cut RTC memory is empty
        on the chip; the flag also keeps a stale copy from counting there."""
        if not power_cut:
            try:
                rec = json.loads(bytes(self.rtc.memory()))
                if rec.get("v") == _VERSION:
                    return rec, True
            except (ValueError, TypeError, AttributeError):
                pass
        try:
            with open(self.path) as f:
                rec = json.load(f)
            if rec.get("v") == _VERSION:
                return rec, False
        except (OSError, ValueError):
            pass
        return None, False

    def restore(self, runner, power_cut):
        """Put what was kept back into the runner: fix (with its age), cell, UTC, check-in due."""
        rec, rtc = self._load(power_cut)
        if rec is None:
            return False
        now = time.time()
        ticks = time.ticks_ms()
        age = None
        f = rec.get("fix")
        if f and runner.gnss is not None and runner.gnss.fix is None and len(f) == len(_FIX):
            fix = _put(Fix(), _FIX, f)
            at = rec.get("fix_at")
            if rtc and at is not None and now >= at:
                age = now - at
                fix.t_ms = time.ticks_add(ticks, -age * 1000)
            elif fix.date and fix.time_ms is not None:
                self._pending = report.unix_s(fix.date, fix.time_ms)
            runner.gnss.fix = fix
        c = rec.get("cell")
        if c and len(c) == len(_CELL) and not runner.cell.plmn:
            _put(runner.cell, _CELL, c)
        u = rec.get("utc")
        if rtc and u and runner.clock.source == TIME_NONE:
            runner.clock.set(now + u[0], 0, TIME_RTC, ticks)  # the RTC's word, below network/GNSS
        if rtc:
            self.checkin_at = rec.get("checkin_at")
        self.log(event("restored", "from=%s fix=%d fix_age_s=%s cell=%d" % (
            "rtc" if rtc else "flash", flag(f), opt(age), flag(c))))
        return True

    def age_by_utc(self, runner):
        """A fix restored after a power cut learns its age once UTC is known. -> True when done."""
        if self._pending is None:
            return True
        fix = runner.gnss.fix if runner.gnss is not None else None
        if fix is None or fix.t_ms is not None:
            self._pending = None
            return True
        ticks = time.ticks_ms()
        utc, src = runner.clock.at(ticks)
        if utc is None or src <= TIME_RTC:
            return False
        age = utc - self._pending
        if age >= 0:
            fix.t_ms = time.ticks_add(ticks, -age * 1000)
        self._pending = None
        return True
