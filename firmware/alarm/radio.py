"""The one radio, shared: the modem's own GNSS as the alarm's position source, in windows
gnss/plan.py times around the alarm's uplinks: AT+CGNSPWR / AT+CGPS on, the modem's fix polled
(gnss/at.py parses it into the same Fix as a UART receiver's) into the Gnss service, off again.
While a window holds the RF of a modem without "gnss_with_lte", the transport's uplinks wait
(Transport.hold) and go the moment it closes."""
import asyncio
import time

from console import event
from gnss.plan import SOS_NONE, SOS_UNACKED, SOS_UNSENT
from micropython import const

from alarm.policy import LINK_CONNECTING, LINK_UP

_IDLE_MS = const(1000)  # look at the plan at least this often
_ALERT_MS = const(250)  # in an alert (the window follows the SOS's ack without delay)
_SETTLE_MS = const(60000)  # no network this long after the modem came up: GNSS need not wait


class ModemGnss:
    def __init__(self, runner, transport, plan, log=print):
        self.r = runner
        self.tr = transport
        self.m = transport.m
        self.gnss = runner.gnss
        self.plan = plan
        self.log = log
        self._ready_at = None  # ticks_ms the modem was seen ready, the link not up yet
        self._pct = None  # battery %, read after each window

    def sos(self, now):
        """-> (SOS_*, ms since the first send) of the oldest SOS in the outbox. One that has no
        way out (no data link, no SMS) holds nothing back: GNSS may use the idle RF meanwhile."""
        for e in self.r.outbox.entries:
            if e.sos:
                if not (e.tries or e.sms) or e.first is None:
                    tr = self.tr
                    return (SOS_UNSENT if tr.link == LINK_UP or tr.sms_ok() else SOS_NONE), 0
                return SOS_UNACKED, time.ticks_diff(now, e.first)
        return SOS_NONE, 0

    def _battery_pct(self):
        b = self.r.battery
        if b is None:
            return None
        try:
            b.sample()
            return b.percent
        except Exception:  # a bad gauge must not stop the fixes
            return None

    def _lte_settled(self, now):
        """The transport is not about to open the data link (an open under a window fails and
        keeps the link down for its retry period): up, refused, or no network for a while."""
        tr, m = self.tr, self.m
        if not (tr.ready and m.ready):
            self._ready_at = None
            return False
        if tr.link != LINK_CONNECTING:
            return True
        if self._ready_at is None:
            self._ready_at = now
        return not m.registered() and time.ticks_diff(now, self._ready_at) >= _SETTLE_MS

    async def run(self):
        p = self.plan
        if p.with_lte:
            self.log(event("gnss_modem", "beside_lte=1"))
        else:
            self.log(event("gnss_modem", "beside_lte=0"))
        while True:
            now = time.ticks_ms()
            st, sent_ms = self.sos(now)
            alert = self.r.alarm.active
            wait = p.wait_ms(now, alert, st, sent_ms, self.gnss.age_ms(), self._pct)
            if wait == 0 and self._lte_settled(now):
                try:
                    await self._window(alert)
                except Exception as e:  # a bug here must not end the fixes, nor hold uplinks
                    self.log(event("fault", "what=gnss_task", repr(e)))
                finally:
                    self._release()
            else:
                look = _ALERT_MS if alert else _IDLE_MS
                await asyncio.sleep_ms(min(wait, look) or look)

    async def _window(self, alert):
        p = self.plan
        m = self.m
        if not p.with_lte:
            await self.tr.hold()
        t0 = time.ticks_ms()
        if self.sos(t0)[0] == SOS_UNSENT and not p.with_lte:
            return self._closed(t0, "sos waiting", False)  # stored while an uplink drained
        p.opened(alert)
        why = "error"
        fixes = 0
        try:
            self.gnss.power(True)  # the antenna rail, where the board switches one
            await m.gnss_power(True)
            self.log(event("gnss_window_open", "for=%s max_s=%d" % (
                "alert" if alert else "refresh", p.window_ms(alert) // 1000)))
            while True:
                f = await m.gnss_fix()
                good = False
                if f is not None and not isinstance(f, str):
                    self.gnss.feed_fix(f)
                    good = f.has_position and p.good(f.accuracy_m)
                    fixes += good
                    if good and fixes == 1:
                        self.log(event("gnss_fix", "lat=%s lon=%s accuracy_m=%s after_ms=%d" % (
                            f.lat, f.lon, f.accuracy_m, time.ticks_diff(time.ticks_ms(), t0))))
                now = time.ticks_ms()
                why = p.stop(now, t0, self.r.alarm.active, self.sos(now)[0], good)
                if why:
                    break
                await self._nap(p.poll_ms)
        except Exception as e:  # AT error, timeout, modem reset: the window ends, LTE goes on
            self.log(event("fault", "what=gnss_window", repr(e)))
        try:
            await m.gnss_power(False)
        except Exception as e:
            self.log(event("fault", "what=gnss_off", repr(e)))
        self._closed(t0, why, True, fixes > 0)

    async def _nap(self, ms):
        """Sleep until the next fix query, or until a packet is stored (an SOS closes the window
        at once; the send loop, held meanwhile, is kicked again when the window closes)."""
        if self.plan.with_lte:
            await asyncio.sleep_ms(ms)  # nothing waits on this window
            return
        k = self.r.kick
        k.clear()
        try:
            await asyncio.wait_for_ms(k.wait(), ms)
        except asyncio.TimeoutError:
            pass

    def _closed(self, t0, why, opened, got_fix=False):
        now = time.ticks_ms()
        if opened:
            try:
                self.gnss.power(False)
            except OSError as e:  # the PMU did not answer: the antenna may stay on
                self.log(event("fault", "what=gnss_antenna_off", repr(e)))
            self.plan.closed(now, got_fix)
            self._pct = self._battery_pct()
        self._release()
        self.log(event("gnss_window_closed", "after_ms=%d why=%s" % (
            time.ticks_diff(now, t0), why.replace(" ", "_"))))

    def _release(self):
        if self.tr.release():
            self.r.kick.set()  # what waited goes now
