"""Deep sleep between uses: when nothing needs the terminal awake, the ESP32 goes into deep sleep
with the button as its ext0 wake (an RTC GPIO, periph.button.Button.arm_wake) and a timer for the
next check-in; the modem stays registered in its own PSM; the UART receiver goes to backup
(V_BCKP kept: ephemeris for a hot start). Every wake is a boot: the button credits the wake
press (a 3 s hold that started the wake is a 3 s hold), alarm.memory gives back the last-known
fix, cell, UTC and check-in schedule.

Awake while (Sleeper.busy says why): the modem is not up yet; an outbox entry is unsent (an
SOS, cancel or receipt always; a check-in or position for at most patience_ms of one wake, so a
terminal without coverage does not drain itself trying); an alert is live (tracking); a question
is open; the button is pressed or a gesture is being recognised; or less than listen_ms has
passed since the modem last spoke — what the police have pending comes right after an uplink's
ACK (docs/protocol.md section 4, delivery), and its RECEIPT is an uplink that keeps us awake
again."""
import asyncio
import time

from console import event
from micropython import const

_LOOK_MS = const(500)  # how often the conditions are looked at
_SETTLE_MS = const(1000)  # idle this long in a row before sleeping
_MAX_SLEEP_MS = const(86400000)  # a timer wake at least daily (battery, schedule)
_STUCK_SLEEP_MS = const(60000)  # button down (stuck) at sleep time: no ext0, a timer only
_SAVE_S = const(60)  # the RTC/flash copies follow the cell and schedule this often, s
_ALWAYS = (0x01, 0x03, 0x04, 0x09)  # SOS, CANCEL, TAP_REPLY, RECEIPT: awake until acked


class Sleeper:
    listen_ms = 6000  # after the modem's last byte: pending downlinks follow the uplink's ACK
    patience_ms = 300000  # a routine packet keeps one wake awake this long at most

    def __init__(self, runner, transport, button, memory, gnss=None, log=print):
        self.r = runner
        self.tr = transport
        self.button = button
        self.memory = memory
        self.gnss = gnss
        self.log = log
        self.t0 = time.ticks_ms()

    def busy(self, now):
        """-> why the terminal must stay awake now, or None."""
        r, tr, b = self.r, self.tr, self.button
        rec = b.rec
        if rec.pressed or rec.deadline() is not None or b.pin.value() == b.active:
            return "button"
        if r.alarm.active:
            return "alert"
        if r.ask.open:
            return "question"
        patient = time.ticks_diff(now, self.t0) < self.patience_ms
        for e in r.outbox.entries:
            if e.type in _ALWAYS or patient:
                return "outbox"
        if not tr.ready:
            return "modem" if patient else None
        if time.ticks_diff(now, tr.m.at.traffic_ms) < self.listen_ms:
            return "listening"
        return None

    def sleep_ms(self, now):
        """Until the next check-in (the runner's schedule), at most a day."""
        due = self.r.checkin_due
        ms = _MAX_SLEEP_MS if due is None else time.ticks_diff(due, now)
        return ms if 0 < ms < _MAX_SLEEP_MS else (1 if ms <= 0 else _MAX_SLEEP_MS)

    async def run(self):
        idle_since = None
        while True:
            await asyncio.sleep_ms(_LOOK_MS)
            now = time.ticks_ms()
            if self.busy(now) is not None:
                idle_since = None
            elif idle_since is None:
                idle_since = now
            elif time.ticks_diff(now, idle_since) >= _SETTLE_MS:
                self.sleep(now)

    def sleep(self, now):
        import machine
        ms = self.sleep_ms(now)
        self.memory.save(self.r, flash=True)
        if self.gnss is not None:
            self.gnss.power(False)  # backup: the receiver's V_BCKP stays fed
        wake = "button"
        if not self.button.arm_wake():
            wake = "timer"  # held or stuck: ext0 would wake it at once, over and over
            ms = min(ms, _STUCK_SLEEP_MS)
        self.log(event("deep_sleep", "ms=%d wake=%s awake_ms=%d" % (
            ms, wake, time.ticks_diff(now, self.t0))))
        machine.deepsleep(ms)


def keep(runner, log=print):
    """Before the runner starts: what the last life left (alarm.memory) goes back in, and after a
    deep sleep the check-in schedule too. -> the Memory."""
    import machine

    from alarm.memory import Memory
    cause = machine.reset_cause()
    mem = Memory(machine.RTC(), log=log)
    mem.restore(runner, cause == machine.PWRON_RESET)
    if cause == machine.DEEPSLEEP_RESET and mem.checkin_at is not None:
        left = mem.checkin_at - time.time()
        runner.first_checkin_ms = left * 1000 if left > 0 else 0
    g = runner.gnss
    if g is not None:
        prev = g.on_fix

        def on_fix(f):
            if prev is not None:
                prev(f)
            if f.has_position:
                mem.on_fix(runner)
        g.on_fix = on_fix
    return mem


async def _keeping(runner, mem):
    """Task: the copies follow the cell and schedule too; a fix restored after a power cut learns
    its age from the first UTC."""
    n = 0
    while True:
        await asyncio.sleep_ms(1000)
        mem.age_by_utc(runner)
        n += 1
        if n >= _SAVE_S:
            n = 0
            mem.save(runner)



def start(runner, transport, button, mem, gnss=None, deep=False, log=print):
    """After the runner started: keep the copies current; with deep (device.json "sleep": true)
    sleep between uses. -> the Sleeper or None."""
    asyncio.create_task(_keeping(runner, mem))
    if not deep:
        return None
    s = Sleeper(runner, transport, button, mem, gnss, log)
    asyncio.create_task(s.run())
    return s
