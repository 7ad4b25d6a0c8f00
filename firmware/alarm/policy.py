"""The one place that decides how an uplink travels and when it is tried again; mechanisms
(transport, outbox) only do what it says. Pure: times are ticks_ms values passed in.

- UDP first, while the data link is up.
- SMS fallback: at once when there is no data coverage (the link could not be opened), or
  when no ack came within sms_after_ms of the first try (or of the first moment it could not
  go), whatever the UDP back-off is doing meanwhile. The SMS carries the identical sealed bytes
  (the server merges the copies); another SMS copy after sms_retry_ms at most. An SMS the
  modem refused is tried again after retry_ms, UDP retries going on beside it.
- UDP retries back off: retry_ms, doubled each try the modem took, capped at retry_max_ms. A
  send the modem refused is tried again after retry_ms; a data link that comes (back) up is
  tried at once, whatever the back-off.
- Follow-up tracking after an SOS (inReach: every 1 min for 10 min, then every 10 min):
  fast_interval_s during fast_for_s, then slow_interval_s; only the slow one below
  low_battery_pct. A TRACKING downlink replaces these until stand_down()."""
from time import ticks_add, ticks_diff

from micropython import const

UDP = "udp"
SMS = "sms"
# link states reported by the transport
LINK_UP = const(1)  # UDP socket open
LINK_CONNECTING = const(0)  # registration or activation in progress
LINK_DOWN = const(-1)  # the network refused data (no PDP context, socket refused)

# SOS, POSITION, CANCEL, TAP_REPLY, LOW_BATTERY, RECEIPT (a downlink that came by SMS is
# confirmed by SMS when there is no data)
_SMS_TYPES = (0x01, 0x02, 0x03, 0x04, 0x06, 0x09)
_CFG_SMS_AFTER_S = const(6)  # CONFIG downlink keys (docs/protocol.md section 4)
_CFG_LOW_BATTERY = const(8)
_SMS_AFTER_MAX_S = const(3600)  # a CONFIG can delay the SMS fallback, never switch it off
# ESP32 ticks_ms differences are valid within +-2**29 ms (~6.2 days): decide() keeps an
# entry's first moment within a day of now (it runs at least every idle_ms), so a packet stays
# overdue however long it waits.
_AGE_MAX_MS = const(86400000)


def _reached(t, now):
    """t: ticks_ms of a moment, None = already"""
    return t is None or ticks_diff(t, now) <= 0


class Policy:
    sms_after_ms = 15000  # no ack this long after the first try: send by SMS too
    sms_retry_ms = 120000  # between two SMS copies of one packet
    retry_ms = 3000  # first UDP retry without an ack (LTE-M round trip is 0.1-1 s)
    retry_max_ms = 120000
    idle_ms = 60000  # nothing due: look again at least this often
    fast_interval_s = 60
    fast_for_s = 600
    slow_interval_s = 600
    low_battery_pct = 20

    def __init__(self):
        self._track = None  # the police's TRACKING (fast s, for s, slow s, low %), until stand-down

    def decide(self, e, now, link, sms_ok):
        """What to do with outbox entry e now: UDP, SMS or None (not yet / no way)."""
        up = link == LINK_UP
        if up and not e.up:
            e.udp_at = e.due = None  # a new data link: try it at once
        e.up = up
        if e.first is not None and ticks_diff(now, e.first) > _AGE_MAX_MS:
            e.first = ticks_add(now, -_AGE_MAX_MS)
        if not _reached(e.due, now):
            return None
        sms = sms_ok and e.type in _SMS_TYPES and _reached(e.sms_at, now)
        if up:
            if sms and self._overdue(e, now):
                return SMS
            return UDP if _reached(e.udp_at, now) else None
        if sms and (link == LINK_DOWN or self._overdue(e, now)):
            return SMS
        return None

    def _overdue(self, e, now):
        return e.first is not None and ticks_diff(now, e.first) >= self.sms_after_ms

    def _sms_due(self, e):
        """ticks_ms when an SMS of e is next due over a link that is up (None: not an SMS type)"""
        if e.type not in _SMS_TYPES or e.first is None:
            return None
        t = ticks_add(e.first, self.sms_after_ms)
        return e.sms_at if e.sms_at is not None and ticks_diff(e.sms_at, t) > 0 else t

    def _schedule(self, e, now, t):
        """e.due = the earliest of t and the moments after now a channel is due for e"""
        for c in (e.udp_at, self._sms_due(e)):
            if c is not None and ticks_diff(c, now) > 0 and (t is None or ticks_diff(c, t) < 0):
                t = c
        e.due = t

    def waiting(self, e, now):
        """The entry could not go now (no channel): when to look again."""
        if e.first is None:
            e.first = now  # the SMS deadline runs from the first moment it could not go
        self._schedule(e, now, ticks_add(now, self.retry_ms))

    def sent(self, e, channel, now, ok):
        """Record an attempt (ok: the modem took it) and schedule the next one."""
        if e.first is None:
            e.first = now
        if channel == SMS:
            if ok:
                e.sms += 1
            e.sms_at = ticks_add(now, self.sms_retry_ms if ok else self.retry_ms)
        else:
            back = self.retry_ms
            if ok:
                e.tries += 1
                back <<= min(e.tries - 1, 8)
            e.udp_at = ticks_add(now, back if back < self.retry_max_ms else self.retry_max_ms)
        if _reached(e.udp_at, now):
            e.due = None  # UDP may go too (the SMS went first): look again at once
        else:
            self._schedule(e, now, None)

    def next_due(self, entries, now):
        """ms until the earliest due entry (0: something is due), or idle_ms"""
        wait = self.idle_ms
        for e in entries:
            d = 0 if e.due is None else ticks_diff(e.due, now)
            if d < wait:
                wait = d if d > 0 else 0
        return wait

    def track_interval_s(self, since_s, battery_pct):
        """Seconds to the next follow-up POSITION, since_s after the alert was raised."""
        fast, fast_for, slow, low = self._track or (
            self.fast_interval_s, self.fast_for_s, self.slow_interval_s, self.low_battery_pct)
        if battery_pct is not None and battery_pct < low:
            return slow
        return fast if since_s < fast_for else slow

    def tracking(self, fast_interval_s, fast_for_s, slow_interval_s, low_battery_pct):
        """A TRACKING downlink: the police's own schedule for this alert (0 keeps a value)."""
        cur = self._track or (
            self.fast_interval_s, self.fast_for_s, self.slow_interval_s, self.low_battery_pct)
        self._track = (fast_interval_s or cur[0], fast_for_s or cur[1], slow_interval_s or cur[2],
                       low_battery_pct or cur[3])

    def stand_down(self):
        """The alert is over: the next one starts with the device's own schedule."""
        self._track = None

    def configure(self, items):
        """CONFIG downlink items (key, value) this module owns; unknown keys are ignored."""
        for k, v in items:
            if k == _CFG_SMS_AFTER_S:
                self.sms_after_ms = (v if v < _SMS_AFTER_MAX_S else _SMS_AFTER_MAX_S) * 1000
            elif k == _CFG_LOW_BATTERY:
                self.low_battery_pct = v
