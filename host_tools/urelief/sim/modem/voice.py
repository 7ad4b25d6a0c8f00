"""Voice calls on the emulated A7670 (VoLTE): the AT commands and URCs of the A76XX AT manual —
ATD<n>; (OK once dialled, "VOICE CALL: BEGIN" when answered), ATA, AT+CHUP / ATH, AT+CLCC,
RING with +CLIP (AT+CLIP=1), "VOICE CALL: END: <duration>" then NO CARRIER when the far end
hangs up, BUSY, NO ANSWER — and the audio settings that decide whether anyone near the terminal
hears anything: loudspeaker volume (AT+CLVL, 0..5), ringer level (AT+CRSL, 0..5), microphone
mute (AT+CMUT, 27.007 §8.24: it mutes the uplink, what the far end hears).

The far end is a `Centre` on the emulated network. Every call is kept as a `Call` record with
the audio settings it ran with, and anything that would have been audible at the terminal (a
ring with the ringer up, a connected call with the loudspeaker up) is logged in `audible`.

Timings are modelled, not measured: SIMCom gives no call set-up figure for the A76xx; VoLTE
set-up to alerting is a couple of seconds on live networks (2.5 s here), RING repeats every
4 s (a ring cycle), a network's no-reply timer ends an unanswered call after 60 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CLVL_MAX = CRSL_MAX = 5
DEFAULT_CLVL = DEFAULT_CRSL = 4  # the module's defaults after boot: audible


@dataclass
class VoiceTiming:
    setup_ms: float = 2500  # ATD -> the far end alerting
    answer_ms: float = 300  # ATA -> VOICE CALL: BEGIN
    ring_every_ms: float = 4000  # RING (+CLIP) repeats while a call is incoming
    no_reply_ms: float = 60000  # an unanswered call is released (NO ANSWER / the caller gives up)
    release_ms: float = 200  # AT+CHUP -> VOICE CALL: END


@dataclass
class Call:
    number: str
    direction: str  # "mo" (the terminal dialled) or "mt" (the centre called)
    started_ms: float
    stat: int = 2  # 27.007 +CLCC <stat>: 0 active, 2 dialling, 3 alerting, 4 incoming
    connected_ms: float | None = None
    ended_ms: float | None = None
    ended_by: str | None = None  # "terminal", "centre", "busy", "no_reply"
    speaker_level: int | None = None  # +CLVL when the call connected
    ringer_level: int | None = None  # +CRSL when it connected
    mic_muted: bool | None = None  # +CMUT when it connected: the centre hears nothing if True


@dataclass
class Centre:
    """The police centre's voice line: answers after answer_after_ms ("answer"), is "busy", or
    lets it ring ("no_answer"); hangs up after hang_up_after_ms connected (None: never)."""

    number: str
    behaviour: str = "answer"
    answer_after_ms: float = 3000
    hang_up_after_ms: float | None = 20000
    calls: list[Call] = field(default_factory=list)


class Voice:
    """Mixin for a dialect with voice (dialects.A7670): state reset with the module."""

    vt = VoiceTiming()

    def voice_reset(self) -> None:
        if not hasattr(self, "centres"):
            self.centres: dict[str, Centre] = {}
            self.calls: list[Call] = []  # every call, oldest first
            self.audible: list[tuple[float, str]] = []  # (device ms, what a bystander heard)
        self.clvl, self.crsl, self.cmut, self.clip = DEFAULT_CLVL, DEFAULT_CRSL, 0, 0
        call = getattr(self, "call", None)
        if call is not None and call.ended_ms is None:  # a reset drops the call
            self._release(call, "terminal", urc=False)
        self.call: Call | None = None
        self._call_n = getattr(self, "_call_n", 0) + 1

    def add_centre(self, centre: Centre) -> Centre:
        self.centres[centre.number] = centre
        return centre

    def _now(self) -> float:
        return self.clock.now_ms()

    def _heard(self, what: str) -> None:
        self.audible.append((self._now(), what))

    def _new_call(self, number: str, direction: str, stat: int) -> Call:
        self.add_centre(self.centres.get(number) or Centre(number, behaviour="no_answer"))
        self.call = c = Call(number, direction, self._now(), stat)
        self.calls.append(c)
        self.centres[number].calls.append(c)
        self._call_n += 1
        return c

    def _later_call(self, ms: float, c: Call, fn) -> None:
        """fn() after ms, if c is still the call and the module still on."""
        n = self._call_n
        self._later(ms, lambda: fn() if self.call is c and n == self._call_n else None)

    # ------------------------------------------------------------------ the terminal dials

    def at_d(self, op, arg):
        number = arg.strip()
        if not number.endswith(";"):
            return self.reply(final="NO CARRIER")  # a data call: no circuit-switched data here
        number = number[:-1].strip()
        if not self.need_sim():
            return
        if self.call is not None:
            return self.error(3)  # operation not allowed
        if not self.registered:
            return self.reply(final="NO CARRIER", delay_ms=self.vt.setup_ms)
        c = self._new_call(number, "mo", 2)
        self.reply()  # AT+COLP=0 (default): OK as soon as dialled
        self._later_call(self.vt.setup_ms, c, lambda: self._alerting(c))

    def _alerting(self, c: Call) -> None:
        c.stat = 3
        centre = self.centres[c.number]
        if centre.behaviour == "busy":
            self._release(c, "busy", final="BUSY")
        elif centre.behaviour == "answer":
            self._later_call(centre.answer_after_ms, c, lambda: self._connect(c))
        else:
            self._later_call(self.vt.no_reply_ms, c,
                             lambda: self._release(c, "no_reply", final="NO ANSWER"))

    def _connect(self, c: Call) -> None:
        c.stat, c.connected_ms = 0, self._now()
        c.speaker_level, c.ringer_level, c.mic_muted = self.clvl, self.crsl, bool(self.cmut)
        if self.clvl:
            self._heard(f"call audio at loudspeaker level {self.clvl}")
        self.send_urc("VOICE CALL: BEGIN")
        after = self.centres[c.number].hang_up_after_ms
        if after is not None:
            self._later_call(after, c, lambda: self._release(c, "centre"))

    def _release(self, c: Call, by: str, final: str | None = None, urc: bool = True) -> None:
        """The call ends: by the centre (END + NO CARRIER), busy / no reply (that result)."""
        c.ended_ms, c.ended_by = self._now(), by
        if self.call is c:
            self.call = None
        self._call_n += 1
        if not urc:
            return
        if c.connected_ms is not None:
            s = int((c.ended_ms - c.connected_ms) / 1000)
            self.send_urc(f"VOICE CALL: END: {s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}")
        self.send_urc(final or "NO CARRIER")

    # ------------------------------------------------------------------ the centre calls

    def incoming(self, number: str) -> Call:
        """The centre dials the terminal: RING (+CLIP) every ring cycle until answered, or
        released after the no-reply time."""
        c = self._new_call(number, "mt", 4)
        self._ring(c)
        self._later_call(self.vt.no_reply_ms, c, lambda: self._release(c, "no_reply"))
        return c

    def _ring(self, c: Call) -> None:
        if c.stat != 4:
            return
        if self.crsl:
            self._heard(f"ring at ringer level {self.crsl}")
        self.send_urc("RING")
        if self.clip:
            self.send_urc(f'+CLIP: "{c.number}",145,,,,0')
        self._later_call(self.vt.ring_every_ms, c, lambda: self._ring(c))

    def at_a(self, op, arg):
        c = self.call
        if c is None or c.stat != 4:
            return self.reply(final="NO CARRIER")
        c.stat = 2
        self.reply()
        self._later_call(self.vt.answer_ms, c, lambda: self._connect(c))

    # ------------------------------------------------------------------ both

    def at_chup(self, op, arg):
        c = self.call
        self.reply()
        if c is not None:
            self._release(c, "terminal", urc=False)
            if c.connected_ms is not None:
                self._later(self.vt.release_ms, lambda: self._end_urc(c))

    def _end_urc(self, c: Call) -> None:
        s = int((c.ended_ms - c.connected_ms) / 1000)
        self.send_urc(f"VOICE CALL: END: {s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}")

    def at_h(self, op, arg):
        self.at_chup(op, arg)

    def at_clcc(self, op, arg):
        c = self.call
        lines = [] if c is None else [
            f'+CLCC: 1,{0 if c.direction == "mo" else 1},{c.stat},0,0,"{c.number}",145']
        self.reply(*lines)

    def _level(self, name: str, op: str, arg: str, top: int) -> None:
        if op == "=?":
            return self.reply(f"+{name.upper()}: (0-{top})")
        if op == "?":
            return self.reply(f"+{name.upper()}: {getattr(self, name)}")
        if op == "=" and arg.strip().isdigit() and int(arg) <= top:
            setattr(self, name, int(arg))
            c = self.call
            if name == "clvl" and self.clvl and c is not None and c.connected_ms is not None:
                self._heard(f"call audio at loudspeaker level {self.clvl}")
            return self.reply()
        self.error(50)  # incorrect parameters (27.007 §9.2.1)

    def at_clvl(self, op, arg):
        self._level("clvl", op, arg, CLVL_MAX)

    def at_crsl(self, op, arg):
        self._level("crsl", op, arg, CRSL_MAX)

    def at_cmut(self, op, arg):
        self._level("cmut", op, arg, 1)

    def at_clip(self, op, arg):
        if op == "?":
            return self.reply(f"+CLIP: {self.clip},1")
        self._level("clip", op, arg, 1)
