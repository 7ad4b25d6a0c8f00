"""The silent call (protocol 1.1, LISTEN_IN): for an acknowledged alert, on a modem with voice,
the terminal calls the centre's number from /device.json (or answers the centre's call, and only
its call) with the microphone on and nothing audible, and reports each step as a CALL_STATE.
Nothing is felt either: no haptic pattern is played for any of it. A stand-down or a cancel of
the alert hangs up. Imported only when the first LISTEN_IN arrives."""
import asyncio
import time

from console import event
from micropython import const
from modem.at import AtError

DIALLING = const(1)
CONNECTED = const(2)
ENDED = const(3)
FAILED = const(4)
# reasons (docs/protocol.md section 3)
CENTRE_HUNG_UP = const(1)
BUSY = const(2)
NO_ANSWER = const(3)
TIME_LIMIT = const(4)
STOOD_DOWN = const(5)
NO_VOICE = const(6)
NO_CENTRE = const(7)
NOT_ACKNOWLEDGED = const(8)
MODEM_ERROR = const(9)
IN_CALL = const(10)
_DIAL = const(1)
_ANSWER = const(2)
_SEEN = const(2)  # ACK level: a dispatcher has the alert
_SETUP_MS = const(90000)  # dialled / waiting for the centre's call: give up after this
_END_MS = const(5000)  # hung up: the module's end-of-call line comes within this
_STATES = ("", "dialling", "connected", "ended", "failed")


def _digits(n):
    return "".join(c for c in n if "0" <= c <= "9")


def same_number(caller, centre):
    """The caller id is the centre's: the same E.164 digits, or its national form (a leading
    0 for the country code: 02 3150 2112 for +82 2 3150 2112)."""
    a, b = _digits(caller), _digits(centre)
    if not a or not b:
        return False
    if a == b:
        return True
    return caller[:1] == "0" and len(a) >= 7 and b.endswith(a[1:]) and len(b) - len(a) <= 3


class Listen:
    def __init__(self, runner, modem, centre, log=print):
        self.runner = runner
        self.m = modem
        self.centre = centre
        self.log = log
        self.sos = None  # SOS counter of the alert the call belongs to, while one runs
        self.state = 0
        self._mode = 0
        self._max_s = 0
        self._hung_up = 0  # our own reason, once we hung up
        self._evt = asyncio.Event()
        self._events = []

    @property
    def busy(self):
        return self.sos is not None

    def request(self, d):
        """A verified LISTEN_IN: refuse (a failed CALL_STATE, nothing dialled) or start."""
        if self.busy and d.sos_counter == self.sos and d.mode == self._mode:
            return  # the server repeating the request this call answers, until our RECEIPT
        why = self._refusal(d)
        if why:
            self.log(event("call", "state=failed reason=%d sos=%d" % (why, d.sos_counter)))
            self.runner.call_state(FAILED, why)
            return
        self.sos, self._mode, self._max_s = d.sos_counter, d.mode, d.max_s
        self._hung_up = 0
        self._events = []
        self.m.on_call = self._on_call
        asyncio.create_task(self._run())

    def _refusal(self, d):
        m = self.m
        if m is None or not m.has("voice"):
            return NO_VOICE
        if not self.centre:
            return NO_CENTRE
        a = self.runner.alarm
        if not (a.active and not a.cancelled and a.confirmed and a.level >= _SEEN
                and d.sos_counter in a.sos_counters):
            return NOT_ACKNOWLEDGED
        if self.busy:
            return IN_CALL
        if d.mode not in (_DIAL, _ANSWER):
            return MODEM_ERROR
        return 0

    def stop(self, reason=STOOD_DOWN):
        """The alert ended: hang up whatever runs."""
        if self.busy and not self._hung_up:
            self._hung_up = reason
            asyncio.create_task(self._hang_up())

    # ------------------------------------------------------------------ the call

    def _on_call(self, kind, arg):
        if kind == "ring":
            # Only the centre's call, only while we wait for it; others are hung up unanswered.
            take = (self.busy and self._mode == _ANSWER and self.state == DIALLING
                    and same_number(arg, self.centre))
            if take and not self._events:
                self._push("ring", arg)
            return take
        self._push(kind, arg)
        return True

    def _push(self, kind, arg):
        self._events.append((kind, arg))
        self._evt.set()

    async def _next(self, ms):
        """The next call event, or None after ms."""
        if not self._events:
            self._evt.clear()
            try:
                await asyncio.wait_for_ms(self._evt.wait(), ms)
            except asyncio.TimeoutError:
                return None
        return self._events.pop(0)

    def _report(self, state, reason=0):
        self.state = state
        self.log(event("call", "state=%s reason=%d sos=%d" % (_STATES[state], reason,
                                                               self.sos or 0)))
        self.runner.call_state(state, reason)

    async def _run(self):
        m = self.m
        try:
            await m.silence()  # again: a module reset since boot has its defaults back
            self._report(DIALLING)
            if self._mode == _DIAL:
                await m.dial(self.centre)
            ev = await self._next(_SETUP_MS)
            if ev is not None and ev[0] == "ring":
                await m.answer()
                ev = await self._next(_SETUP_MS)
        except AtError as e:
            self._end(self._setup_reason(e.kind))
            return
        except Exception as e:  # timeout, modem reset: the call did not happen
            self.log(event("fault", "what=call", repr(e)))
            self._end(MODEM_ERROR)
            return
        if ev is None or ev[0] != "connected":
            if ev is None:
                await self._hang_up()
            self._end(self._hung_up or (NO_ANSWER if ev is None else self._setup_reason(ev[1])))
            return
        self._report(CONNECTED)
        t0 = time.ticks_ms()
        while True:
            left = self._max_s * 1000 - time.ticks_diff(time.ticks_ms(), t0)
            ev = await self._next(left if left > 0 else 0)
            if ev is None:  # the LISTEN_IN's time is up
                self._hung_up = self._hung_up or TIME_LIMIT
                await self._hang_up()
                await self._next(_END_MS)  # its VOICE CALL: END
                break
            if ev[0] == "ended":
                break
        self._end(self._hung_up or CENTRE_HUNG_UP)

    def _setup_reason(self, line):
        if line == "BUSY":
            return BUSY
        if line in ("NO CARRIER", "NO ANSWER", "NO DIALTONE") or (line or "").startswith("VOICE"):
            return NO_ANSWER
        return MODEM_ERROR

    def _end(self, reason):
        self._report(ENDED if self.state == CONNECTED else FAILED, reason)
        self.sos = None
        self.state = 0
        self.m.on_call = None

    async def _hang_up(self):
        try:
            await self.m.hang_up()
        except Exception as e:
            self.log(event("fault", "what=hang_up", repr(e)))
        if self.state != CONNECTED:
            self._push("ended", "hung up")
