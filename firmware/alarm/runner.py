"""The alarm's thin task layer: gesture -> sealed SOS -> outbox (stored before any send) ->
transport (as policy.py decides) -> ACK downlink (opened by proto) -> haptics.
Console lines are console.event()s (docs/console-events.md): tools read them."""
import asyncio
import time

import supervise
from console import event, flag, opt
from micropython import const
from periph.haptics import LOW_BATTERY, QUESTION, SENT
from proto import ProtoError
from proto.packet import (
    ACK,
    CONFIG,
    LISTEN_IN,
    STAND_DOWN,
    TIME_GNSS,
    TIME_NETWORK,
    TRACKING,
    from_text,
)
from proto.packet import QUESTION as QUESTION_MSG

from alarm import report
from alarm.ask import Ask
from alarm.feedback import Alarm
from alarm.policy import Policy

TRIGGER_HOLD = const(1)
TRIGGER_PRESSES = const(2)
_POS_SCHEDULED = const(1)
_POS_FRESH = const(2)
_LTE_M_MODEMS = ("sim7080", "bg95")
_FIRST_CHECKIN_MS = const(60000)  # after boot: the police learn it is alive (again)
_BATTERY_CHECK_MS = const(300000)  # the gauge is looked at this often between check-ins


class Runner:
    def __init__(self, codec, counter, guard, outbox, haptics, gnss=None, battery=None,
                 policy=None, drill=False, log=print, counting=None, cancel=None,
                 checkin_s=86400, fw=(0, 0, 0), plan=None, centre=None):
        self.codec = codec
        self.counter = counter
        self.guard = guard
        self.outbox = outbox
        self.haptics = haptics
        self.gnss = gnss
        self.battery = battery
        self.policy = policy or Policy()
        self.drill = drill
        self.log = log
        self.alarm = Alarm()
        self.ask = Ask()
        self.counting = counting  # counting(on): the button's COUNT gestures on/off
        # Secret press counts, set at provisioning: {"presses": 4, "duress_presses": 5}. Both
        # feel and look the same to anyone watching; under duress the alert stays live.
        self.cancel_cfg = cancel or {}
        self.checkin_s = checkin_s  # heartbeat period, s (0: none)
        self.fw = fw
        self._answer = None  # counter of the last tap reply, felt as SENT when acked
        self.clock = report.UtcClock()
        self.cell = report.Cell()
        self.transport = None  # set by start()
        self.kick = asyncio.Event()  # something to send, or a channel changed
        self._raised = asyncio.Event()
        self._fresh = False  # an SOS went without a trusted fix: send one when there is
        self._battery_pct = None
        self.plan = plan  # gnss.plan.Plan on a board whose GNSS is the modem's, else None
        self.radio = None  # alarm.radio.ModemGnss: the modem's GNSS taking turns with uplinks
        self.centre = centre  # the centre's voice line (E.164) a silent call dials
        self.listen = None  # alarm.listen.Listen, made by the first LISTEN_IN
        self.first_checkin_ms = _FIRST_CHECKIN_MS  # alarm.memory's schedule after a deep sleep
        self.checkin_due = None  # ticks_ms of the next CHECK_IN (alarm.sleep wakes for it)
        if gnss is not None:
            gnss.on_fix = self._on_fix

    def start(self, transport):
        self.transport = transport
        asyncio.create_task(self._send_loop(transport))
        asyncio.create_task(self._track_loop())
        asyncio.create_task(self._cell_loop(transport))
        self._start_modem_gnss(transport)
        asyncio.create_task(self._health_loop())
        if len(self.outbox):
            self.log(event("outbox_resumed", "packets=%d" % len(self.outbox)))
            self.kick.set()
            self._resume()

    def _resume(self):
        """An SOS still in the outbox after a reset is an alert the police do not have yet: it is
        live again, so its ACK is felt and tracking goes on."""
        sos = [e.counter for e in self.outbox.entries if e.sos]
        if sos:
            now = time.ticks_ms()
            for c in sos:  # the first raises the alert, the others are its repeats
                self.alarm.raise_(c, now, self.drill)
            self._raised.set()
            self._counting(self._cancellable())
            self.log(event("alert_resumed", "sos=%d" % sos[0]))

    # -------------------------------------------------------------- events -> packets

    def gesture(self, kind, n, t_ms):
        if kind == "hold":
            return self.sos(TRIGGER_HOLD)
        if self.ask.open:
            # Presses answer the open question (a "press 3" answer is no SOS gesture).
            return self.reply(self.ask.answer(n)) if kind == "count" else None
        if kind == "count" and self.alarm.active and not self.alarm.cancelled:
            if n == self.cancel_cfg.get("presses"):
                return self.cancel(False)
            if n == self.cancel_cfg.get("duress_presses"):
                return self.cancel(True)
            return None
        if kind == "presses":
            return self.sos(TRIGGER_PRESSES)
        return None

    def _report(self, at):
        pct = charging = None
        b = self.battery
        if b is not None:
            try:
                b.sample()
                pct, charging = b.percent, b.charging
            except Exception as e:  # a bad gauge must never hold an alert back
                self.log(event("fault", "what=battery_read", repr(e)))
        self._battery_pct = pct
        fix = self.gnss.fix if self.gnss is not None else None
        return report.fill(at, fix, self.clock, pct, charging, self.cell, self.drill)

    def sos(self, trigger):
        """Seal and store an SOS at once, whatever is known. -> its counter, or None."""
        t0 = time.ticks_ms()
        r = self._report(t0)
        c = self._store(lambda c: self.codec.sos(c, r, trigger))
        if c is None:
            return None
        new = self.alarm.raise_(c, t0, self.drill)
        self._fresh = not r.trusted
        self.log(event("stored", "kind=sos counter=%d after_ms=%d repeat=%d fix=%d fix_age_s=%s "
                       "trusted=%d battery_pct=%s time_source=%d" % (
                           c, time.ticks_diff(time.ticks_ms(), t0), flag(not new), flag(r.fix),
                           opt(r.fix_age_s), flag(r.trusted), opt(r.battery_pct),
                           r.time_source)))
        if new:
            self._raised.set()
            self._counting(self._cancellable())
        return c

    def _cancellable(self):
        return bool(self.cancel_cfg) and self.alarm.active and not self.alarm.cancelled

    def cancel(self, duress):
        """The child's cancel pattern (or the duress one, identical on the device). -> counter."""
        a = self.alarm
        sos = a.first
        felt = a.cancel(duress)
        if felt is None:
            return None
        self._counting(False)
        self._hang_up()  # both kinds alike: a duress cancel looks like a true one
        r = self._report(time.ticks_ms())
        c = self._store(lambda c: self.codec.cancel(c, r, duress, sos))
        self.haptics.play(felt)
        if not duress:
            self.policy.stand_down()
        self.log(event("stored", "kind=cancel counter=%s sos=%s" % (opt(c), opt(sos))))  # same under duress
        return c

    def _feel(self, pattern):
        """Play a pattern for the child, unless a duress cancel made the alert covert: then
        nothing is felt or lit (the one who forced the cancel may be watching)."""
        if self.alarm.covert:
            self.log(event("withheld", "pattern=" + pattern))
            return
        self.haptics.play(pattern)
        self.log(event("felt", "pattern=" + pattern))

    def _counting(self, on):
        """COUNT gestures: on while a question is open or an alert can be cancelled."""
        if self.counting:
            self.counting(on)

    def reply(self, answer):
        """Store a TAP_REPLY for answer = (question id, presses; 0 = no answer). -> its counter."""
        if answer is None:
            return None
        self._counting(self._cancellable())
        qid, presses = answer
        r = self._report(time.ticks_ms())
        c = self._store(lambda c: self.codec.tap_reply(c, r, qid, presses))
        if c is not None:
            self._answer = c
            self.log(event("stored", "kind=answer counter=%d question=%d presses=%d" % (
                c, qid, presses)))
        return c

    def question(self, d):
        """A verified QUESTION: feel it, count the presses that answer it, time it out."""
        if self.alarm.covert:  # after a duress cancel: never felt, never answered
            self.log(event("question_withheld", "id=%d" % d.question_id))
            return
        if not self.ask.start(d.question_id, d.kind, d.choices, d.timeout_s, time.ticks_ms()):
            return
        self._counting(True)
        self._feel(QUESTION)
        self.log(event("question", "id=%d kind=%d choices=%d timeout_s=%d" % (
            d.question_id, d.kind, d.choices, d.timeout_s)))
        asyncio.create_task(self._question_timeout(d.question_id))

    async def _question_timeout(self, qid):
        while True:
            left = self.ask.remaining_ms(time.ticks_ms())
            if left is None or self.ask.qid != qid:
                return  # answered or replaced
            if left == 0:
                self.reply(self.ask.expire(qid, time.ticks_ms()))
                return
            await asyncio.sleep_ms(left)

    def call_state(self, state, reason):
        """A CALL_STATE uplink (alarm/listen.py): stored and sent like any report."""
        r = self._report(time.ticks_ms())
        c = self._store(lambda c: self.codec.call_state(c, r, state, reason))
        if c is not None:
            self.log(event("stored", "kind=call_state counter=%d state=%d reason=%d" % (
                c, state, reason)))
        return c

    def listen_in(self, d):
        """A verified LISTEN_IN: the silent call, never felt."""
        if self.listen is None:
            from alarm.listen import Listen
            m = self.transport.m if self.transport is not None else None
            self.listen = Listen(self, m, self.centre, self.log)
        self.listen.request(d)

    def _hang_up(self):
        if self.listen is not None:
            self.listen.stop()

    def position(self, reason):
        r = self._report(time.ticks_ms())
        c = self._store(lambda c: self.codec.position(c, r, reason))
        if c is not None:
            self.log(event("stored", "kind=position counter=%d reason=%d fix=%d fix_age_s=%s" % (
                c, reason, flag(r.fix), opt(r.fix_age_s))))
        return c

    def _store(self, seal):
        try:
            c = self.counter.next()
            e, dropped = self.outbox.add(bytes(seal(c)))
        except (ProtoError, OSError) as e:
            self.log(event("fault", "what=store", repr(e)))
            return None
        if dropped is not None:
            self.log(event("outbox_dropped", "counter=%d" % dropped.counter))
        self.kick.set()
        return c

    def _on_fix(self, f):
        if not f.has_position or f.t_ms is None:
            return
        if f.date and f.time_ms is not None and self.clock.source <= TIME_GNSS:
            self.clock.set(report.unix_s(f.date, f.time_ms), f.time_ms % 1000, TIME_GNSS, f.t_ms)
        if self._fresh and self.alarm.active:
            r = report.fill(f.t_ms, f)
            if r.trusted:
                self._fresh = False
                self.position(_POS_FRESH)

    # -------------------------------------------------------------- delivery

    async def _send_loop(self, tr):
        pol = self.policy
        box = self.outbox
        while True:
            await tr.free()  # uplinks wait while a GNSS window holds the RF
            now = time.ticks_ms()
            for e in list(box.entries):
                if box.get(e.counter) is not e:
                    continue  # acked meanwhile
                ch = pol.decide(e, now, tr.link, tr.sms_ok())
                if ch is None:
                    if e.due is None or time.ticks_diff(e.due, now) <= 0:
                        pol.waiting(e, now)
                    continue
                ok = True
                try:
                    await tr.send(ch, e.packet)
                except Exception as ex:  # the outbox keeps it; the policy says when again
                    ok = False
                    self.log(event("send_failed", "counter=%d channel=%s" % (e.counter, ch),
                                   repr(ex)))
                pol.sent(e, ch, now, ok)
                if ok:
                    self.log(event("sent", "counter=%d channel=%s try=%d" % (
                        e.counter, ch, e.tries if ch == "udp" else e.sms)))
                now = time.ticks_ms()
            self.kick.clear()
            wait = pol.next_due(box.entries, time.ticks_ms())
            if wait > 0:
                try:
                    await asyncio.wait_for_ms(self.kick.wait(), wait)
                except asyncio.TimeoutError:
                    pass

    # -------------------------------------------------------------- the modem's own GNSS

    def _start_modem_gnss(self, tr):
        """A board whose GNSS is the modem's (a plan given): windows around the uplinks, as
        gnss/plan.py times them."""
        if self.plan is not None:
            from alarm.radio import ModemGnss
            self.radio = ModemGnss(self, tr, self.plan, self.log)
            asyncio.create_task(self.radio.run())

    def downlink(self, data):
        """A datagram or SMS body from the police side: verify, open, act."""
        try:
            if isinstance(data, str):
                data = from_text(data)
            d = self.codec.open(data, self.guard)
        except ProtoError as e:
            if e.reason != "duplicate":  # the second copy (UDP and SMS) is expected
                self.log(event("fault", "what=downlink reason=" + e.reason.replace(" ", "_")))
            return
        receipt = d.type != ACK  # every downlink but a plain ACK is confirmed (protocol.md 4)
        if d.type == ACK:
            self.outbox.ack(d.acked_counter)
            level = self.alarm.level
            felt = self.alarm.on_ack(d.acked_counter, d.level)
            receipt = self.alarm.level > (level or 1)  # seen, dispatched: an operator's
            self.log(event("ack", "counter=%d level=%d alarm=%s" % (
                d.acked_counter, d.level, self.alarm.name)))
            if felt is None and d.acked_counter == self._answer:
                felt = SENT  # the answer reached the police
                self._answer = None
            if felt:
                self._feel(felt)
        elif d.type == STAND_DOWN:
            if self.alarm.stand_down(d.reason, d.sos_counter):
                self.policy.stand_down()
                self._hang_up()
                self._counting(self.ask.open)
                self.log(event("stood_down", "reason=%d" % d.reason))
        elif d.type == TRACKING:
            self.policy.tracking(d.fast_interval_s, d.fast_for_s, d.slow_interval_s,
                                 d.low_battery_pct)
        elif d.type == CONFIG:
            self.policy.configure(d.items)
        elif d.type == QUESTION_MSG:
            self.question(d)
        elif d.type == LISTEN_IN:
            self.listen_in(d)
        if receipt:
            self._receipt()

    def _receipt(self):
        """RECEIPT: the downlinks accepted so far (the replay guard), so the server stops
        repeating them."""
        g = self.guard
        r = self._report(time.ticks_ms())
        c = self._store(lambda c: self.codec.receipt(c, r, g.highest, g.bitmap))
        self.log(event("stored", "kind=receipt counter=%s highest=%d" % (opt(c), g.highest)))

    async def _health_loop(self):
        """The heartbeat the police see a terminal alive by: a CHECK_IN (battery, firmware,
        packets waiting) a minute after boot and every checkin_s; a LOW_BATTERY, felt as its
        pattern, once each time the cell falls to the gauge's low mark."""
        wait_ms = self.first_checkin_ms
        low = False
        while True:
            supervise.alive("health", 2 * _BATTERY_CHECK_MS)
            self.checkin_due = time.ticks_add(time.ticks_ms(), wait_ms) if self.checkin_s else None
            step = wait_ms if wait_ms < _BATTERY_CHECK_MS else _BATTERY_CHECK_MS
            await asyncio.sleep_ms(step)
            wait_ms -= step
            r = self._report(time.ticks_ms())  # reads the gauge (a failing one: no battery)
            b = self.battery
            mv = (b.cell_mv if b is not None else None) or 0
            if b is not None and b.low and not low:
                c = self._store(lambda c: self.codec.low_battery(c, r, mv))
                self._feel(LOW_BATTERY)
                self.log(event("stored", "kind=low_battery counter=%s battery_mv=%d" % (opt(c), mv)))
            low = b is not None and b.low
            if wait_ms <= 0 and self.checkin_s:
                wait_ms = self.checkin_s * 1000
                pending = len(self.outbox)
                c = self._store(lambda c: self.codec.check_in(
                    c, r, self.fw, mv, pending if pending < 255 else 255))
                self.log(event("stored", "kind=check_in counter=%s battery_mv=%d waiting=%d" % (
                    opt(c), mv, pending)))

    async def _track_loop(self):
        """Follow-up POSITION packets while the alert is live (policy.track_interval_s)."""
        while True:
            a = self.alarm
            if not a.active:
                self._raised.clear()
                await self._raised.wait()
                continue
            since = time.ticks_diff(time.ticks_ms(), a.raised_at) // 1000
            await asyncio.sleep_ms(self.policy.track_interval_s(since, self._battery_pct) * 1000)
            if self.alarm.active:
                self.position(_POS_SCHEDULED)

    async def _cell_loop(self, tr):
        """The serving cell (and network time, without GNSS time) after each registration change."""
        from modem import extra
        m = tr.m
        lte_m = m.name in _LTE_M_MODEMS
        while True:
            await tr.cell_changed.wait()
            tr.cell_changed.clear()
            if not (m.ready and m.registered()):
                continue  # keep the last known cell
            try:
                reg = m.reg
                plmn = await extra.operator(m)
                sig = await m.signal()
                c = self.cell
                c.plmn, c.tac, c.ci, c.rat = plmn, reg[1], reg[2], report.rat_of(reg[3], lte_m)
                dbm = sig.get("rsrp", sig.get("rssi"))
                c.signal_dbm = None if dbm is None else int(dbm)
                if self.clock.source < TIME_NETWORK:
                    t = await extra.network_time(m)
                    if t is not None:
                        y, mo, d, hh, mi, ss, tz = t
                        s = report.days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss
                        self.clock.set(s - tz * 60, 0, TIME_NETWORK, time.ticks_ms())
            except Exception as e:
                self.log(event("fault", "what=cell_read", repr(e)))
