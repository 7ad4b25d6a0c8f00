# The one place that decides how an uplink travels and when it is tried again; mechanisms
# (transport, outbox) only do what it says. Pure: times are ticks_ms values passed in.
#
# - UDP first, while the data link is up.
# - SMS fallback: at once when there is no data coverage (the link could not be opened), or
#   when no ack came within sms_after_ms of the first UDP try. The SMS carries the identical
#   sealed bytes (the server merges the copies); another SMS copy after sms_retry_ms at most.
# - Retries back off: retry_ms, doubled each try, capped at retry_max_ms.
# - Follow-up tracking after an SOS (inReach: every 1 min for 10 min, then every 10 min):
#   fast_interval_s during fast_for_s, then slow_interval_s; only the slow one below
#   low_battery_pct. A TRACKING downlink replaces these until stand-down.
from time import ticks_add, ticks_diff

from micropython import const

UDP = 'udp'
SMS = 'sms'
# link states reported by the transport
LINK_UP = const(1)  # UDP socket open
LINK_CONNECTING = const(0)  # registration or activation in progress
LINK_DOWN = const(-1)  # the network refused data (no PDP context, socket refused)

_SMS_TYPES = (0x01, 0x02, 0x03, 0x04, 0x06)  # SOS, POSITION, CANCEL, TAP_REPLY, LOW_BATTERY
_CFG_SMS_AFTER_S = const(6)  # CONFIG downlink keys (docs/protocol.md section 4)
_CFG_LOW_BATTERY = const(8)


class Policy:
    sms_after_ms = 15000  # no ack this long after the first UDP try: send by SMS too
    sms_retry_ms = 120000  # between two SMS copies of one packet
    retry_ms = 3000  # first UDP retry without an ack (LTE-M round trip is 0.1-1 s)
    retry_max_ms = 120000
    idle_ms = 60000  # nothing due: look again at least this often
    fast_interval_s = 60
    fast_for_s = 600
    slow_interval_s = 600
    low_battery_pct = 20

    def decide(self, e, now, link, sms_ok):
        # What to do with outbox entry e now: UDP, SMS or None (not yet / no way).
        if e.due is not None and ticks_diff(e.due, now) > 0:
            return None
        can_sms = sms_ok and e.type in _SMS_TYPES and (
            e.sms_at is None or ticks_diff(now, e.sms_at) >= self.sms_retry_ms)
        if link == LINK_UP:
            return SMS if can_sms and self._overdue(e, now) else UDP
        if can_sms and (link == LINK_DOWN or self._overdue(e, now)):
            return SMS
        return None

    def _overdue(self, e, now):
        return e.first is not None and ticks_diff(now, e.first) >= self.sms_after_ms

    def waiting(self, e, now):
        # The entry could not go now (no channel): when to look again.
        if e.first is None:
            e.first = now  # the SMS deadline runs from the first moment it could not go
        e.due = ticks_add(now, self.retry_ms)

    def sent(self, e, channel, now, ok):
        # Record an attempt (ok: the modem took it) and schedule the next one.
        if e.first is None:
            e.first = now
        if channel == SMS:
            if ok:
                e.sms += 1
                e.sms_at = now
            e.due = ticks_add(now, self.retry_ms)
            return
        e.tries += 1
        back = self.retry_ms << min(e.tries - 1, 8)
        e.due = ticks_add(now, back if back < self.retry_max_ms else self.retry_max_ms)

    def next_due(self, entries, now):
        # ms until the earliest due entry (0: something is due), or idle_ms
        wait = self.idle_ms
        for e in entries:
            d = 0 if e.due is None else ticks_diff(e.due, now)
            if d < wait:
                wait = d if d > 0 else 0
        return wait

    def track_interval_s(self, since_s, battery_pct):
        # Seconds to the next follow-up POSITION, since_s after the alert was raised.
        if battery_pct is not None and battery_pct < self.low_battery_pct:
            return self.slow_interval_s
        return self.fast_interval_s if since_s < self.fast_for_s else self.slow_interval_s

    def tracking(self, fast_interval_s, fast_for_s, slow_interval_s, low_battery_pct):
        # A TRACKING downlink: the police's own schedule (0 keeps the current value).
        self.fast_interval_s = fast_interval_s or self.fast_interval_s
        self.fast_for_s = fast_for_s or self.fast_for_s
        self.slow_interval_s = slow_interval_s or self.slow_interval_s
        self.low_battery_pct = low_battery_pct or self.low_battery_pct

    def configure(self, items):
        # CONFIG downlink items (key, value) this module owns; unknown keys are ignored.
        for k, v in items:
            if k == _CFG_SMS_AFTER_S:
                self.sms_after_ms = v * 1000
            elif k == _CFG_LOW_BATTERY:
                self.low_battery_pct = v
