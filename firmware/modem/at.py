"""The AT engine: one reader task per UART, commands serialised, whole lines classified,
URCs dispatched, per-command deadlines, hang -> PWRKEY power cycle. Mechanism only: the
Modem (core.py) decides what to send and what to do after a reset."""
import asyncio
import time

from micropython import const

from modem import atlines

_LINE_MAX = const(600)  # bytes; a PDU line is at most 2 * 176 hex chars, +CGNSINF ~ 120
_CHUNK = const(128)
_LATE_GUARD_MS = const(300)
_HANG_TIMEOUTS = const(2)  # consecutive unanswered commands before the modem is declared hung
DEFAULT_MS = const(2000)  # plain commands: "max response time 300 ms" in most manual entries


class AtError(Exception):
    """The command ended with an error final result: .kind ('CME', 'CMS', 'ERROR'...), .code."""

    def __init__(self, cmd, line):
        self.kind, self.code = atlines.error_code(line)
        super().__init__("%s -> %s" % (cmd, line))


class AtTimeout(Exception):
    """No final result within the command's deadline."""


class ModemReset(Exception):
    """The modem rebooted (boot URC) or was power-cycled while the command was in flight."""


def _text(raw):
    try:
        return raw.decode()
    except Exception:  # garbage bytes on the line: keep it readable for the log
        return bytes(b if 32 <= b < 127 else 63 for b in raw).decode()  # 63 = "?"


class Framer:
    """Bytes in, events out: ('line', str), ('prompt', None), ('data', bytes).
    Either CR or LF ends a line. Inline binary payloads ("+CARECV: 5,<5 bytes>") are cut by
    their declared length; raw(n) makes the next n bytes one data event."""

    def __init__(self, inline_prefixes=()):
        self.buf = bytearray()
        self.inline = tuple(p.encode() for p in inline_prefixes)
        self.want_prompt = False
        self.raw_left = 0  # bytes still owed to a 'data' event
        self.skip_lf = False
        self.overlong = 0

    def feed(self, data):
        self.buf.extend(data)

    def raw(self, n):
        self.raw_left = n

    def next(self):
        buf = self.buf
        if self.skip_lf and buf:  # the LF of a CR LF whose CR ended the previous line
            self.skip_lf = False
            if buf[0] == 10:
                buf[:1] = b""
        if self.raw_left:
            if len(buf) < self.raw_left:
                return None
            n = self.raw_left
            out = bytes(buf[:n])
            buf[:n] = b""
            self.raw_left = 0
            return ("data", out)
        i = 0
        while i < len(buf) and buf[i] in (13, 10):
            i += 1
        if i:
            buf[:i] = b""
        if not buf:
            return None
        if self.want_prompt and buf[0] == 62:  # '>'
            n = 2 if len(buf) > 1 and buf[1] == 32 else 1
            buf[:n] = b""
            self.want_prompt = False
            return ("prompt", None)
        for p in self.inline:
            if buf.startswith(p):
                j = len(p)
                while j < len(buf) and 48 <= buf[j] <= 57:
                    j += 1
                if j < len(buf) and buf[j] == 44 and j > len(p):  # ',' after the length
                    self.raw_left = int(bytes(buf[len(p):j]))
                    line = _text(bytes(buf[:j]))
                    buf[:j + 1] = b""
                    return ("line", line)
                if j == len(buf):
                    return None  # wait for the rest of the header
        end = buf.find(b"\r")
        lf = buf.find(b"\n")
        if end < 0 or 0 <= lf < end:
            end = lf
        if end < 0:
            if len(buf) > _LINE_MAX:  # garbage without a terminator: flush it as one line
                self.overlong += 1
                line = _text(bytes(buf))
                buf[:] = b""
                return ("line", line)
            return None
        line = _text(bytes(buf[:end]))
        self.skip_lf = buf[end] == 13
        buf[:end + 1] = b""
        return ("line", line)


class _Pending:
    def __init__(self, cmd, expect):
        self.cmd = cmd
        self.expect = expect
        self.lines = []
        self.final = None
        self.done = asyncio.Event()
        self.prompt = asyncio.Event()
        self.next_is_pdu = False
        self.ends = ()


class At:
    """reader: has `async read(n)`; writer: has `write(b)` and `async drain()` (asyncio streams
    over the UART). pwrkey(level): drives the PWRKEY line (1 = pressed). on_reset(reason) is called
    with 'reboot' (unprompted boot URC) or 'hang' (after the power cycle)."""

    pwrkey_off_ms = 1300  # dialects set these from their hardware design manual
    pwrkey_on_ms = 1100
    off_to_on_ms = 2000  # first press -> boot URC, worst case, when the module was off
    power_down_ms = 2000  # "POWER DOWN" URC -> module off and PWRKEY looked at again
    boot_burst_ms = 20000  # RDY .. SMS Ready on SIMCom modules takes a few seconds
    recover_gap_ms = 30000  # no second power cycle while the first boot may still be running
    _recover_at = None  # type: ignore[var-annotated]

    def __init__(self, reader, writer, pwrkey=None, on_reset=None, log=print,
                 urc_prefixes=atlines.URC_PREFIXES, inline_data=(), data_after=()):
        self._r = reader
        self._w = writer
        self.pwrkey = pwrkey
        self.on_reset = on_reset
        self.log = log
        self.urc_prefixes = urc_prefixes
        self.data_after = data_after  # response prefixes followed by <n> raw bytes on a new line
        self.framer = Framer(inline_data)
        self._lock = asyncio.Lock()
        self._pending = None
        self._urc_head = None  # header of a two-line URC waiting for its second line
        self._handlers = []  # (prefix, fn(line, extra)) ; extra = second line or data
        self.echo = True  # until ATE0 is answered
        self.hung = False
        self._timeouts = 0
        self._expect_reboot = False
        self.stats = {"lines": 0, "urc": 0, "unknown": 0, "timeouts": 0, "resets": 0,
                      "power_cycles": 0, "errors": 0}
        self.unknown = []  # the last few unknown lines, for the log and tests
        self._task = None

    # ------------------------------------------------------------------ wiring

    def on(self, prefix, fn):
        """Call fn(line, extra) for every URC starting with prefix."""
        self._handlers.append((prefix, fn))

    def start(self):
        if self._task is None:
            self._task = asyncio.create_task(self._read_loop())
        return self._task

    def stop(self):
        if self._task:
            self._task.cancel()
            self._task = None

    # ------------------------------------------------------------------ commands

    async def cmd(self, cmd, expect=None, timeout_ms=DEFAULT_MS, payload=None, prompt_ms=5000,
                  ends=()):
        """Send `cmd` and return its information lines (a list; data payloads as bytes).
        expect: response prefix ("+CSQ:"), "" for bare text, None for final result only.
        payload: bytes sent after the "> " prompt (SMS PDU + Ctrl-Z, socket data).
        ends: lines that also end this command successfully ("NORMAL POWER DOWN" after CPOWD)."""
        if self.booting and cmd != "AT":
            raise ModemReset(cmd)  # power-cycled, not answering AT yet: nothing else reaches it
        async with self._lock:
            if self._timeouts and cmd != "AT":
                # The last command went unanswered: let a late answer to it arrive now, while
                # nothing is pending (it is counted as unknown), not as this command's result.
                await asyncio.sleep_ms(_LATE_GUARD_MS)
            p = _Pending(cmd, expect)
            p.ends = ends
            self._pending = p
            try:
                self.framer.want_prompt = payload is not None
                await self._send(cmd + "\r")
                if payload is not None:
                    await self._wait(p.prompt, prompt_ms, p)
                    if p.final is None:  # an error instead of "> " ends the command here
                        await self._send(payload)
                await self._wait(p.done, timeout_ms, p)
            finally:
                self._pending = None
                self.framer.want_prompt = False
            if p.final is ModemReset:
                raise ModemReset(cmd)
            if atlines.final_kind(p.final) == atlines.FINAL_ERROR:
                self.stats["errors"] += 1
                raise AtError(cmd, p.final)
            return p.lines

    async def _send(self, data):
        self.traffic_ms = time.ticks_ms()
        self._w.write(data.encode() if isinstance(data, str) else data)
        await self._w.drain()

    traffic_ms: object = 0  # ticks of the last byte either way (PSM: how long the module has been idle)

    async def wake_press(self, ms):
        """One PWRKEY press of ms: wakes a module in PSM (BG95 Hardware Design 3.4.2; SIMCom
        SIM7020 Hardware Design 5.3.4, the SIM70x0 family); the dialect keeps it shorter than the
        press that switches an awake module off."""
        if self.pwrkey is None:
            return False
        self.pwrkey(1)
        await asyncio.sleep_ms(ms)
        self.pwrkey(0)
        return True

    async def _wait(self, evt, ms, p):
        try:
            await asyncio.wait_for_ms(evt.wait(), ms)
        except asyncio.TimeoutError:
            self.stats["timeouts"] += 1
            self._timeouts += 1
            self.log("at: timeout %s (%d ms)" % (p.cmd, ms))
            if self._timeouts >= _HANG_TIMEOUTS:
                self.hung = True
            raise AtTimeout(p.cmd)
        self._timeouts = 0

    async def sync(self, tries=10, ms=500):
        """Send AT until OK; True when the modem answers (autobaud, after boot)."""
        for _ in range(tries):
            try:
                await self.cmd("AT", timeout_ms=ms)
                self._timeouts = 0
                self.hung = False
                self.booting = False
                self._synced = True
                return True
            except (AtTimeout, AtError, ModemReset):
                pass
        return False

    # ------------------------------------------------------------------ power

    async def power_cycle(self):
        """Hold PWRKEY to switch off, wait, hold again to switch on (SIMCom/Quectel PWRKEY
        toggles, and without a STATUS pin the press is blind). After the first press: a boot URC
        means the module was off and is now on; "POWER DOWN" means it was on and is going down,
        so wait until it is off (a key pressed while it shuts down is ignored), then press again.
        Silence (a hung module) waits off_to_on_ms, which dialects set above their boot time so
        that a second press never switches off a module that is still booting."""
        if self.pwrkey is None:
            return False
        self.stats["power_cycles"] += 1
        self.log("at: power cycle")
        self._expect_reboot = True
        self._booted = False
        self._went_down = False
        self.pwrkey(1)
        await asyncio.sleep_ms(self.pwrkey_off_ms)
        self.pwrkey(0)
        waited = 0
        while waited < self.off_to_on_ms and not self._booted and not self._went_down:
            await asyncio.sleep_ms(100)
            waited += 100
        if self._went_down:
            await asyncio.sleep_ms(self.power_down_ms)
        if not self._booted:
            self._expect_reboot = True
            self.pwrkey(1)
            await asyncio.sleep_ms(self.pwrkey_on_ms)
            self.pwrkey(0)
        self.echo = True
        self.hung = False
        self._timeouts = 0
        self.booting = True
        return True

    booting = False  # power-cycled and not yet answering AT (sync): commands fail fast
    _synced = False  # the module answered AT once

    def may_recover(self):
        """Hung, and no power cycle within the last recover_gap_ms (a booting modem is silent)."""
        return self.hung and (self._recover_at is None or
                              time.ticks_diff(time.ticks_ms(), self._recover_at) > self.recover_gap_ms)

    async def recover(self):
        """Power-cycle a hung modem and ask for re-initialisation."""
        self._recover_at = time.ticks_ms()
        async with self._lock:  # no command goes out while PWRKEY is pressed
            await self.power_cycle()
        if self.on_reset:
            self.on_reset("hang")

    # ------------------------------------------------------------------ reader

    async def _read_loop(self):
        fr = self.framer
        while True:
            data = await self._r.read(_CHUNK)
            if not data:
                await asyncio.sleep_ms(10)
                continue
            fr.feed(data)
            self.traffic_ms = time.ticks_ms()
            while True:
                ev = fr.next()
                if ev is None:
                    break
                try:
                    self._event(ev[0], ev[1])
                except Exception as e:  # a bad line must never kill the reader
                    self._unknown("handler failed: %r (%s)" % (ev[1], e))

    def _event(self, kind, value):
        p = self._pending
        if kind == "prompt":
            if p:
                p.prompt.set()
            return
        if kind == "data":
            if self._urc_head is not None:
                head, self._urc_head = self._urc_head, None
                self._dispatch(head, value)
            elif p:
                p.lines.append(value)
            else:
                self._unknown("data %d bytes" % len(value))
            return
        line = value
        self.stats["lines"] += 1
        if self._urc_head is not None:  # second line of +CMT / +CDS
            head, self._urc_head = self._urc_head, None
            self._dispatch(head, line)
            return
        if p and line in p.ends:
            p.final = "OK"
            p.done.set()
            p.prompt.set()
            return
        if p and p.next_is_pdu:
            p.next_is_pdu = False
            p.lines.append(line)
            return
        if p and not self.echo and line == p.cmd:
            self._echo_back(line)  # ATE0 does not outlive a reset: the module reset silently
            return
        if atlines.call_end_urc(line, p.cmd if p else None):
            self.stats["urc"] += 1  # e.g. NO CARRIER while AT+CSQ is in flight: not its answer
            self._dispatch(line, None)
            return
        echo = p.cmd if (p and self.echo) else None
        k = atlines.classify(line, p.expect if p else None, echo, p is not None, self.urc_prefixes)
        if p is not None and k == atlines.INTERMEDIATE:  # (command kinds need p: in_command)
            p.lines.append(line)
            if line.startswith("+CMGR:") or line.startswith("+CMGL:"):
                p.next_is_pdu = True  # 27.005 §3.4.3 PDU mode: the PDU is on the next line
            for dp in self.data_after:
                if line.startswith(dp):
                    self.framer.raw(_data_len(line))
        elif p is not None and (k == atlines.FINAL_OK or k == atlines.FINAL_ERROR):
            if p.cmd == "ATE0" and k == atlines.FINAL_OK:
                self.echo = False
            p.final = line
            p.done.set()
            p.prompt.set()
        elif p is not None and k == atlines.PROMPT:
            p.prompt.set()
        elif k == atlines.URC:
            self.stats["urc"] += 1
            stage = atlines.is_boot(line)
            if stage:
                self._boot(line, stage)
            elif line.endswith("POWER DOWN") or line == "POWERED DOWN":
                self._went_down = True
            for h in atlines.TWO_LINE_URCS:
                if line.startswith(h):
                    self._urc_head = line
                    return
            self._dispatch(line, None)
        elif k == atlines.ECHO or k == atlines.EMPTY:
            pass
        else:
            self._unknown(line)

    def _boot(self, line, stage):
        """A boot line (atlines.BOOT_URCS, LATE_BOOT_URCS). A first line starts a boot; a later
        line within boot_burst_ms of the boot's start is part of it, one outside any boot starts
        one too. A boot that we did not cause (power_cycle, power_down) is an unprompted reset,
        however soon after the last one it comes."""
        now = time.ticks_ms()
        if stage == atlines.BOOT_LATE and (not self._synced or self._boot_at is not None and
                                           time.ticks_diff(now, self._boot_at) < self.boot_burst_ms):
            return  # the rest of the boot in progress (or of one before we ever spoke to it)
        self._booted = True
        self.booting = False  # it announced its boot: it answers
        self.echo = True  # a rebooted module has echo on again (ATE1 default)
        self._boot_at = now  # type: ignore[assignment]
        if self._expect_reboot:
            self._expect_reboot = False
            return
        self.stats["resets"] += 1
        self.log("at: modem rebooted (%s)" % line)
        p = self._pending
        if p:
            p.final = ModemReset
            p.done.set()
            p.prompt.set()
        if self.on_reset:
            self.on_reset("reboot")

    def _echo_back(self, line):
        """Our command echoed after ATE0: the module reset without a boot line we saw (autobaud,
        or its URCs lost). The command in flight goes on (the module answers it); the Modem
        re-initialises after it."""
        self.echo = True
        self.stats["resets"] += 1
        self.log("at: modem rebooted (echo back on: %s)" % line)
        if self.on_reset:
            self.on_reset("reboot")

    _boot_at = None  # type: ignore[var-annotated]
    _booted = False
    _went_down = False

    def _dispatch(self, line, extra):
        for prefix, fn in self._handlers:
            if line.startswith(prefix):
                fn(line, extra)
                return
        if not atlines.is_boot(line):
            self.log("at: urc %s" % line)

    def _unknown(self, line):
        self.stats["unknown"] += 1
        self.unknown.append(line)
        if len(self.unknown) > 8:
            self.unknown.pop(0)
        self.log("at: unknown line %r" % line)


def _data_len(line):
    """<len> of a response announcing raw bytes: the third field of "+CIPRXGET: 2,<id>,<len>,..",
    the only field of "+QIRD: <len>"."""
    f = atlines.fields(line, atlines.after_colon(line))
    if line.startswith("+CIPRXGET:"):
        return int(f[2])
    return int(f[0])
