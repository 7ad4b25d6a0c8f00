"""When the modem's own GNSS runs (alarm/radio.py does what this says). Pure: ticks_ms passed in.

The mission's rule: an SOS goes out at once with the best position known (last-known fix with
its age, serving cell); a fresh fix follows as a POSITION the moment there is one.
A modem without "gnss_with_lte" (SIM7080: one RF path) cannot send while its GNSS runs, so:
- no window opens while an SOS is unsent, and an open one closes at once when an SOS is
  stored (an idle refresh never holds an alert back);
- in an alert, the window follows the SOS once the server acked it, or ack_grace_ms after its
  first send (the SMS fallback at 15 s has had its chance); it closes at the first good fix
  or after alert_window_ms (unacked_window_ms while that SOS has no ack: its retries wait);
  LTE then has alert_gap_ms for the POSITION, acks and questions;
- with no alert, the last-known fix is refreshed every idle_every_s (idle_low_every_s below
  low_battery_pct; each window without a fix doubles it, up to idle_max_s: no sky indoors),
  idle_window_ms at most (a hot start takes seconds), and at boot when there is none.
A "gnss_with_lte" modem (A7670) polls beside LTE: no holding, and back-to-back windows in an
alert (the receiver stays on while the alert is live)."""
from time import ticks_diff

from micropython import const

SOS_NONE = const(0)  # no SOS waiting for its ack
SOS_UNSENT = const(1)  # an SOS not handed to the modem yet
SOS_UNACKED = const(2)  # sent, no ack yet

_GOOD_ACC_M = const(100)  # a fix this good closes the window (report.py trusts <= 100 m)


class Plan:
    poll_ms = 500  # fix query period in a window
    fresh_ms = 10000  # a fix younger than this needs no window (report.py's trusted age)
    alert_window_ms = 90000  # modem GNSS: cold start 30-35 s open sky, 1-3 min in the field
    idle_window_ms = 60000
    alert_gap_ms = 60000  # LTE time between two windows in an alert
    ack_grace_ms = 20000
    unacked_window_ms = 35000  # a window while the SOS has no ack: a cold start, no more
    idle_every_s = 900
    idle_low_every_s = 3600
    idle_max_s = 14400  # windows without a fix (indoors) double the idle period up to this
    low_battery_pct = 20

    def __init__(self, with_lte=False):
        self.with_lte = with_lte
        self.last_end = None  # ticks_ms the last window closed
        self.alert_windows = 0  # windows since the alert was raised
        self.misses = 0  # windows in a row that closed without a fix
        self._alert = False

    def wait_ms(self, now, alert, sos, sos_sent_ms, fix_age_ms, battery_pct=None):
        """ms until a window may open (0: now). sos: SOS_*; sos_sent_ms: ms since its first send."""
        if alert != self._alert:
            self._alert = alert
            self.alert_windows = 0
        if not self.with_lte:
            if sos == SOS_UNSENT:
                return self.poll_ms  # the SOS first
            if sos == SOS_UNACKED and sos_sent_ms < self.ack_grace_ms:
                return self.ack_grace_ms - sos_sent_ms
        if alert:
            if not self.with_lte and fix_age_ms is not None and fix_age_ms < self.fresh_ms:
                return self.fresh_ms - fix_age_ms
            gap = 0 if self.with_lte or not self.alert_windows else self.alert_gap_ms
        else:
            if self.last_end is None:
                return 0  # nothing known yet: boot-time fix
            low = battery_pct is not None and battery_pct < self.low_battery_pct
            gap = (self.idle_low_every_s if low else self.idle_every_s) << min(self.misses, 4)
            gap = min(gap, self.idle_max_s) * 1000
        if self.last_end is None:
            return 0
        left = gap - ticks_diff(now, self.last_end)
        return left if left > 0 else 0

    def window_ms(self, alert):
        return self.alert_window_ms if alert else self.idle_window_ms

    def good(self, accuracy_m):
        """A fix that closes the window (accuracy_m: Fix.accuracy_m, None if unknown)"""
        return accuracy_m is not None and accuracy_m <= _GOOD_ACC_M

    def stop(self, now, opened, alert, sos, good_fix):
        """-> why the window opened at `opened` (for an alert or not) closes now, or None"""
        if not self.with_lte:
            if sos == SOS_UNSENT:
                return "sos waiting"
            if sos == SOS_UNACKED and ticks_diff(now, opened) >= self.unacked_window_ms:
                return "sos unacked"  # its retries (UDP, SMS) must not wait a whole window
        if ticks_diff(now, opened) >= self.window_ms(alert):
            return "time up"
        if good_fix and not (alert and self.with_lte):
            return "fix"
        return None

    def opened(self, alert):
        if alert:
            self.alert_windows += 1

    def closed(self, now, got_fix=True):
        self.last_end = now
        self.misses = 0 if got_fix else self.misses + 1
