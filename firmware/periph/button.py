"""The panic button: a pure gesture recogniser fed with (level, t_ms), and a thin asyncio driver.

Recogniser (no `machine`): a level counts once it has been stable for `debounce_ms` (contact
bounce); a settled press shorter than `min_press_ms` is a bump and is ignored. Edges carry
their own time, so the result does not depend on how often the recogniser is ticked.
Gestures, emitted as emit(kind, n, t_ms):
  HOLD     held without a break for hold_ms (fires while still held), n = 1
  PRESSES  the Nth short press with the last N inside window_ms, n = N
  COUNT    a run of short presses closed by a quiet gap of count_gap_ms, n = presses in the
           run (answers to a dispatcher's "press N" question; cancel patterns). Only while
           `counting` is on (config "count": true, or set by the app while it asks): stray
           taps must not reach an app that does not expect them."""
from micropython import const

HOLD = "hold"
PRESSES = "presses"
COUNT = "count"

_NEVER = const(-(1 << 29))  # "long ago", ms; fits a small int on a 32-bit port


class Recogniser:
    """Tunables, ms (class attributes: a board or a test may override them)"""
    debounce_ms = 25  # tactile switches bounce < 5-10 ms; a level stable this long has settled
    min_press_ms = 80  # a settled press shorter than this is a bump (pocket knock), not a press
    max_press_ms = 1000  # a short press is released before this; a longer one breaks a run
    holdoff_ms = 1000  # after power-on/reset, time counts for a press only from here on
    wake_credit_ms = 250  # ROM + bootloader before our code runs, after a wake by the button
    count_gap_ms = 1500  # quiet time after a release that closes a run of presses

    def __init__(self, hold_ms=3000, presses=0, window_ms=2000, active=0, emit=None,
                 counting=False):
        if hold_ms <= 0 and presses <= 0:
            raise ValueError("button: no gesture (hold_ms and presses both 0)")
        if presses == 1 or 0 < hold_ms < 500:
            raise ValueError("button: one press or a hold < 500 ms is no deliberate gesture")
        self.hold_ms = hold_ms  # 0: no HOLD gesture
        self.presses = presses  # 0: no PRESSES gesture
        self.window_ms = window_ms
        self.counting = counting  # emit COUNT gestures
        self.active = active  # pin level while pressed
        self.gestures = []  # (kind, n, t_ms) when no emit callback is given
        self.emit = emit if emit is not None else self._keep
        self._downs = [0] * max(presses, 1)  # press times of the current run, a ring
        self.bumps = 0  # statistics: settled presses too short to count
        self.begin(1 - active, 0)

    @classmethod
    def from_config(cls, cfg, active=0, emit=None):
        """cfg: {"hold_ms": 3000, "presses": 3, "window_ms": 2000, "count": false}"""
        return cls(cfg.get("hold_ms", 3000), cfg.get("presses", 0),
                   cfg.get("window_ms", 2000), active, emit, cfg.get("count", False))

    def _keep(self, kind, n, t):
        self.gestures.append((kind, n, t))

    def begin(self, level, t, woke=False, warm=False):
        """Start at boot with the `level` read at boot. woke: this button woke the chip from deep
        sleep. warm: out of deep sleep for another reason (timer, modem RI): pins were held
        by the RTC domain, so no hold-off, and a press already down at boot counts from now."""
        down = level == self.active
        self._raw = self._down = down
        self._raw_t = t
        self._down_t = t
        self._held = False  # HOLD already emitted for the current press
        self._ignore = False  # current press does not count
        self._run = 0  # short presses in the current run
        self._up_t = _NEVER  # last release of a counted press
        self._holdoff_until = _NEVER
        if woke:
            # The wake press started before our code ran: credit it and keep it counting.
            if down:
                self._down_t = t - self.wake_credit_ms
            else:
                self._short_press(t - self.wake_credit_ms, t)
        elif not warm:
            # A press already down when power returns (a cut, a crash reset mid-hold) counts as
            # a hold that began now: the child is still asking. A stuck button raises one SOS
            # per boot, never more (the hold fires once per press).
            self._holdoff_until = t + self.holdoff_ms

    def update(self, level, t):
        """Feed one sample or edge: the pin's level at time t (ms, non-decreasing)."""
        self._settle(t)
        down = level == self.active
        if down != self._raw:
            self._raw = down
            self._raw_t = t

    def tick(self, t):
        """Time passes with no new edge (call at deadline())."""
        self._settle(t)

    def deadline(self):
        """Earliest time a tick can change something, or None: the driver sleeps until then."""
        d = None
        if self._raw != self._down:
            d = self._raw_t + self.debounce_ms
        if self._hold_pending():
            d = _earliest(d, self._down_t + self.hold_ms)
        if self._count_pending():
            d = _earliest(d, self._up_t + self.count_gap_ms)
        return d

    @property
    def pressed(self):
        return self._down

    def _hold_pending(self):
        return self.hold_ms > 0 and self._down and self._raw and not self._held \
            and not self._ignore

    def _count_pending(self):
        return self._run > 0 and not self._down and not self._raw

    def _settle(self, t):
        """Deadlines are compared as deadline() computes them (no float drift between the two)."""
        if self._raw != self._down and t >= self._raw_t + self.debounce_ms:
            self._down = self._raw
            if self._down:
                self._on_press(self._raw_t)
            else:
                self._on_release(self._raw_t)
        if self._hold_pending() and t >= self._down_t + self.hold_ms:
            self._fire_hold()
        if self._count_pending() and t >= self._up_t + self.count_gap_ms:
            n = self._run
            self._run = 0
            if self.counting:
                self.emit(COUNT, n, self._up_t + self.count_gap_ms)

    def _on_press(self, t):
        """A press starting in the boot hold-off (pins settling) counts from its end."""
        self._down_t = t if t >= self._holdoff_until else self._holdoff_until
        self._held = False
        self._ignore = False

    def _on_release(self, t):
        if self._ignore or self._held:
            self._ignore = False
            return
        dur = t - self._down_t
        if self.hold_ms > 0 and dur >= self.hold_ms:
            self._fire_hold()  # held long enough, released before anyone ticked at the deadline
        elif dur < self.min_press_ms:
            self.bumps += 1
        elif dur < self.max_press_ms:
            self._short_press(self._down_t, t)
        else:
            self._run = 0  # a long press that is no hold breaks a run

    def _fire_hold(self):
        self._held = True
        self._run = 0
        self.emit(HOLD, 1, self._down_t + self.hold_ms)

    def _short_press(self, down_t, up_t):
        if self._run and down_t - self._up_t >= self.count_gap_ms:
            self._run = 0  # the previous run ended while nobody ticked: it is not counted
        n = len(self._downs)
        self._downs[self._run % n] = down_t
        self._run += 1
        self._up_t = up_t
        if self.presses > 0 and self._run >= self.presses:
            first = self._downs[self._run % n]  # the press N-1 before this one
            if down_t - first <= self.window_ms:
                self._run = 0
                self.emit(PRESSES, self.presses, up_t)


def _earliest(a, b):
    return b if a is None or b < a else a


def woke_by_button(machine):
    """True when the chip came out of deep sleep through a pin wake (ext0/ext1)."""
    if machine.reset_cause() != getattr(machine, "DEEPSLEEP_RESET", -1):
        return False
    wake = getattr(machine, "wake_reason", None)
    if wake is None:
        return True
    return wake() in (getattr(machine, "EXT0_WAKE", -1), getattr(machine, "EXT1_WAKE", -1))


_RING = const(16)  # edges buffered between two runs of the button task


class Button:
    """Thin driver: pin edges (IRQ) -> Recogniser; gestures as asyncio Events and an iterator.
      btn = Button(board['pins']['button'], {'hold_ms': 3000, 'presses': 3})
      asyncio.create_task(btn.run()); await btn.hold.wait()   or   async for g in btn: ..."""
    poll_ms = 10  # re-check period while a press is being recognised

    def __init__(self, pin_cfg, gestures, woke=None, warm=None):
        import asyncio
        import time

        import machine
        self._ticks_ms, self._ticks_diff = time.ticks_ms, time.ticks_diff
        self.active = 0 if pin_cfg.get("active", "low") == "low" else 1
        pull = {"up": machine.Pin.PULL_UP, "down": machine.Pin.PULL_DOWN}.get(pin_cfg.get("pull"))
        self.gpio = pin_cfg["gpio"]
        self.pin = machine.Pin(self.gpio, machine.Pin.IN, pull)  # type: ignore[arg-type]  # None: no pull
        self.rec = Recogniser.from_config(gestures, self.active, self._on_gesture)
        self.hold = asyncio.Event()
        self.presses = asyncio.Event()
        self.count = asyncio.Event()
        self.last = None  # the last gesture (kind, n, t_ms)
        self._queue = []  # gestures not yet taken by the async iterator (max 8)
        self._ready = asyncio.Event()
        self._flag = asyncio.ThreadSafeFlag()
        self._lv = bytearray(_RING)
        self._tk: list = [0] * _RING
        self._head = 0  # written by the IRQ
        self._tail = 0  # read by the task
        self.dropped = 0  # edges lost to a full ring (statistics)
        # Monotonic ms since this driver started (ticks_ms wraps after ~12 days; this count
        # does not, and does not depend on where ticks_ms starts).
        self._t0 = self._ticks_ms()
        self._t = 0
        if woke is None:
            woke = pin_cfg.get("wake", False) and woke_by_button(machine)
        if warm is None:
            warm = machine.reset_cause() == getattr(machine, "DEEPSLEEP_RESET", -1)
        if woke:  # the press began at the wake edge
            # ticks_ms counts from the chip's start: the boot and our code so far
            self.rec.wake_credit_ms = Recogniser.wake_credit_ms + self._t0  # type: ignore[operator]  # ticks since boot, < 12 days
        self.rec.begin(self.pin.value(), 0, woke, warm)
        self.pin.irq(self._irq, machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING)

    def _irq(self, pin):
        """Only record the edge and wake the task; no allocation."""
        nxt = (self._head + 1) % _RING
        if nxt == self._tail:
            self.dropped += 1
        else:
            self._lv[self._head] = pin.value()
            self._tk[self._head] = self._ticks_ms()
            self._head = nxt
        self._flag.set()

    def _ms(self, ticks):
        """ticks_ms value -> monotonic ms since boot (valid for edges up to ~12 days apart)"""
        return self._t + self._ticks_diff(ticks, self._t0)

    def _drain(self):
        while self._tail != self._head:
            i = self._tail
            self.rec.update(self._lv[i], max(self._ms(self._tk[i]), self._t))
            self._tail = (i + 1) % _RING
        now = self._ticks_ms()
        self._t = self._ms(now)
        self._t0 = now
        # The pin's level now: right even if a long chatter overflowed the ring.
        self.rec.update(self.pin.value(), self._t)

    def _on_gesture(self, kind, n, t):
        g = (kind, n, t)
        self.last = g
        getattr(self, kind).set()
        if len(self._queue) < 8:
            self._queue.append(g)
        self._ready.set()

    async def run(self):
        import asyncio
        while True:
            self._drain()
            d = self.rec.deadline()
            if d is None:
                await self._flag.wait()  # idle: sleep until an edge
            else:
                await asyncio.sleep_ms(max(1, min(self.poll_ms, d - self._t)))

    def __aiter__(self):
        return self

    async def __anext__(self):
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        return self._queue.pop(0)

    def counting(self, on=True):
        """While the app waits for an answer ("press N"), COUNT gestures come out; else never."""
        self.rec.counting = on

    def arm_wake(self):
        """Before deep sleep: let a press (the active level) wake the chip (RTC GPIO: ext0).
        Refused (False) while the button is down: ext0 is level-triggered, a stuck or held
        button would wake the chip at once, over and over; sleep on a timer instead."""
        import esp32
        if self.pin.value() == self.active:
            return False
        esp32.wake_on_ext0(self.pin, esp32.WAKEUP_ANY_HIGH if self.active else
                           esp32.WAKEUP_ALL_LOW)
        return True
