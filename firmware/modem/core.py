"""3GPP TS 27.007 / 27.005 core of every modem: SIM, registration, signal, serving cell, PDU-mode
SMS. Dialects (sim7080.py, a7670.py, bg95.py) add sockets, GNSS and power saving."""
import asyncio
import binascii
import time

from micropython import const

from modem import atlines
from modem.at import At, AtError, AtTimeout, ModemReset

# Max response times: 27.005/27.007 leave them to the vendor; these follow the SIMCom and Quectel
# AT manuals (AT+CMGS 60 s, AT+CMGR/CMGD 5 s, AT+COPS 120 s, AT+CPIN 5 s).
_SMS_SEND_MS = const(60000)
_SMS_READ_MS = const(5000)
_SIM_MS = const(5000)
_CFUN_MS = const(10000)
_LINK_REINIT_MAX = const(32)  # data-link failures before a re-init, at most (~16 min at 30 s)

# 27.007 §10.1.22 <stat>
REG_NOT = const(0)
REG_HOME = const(1)
REG_SEARCHING = const(2)
REG_DENIED = const(3)
REG_UNKNOWN = const(4)
REG_ROAMING = const(5)


class ModemError(Exception):
    """The modem cannot do what was asked (no SIM, not registered, capability missing)."""


# ---------------------------------------------------------------- pure parsers

def _pdu():
    """The SMS PDU codec (modem/pdu.py), imported by the first SMS sent or received: a terminal
    that only ever sends over data never holds it (5 KB of heap from ROMFS, 10 KB as a file)."""
    from modem import pdu

    return pdu


def _int(s, base=10, default=None):
    b = s.strip().strip('"').strip().encode()  # bytes: no 1-char str (qstr) per digit
    n = 0
    while n < len(b) and (48 <= b[n] <= 57 or (base == 16 and 97 <= (b[n] | 32) <= 102)):
        n += 1
    if n == 0:
        return default
    return int(b[:n], base)


def _is_small_decimal(s):
    s = s.strip()
    return 0 < len(s) <= 2 and s.isdigit()


def parse_reg(line, solicited):
    """+CREG/+CGREG/+CEREG/+C5GREG (27.007 §7.2, §10.1.20, §10.1.22, §10.1.54), read answer
    (solicited: "<n>,<stat>[,...]") or URC ("<stat>[,...]"). -> (stat, lac_or_tac, ci, act),
    None where the field is absent. Tolerates what real modems send: spaces, unquoted hex,
    an <n> in URCs, a <rac> between TAC and CI."""
    f = atlines.fields(line, atlines.after_colon(line))
    if not f or not f[0]:
        return None
    i = 0
    if solicited or (len(f) >= 2 and _is_small_decimal(f[1])):
        i = 1  # skip <n>
    if i >= len(f):
        return None
    stat = _int(f[i])
    rest = f[i + 1:]
    if line.startswith("+CEREG") and len(rest) == 4:
        rest = [rest[0], rest[2], rest[3]]  # <tac>,<rac>,<ci>,<AcT> from some LTE modules
    lac = _int(rest[0], 16) if rest else None
    ci = _int(rest[1], 16) if len(rest) > 1 else None
    act = _int(rest[2]) if len(rest) > 2 else None
    return stat, lac, ci, act


def parse_csq(line):
    """+CSQ: <rssi>,<ber> (27.007 §8.5) -> dBm or None (99 = not known)."""
    f = atlines.fields(line, atlines.after_colon(line))
    v = _int(f[0])
    if v is None or v == 99:
        return None
    return -113 + 2 * v


def parse_cesq(line):
    """+CESQ: rxlev,ber,rscp,ecno,rsrq,rsrp (27.007 §8.69) -> dict of the values known, in dBm/dB."""
    f = [_int(x) for x in atlines.fields(line, atlines.after_colon(line))]
    out: dict = {}
    if len(f) < 6:
        return out
    if f[0] is not None and f[0] != 99:
        out["rssi"] = f[0] - 111.0
    if f[2] is not None and f[2] != 255:
        out["rscp"] = f[2] - 121.0
    if f[3] is not None and f[3] != 255:
        out["ecio"] = f[3] * 0.5 - 24.5
    if f[4] is not None and f[4] != 255:
        out["rsrq"] = f[4] * 0.5 - 20.0
    if f[5] is not None and f[5] != 255:
        out["rsrp"] = f[5] - 141.0
    return out


def parse_cpin(line):
    """+CPIN: <code> (27.007 §8.3) -> 'READY', 'SIM PIN', ... or None (an error answer)."""
    if line.startswith("+CME ERROR"):
        return None
    s = line[atlines.after_colon(line):] if line.startswith("+CPIN:") else line
    return s.strip().strip('"')


def parse_cmgr(header, pdu_line):
    """+CMGR: <stat>,[<alpha>],<length> + the PDU line (27.005 §3.4.3 PDU mode) -> (stat, Sms).
    The PDU's own fields decide: real modems send a <length> that disagrees with the PDU, or omit
    <alpha>, and the message is still good. A malformed PDU raises PduError."""
    f = atlines.fields(header, atlines.after_colon(header))
    return _int(f[0]), _pdu().decode(hex_pdu(pdu_line))


def hex_pdu(pdu_line):
    """The PDU bytes of a hex line (a stray quote or spaces around it tolerated)."""
    s = pdu_line.strip().strip('"').strip()
    if not s or len(s) & 1:
        raise _pdu().PduError("PDU hex has odd length")
    try:
        return binascii.unhexlify(s)
    except ValueError:
        raise _pdu().PduError("PDU is not hex")


def gnss_answer(line, kind):
    """A modem GNSS answer line -> gnss.Fix via the GNSS area's parsers (gnss/at.py:
    cgnsinf, cgnssinfo, qgpsloc); the raw line if that module is absent."""
    if line is None:
        return None
    try:
        from gnss import at as gnss_at
    except ImportError:
        return line
    fn = getattr(gnss_at, kind, None)
    return fn(line) if fn else line


# ---------------------------------------------------------------- the modem

class Modem:
    """27.007/27.005 core. A dialect subclass sets `caps`, `pwrkey_*` timings, `urc_prefixes`,
    and implements the socket/GNSS/PSM parts. Create with the AT engine's streams:
    Modem(reader, writer, pwrkey=callable)."""

    name = "generic"
    caps: tuple = ("sms",)  # of: gnss, sms, udp, psm, gnss_with_lte
    pwrkey_on_ms = 1100
    pwrkey_off_ms = 1300
    off_to_on_ms = 2000
    power_down_ms = 2000
    boot_ms = 10000  # power-on to AT-ready budget
    urc_prefixes: tuple = atlines.URC_PREFIXES
    inline_data: tuple = ()  # response prefixes carrying "<len>,<bytes>" on the same line
    data_after: tuple = ()  # response prefixes followed by <len> raw bytes on the next line
    reg_cmd = "+CEREG"  # LTE-M / NB-IoT registration (27.007 §10.1.22)
    powd_cmd = "AT+CPOWD=1"

    def __init__(self, reader, writer, pwrkey=None, log=print):
        self.log = log
        self.at = At(reader, writer, pwrkey, self._on_reset, log, self.urc_prefixes,
                     self.inline_data, self.data_after)
        self.at.pwrkey_on_ms = self.pwrkey_on_ms
        self.at.pwrkey_off_ms = self.pwrkey_off_ms
        self.at.off_to_on_ms = self.off_to_on_ms
        self.at.power_down_ms = self.power_down_ms
        self.ready = False
        self.reg = None  # last (stat, tac, ci, act)
        self.reg_evt = asyncio.Event()  # set while registered
        self.reg_change = asyncio.Event()  # set on every registration update
        self.last_error = None  # why the last re-initialisation failed
        self.inbox = []  # received Sms, oldest first
        self.inbox_evt = asyncio.Event()
        self.udp_inbox = []  # received datagrams (bytes)
        self.udp_evt = asyncio.Event()
        self.reset_evt = asyncio.Event()
        self.resets = 0
        self.sms_errors = 0
        self.at.on("+CEREG:", self._on_reg)
        self.at.on("+CREG:", self._on_reg)
        self.at.on("+CGREG:", self._on_reg)
        self.at.on("+CMTI:", self._on_cmti)
        self.at.on("+CMT:", self._on_cmt)
        self.at.on("+CPIN:", self._on_cpin)
        self.at.on("+CPSMSTATUS:", self._on_psm_status)

    def has(self, cap):
        return cap in self.caps

    # ------------------------------------------------------------------ life cycle

    async def start(self):
        """Reader running, modem answering, initialised. Power it on if it is silent."""
        self.at.start()
        # One probe where a PSM wake press is known (it goes next), else three.
        probes = 1 if self.psm and self.psm_wake_ms and self.at.pwrkey else 3
        if not await self.at.sync(probes, 300) and not await self._psm_wake():
            # Two blind PWRKEY cycles: if the first left it off (a press landed mid-boot), the
            # second switches it on.
            for _ in range(2):
                await self.at.power_cycle()
                if await self._wait_boot():
                    break
            else:
                raise ModemError("modem does not answer")
        await self.init()

    async def _psm_wake(self):
        """A silent module that may sleep in PSM (left there by a board that deep-slept) gets its
        wake press first: it answers registered, nothing re-attached. An off one is switched on
        by the same press (it is at least the power-on press). -> True if it answers."""
        if not (self.psm and self.has("psm") and self.psm_wake_ms and self.at.pwrkey):
            return False
        self.log("modem: silent at start: wake press (PSM)")
        await self.at.wake_press(self.psm_wake_ms)
        return await self._wait_boot()

    async def _wait_boot(self):
        tries = max(3, self.boot_ms // 500)
        return await self.at.sync(tries, 500)

    async def init(self):
        """Configure after every boot (echo off, numeric errors, PDU mode, URCs on)."""
        self.ready = False
        await self.at.cmd("ATE0")
        await self.at.cmd("AT+CMEE=1")  # numeric +CME ERROR codes (27.007 §9.1)
        await self.check_sim()
        await self.at.cmd("AT+CMGF=0")  # PDU mode (27.005 §3.2.3)
        await self.at.cmd("AT+CNMI=2,1,0,0,0")  # new SMS -> +CMTI (27.005 §3.4.1)
        await self.at.cmd("AT%s=2" % self.reg_cmd)  # registration URCs with TAC/CI
        await self.registration()  # a module that registered before that sends no URC for it
        await self.dialect_init()
        await self._psm_init()
        try:
            await self.read_stored_sms()  # what arrived while we were off or rebooting
        except AtError as e:
            self.log("modem: stored SMS not listed: %r" % e)
        self.ready = True
        self.last_error = None
        self.reset_evt.clear()

    async def dialect_init(self):
        pass

    # ------------------------------------------------------------------ PSM
    # psm: {"tau_s": T3412, "active_s": T3324} from /device.json, for a dialect with "psm": the
    # module sleeps between uses, registered (BG95 Hardware Design 3.4.2: "similar to power-off,
    # but the module remains registered ... no need to re-attach or re-establish PDN"), and is
    # woken for a command. psm_status_cmd: the dialect's switch for PSM entry/exit URCs.
    psm = None
    psm_status_cmd: str | None = None
    psm_wake_ms: int | None = None  # the PWRKEY press that wakes it, ms; None: PSM not used on this dialect
    asleep = False  # the module said it entered PSM (URC) and has not said it left

    async def _psm_init(self):
        if not (self.psm and self.has("psm")):
            return
        if not (self.psm_wake_ms and self.at.pwrkey):
            self.log("modem: PSM off: no wake press known for %s" % self.name)
            self.psm = None
            return
        from modem import extra

        await extra.set_psm(self, True, self.psm.get("tau_s", 86400), self.psm.get("active_s", 30))
        if self.psm_status_cmd:
            await self.at.cmd(self.psm_status_cmd)

    def _may_sleep(self):
        if self.asleep:
            return True
        if not self.psm or not self.ready:
            return False
        idle = time.ticks_diff(time.ticks_ms(), self.at.traffic_ms)
        return idle > self.psm.get("active_s", 30) * 1000  # T3324 at least: it may be in PSM

    async def wake(self):
        """A module that may be in PSM answers before the command goes: an AT probe (known
        asleep: none), else the PWRKEY wake press and AT until it answers."""
        if self._waking:
            while self._waking:
                await asyncio.sleep_ms(50)
            return
        self._waking = True
        try:
            if not self.asleep and await self.at.sync(1, 300):
                return
            self.log("modem: waking from PSM")
            await self.at.wake_press(self.psm_wake_ms)
            if await self._wait_boot():
                self.asleep = False
        finally:
            self._waking = False

    _waking = False

    def _on_psm_status(self, line, _):
        """+CPSMSTATUS: ENTER PSM / EXIT PSM (SIM7080 AT manual, with AT+CPSMSTATUS=1)."""
        self.asleep = "ENTER" in line
        self.log("modem: " + line[atlines.after_colon(line):])

    async def power_down(self):
        """Orderly switch-off (detach, save state) before the board sleeps without PSM:
        AT+CPOWD=1 (SIMCom LPWA), AT+CPOF (SIMCom Cat-1), AT+QPOWD=1 (Quectel). start() powers
        it on again through PWRKEY."""
        self.at._expect_reboot = True  # the next boot URC is ours
        self.ready = False
        try:
            await self.at.cmd(self.powd_cmd, None, 5000, ends=("NORMAL POWER DOWN", "POWERED DOWN"))
        except (AtError, AtTimeout):
            self.at.hung = False  # an off module is silent: that is not a hang
            self.at._timeouts = 0

    # A data link that keeps failing (+CAOPEN result 1, no PDP context) after a reset we never
    # heard: re-initialise after this many failures in a row, power-cycle after twice as many.
    # Each power cycle doubles the count for the next one (a network that refuses data must not
    # have the module cycled every few minutes), up to _LINK_CYCLE_MAX.
    link_reinit_after = 2

    def link_failed(self):
        """The caller could not open the data link again."""
        self._link_fails += 1
        n = self._link_fails
        if n >= 2 * self._link_reinit:
            self._link_fails = 0
            self._link_reinit = min(2 * self._link_reinit, _LINK_REINIT_MAX)
            self.log("modem: data link failed %d times: power cycle" % n)
            asyncio.create_task(self.at.recover())  # -> _on_reset('hang') -> supervise
        elif n == self._link_reinit:
            self.log("modem: data link failed %d times: re-init" % n)
            self._on_reset("link")

    def link_ok(self):
        self._link_fails = 0
        self._link_reinit = self.link_reinit_after

    _link_fails = 0
    _link_reinit = 2

    def _on_reset(self, reason):
        self.ready = False
        self.asleep = False
        self.resets += 1
        self.reg = None
        self.reg_evt.clear()
        self.reset_evt.set()
        self.dialect_reset()

    def dialect_reset(self):
        pass

    async def supervise(self):
        """Task: re-initialise after every modem reset (reboot URC or recovered hang). Failed
        attempts back off from 1 s to 64 s (a missing SIM must not keep the UART busy)."""
        backoff = 1000
        while True:
            await self.reset_evt.wait()
            await asyncio.sleep_ms(100)
            try:
                if await self._wait_boot():
                    await self.init()
                    backoff = 1000
                else:
                    await self.at.recover()
            except (AtError, AtTimeout, ModemReset, ModemError) as e:
                self.last_error = e
                self.log("modem: re-init failed: %r" % e)
                await asyncio.sleep_ms(backoff)
                backoff = min(backoff * 2, 64000)

    async def cmd(self, cmd, expect=None, timeout_ms=2000, payload=None):
        """at.cmd plus recovery: a module in PSM is woken first; a hung modem is power-cycled
        before the error propagates."""
        if self._may_sleep():
            await self.wake()
        try:
            return await self.at.cmd(cmd, expect, timeout_ms, payload)
        except AtTimeout:
            if self.at.may_recover():
                await self.at.recover()
            raise

    # ------------------------------------------------------------------ SIM, network

    async def check_sim(self, tries=20):
        """27.007 §8.3: READY, waiting while the SIM is busy after boot (+CME ERROR: 14 or
        NOT READY, ~1-2 s); ModemError('no SIM ...') / ('SIM PIN') otherwise."""
        for _ in range(tries):
            try:
                lines = await self.cmd("AT+CPIN?", "+CPIN:", _SIM_MS)
            except AtError as e:
                if e.code != 14:  # 10 = SIM not inserted, 13 = SIM failure
                    raise ModemError("no SIM (%s %s)" % (e.kind, e.code))
                lines = None
            state = parse_cpin(lines[0]) if lines else None
            if state == "READY":
                return
            if state not in (None, "NOT READY"):
                raise ModemError("SIM %s" % state)
            await asyncio.sleep_ms(500)
        raise ModemError("SIM not ready")

    def _on_cpin(self, line, _):
        if parse_cpin(line) == "NOT READY":
            self.log("modem: SIM removed")

    def _on_reg(self, line, _):
        self._set_reg(parse_reg(line, False))

    def _set_reg(self, r):
        if r is None:
            return
        if self.reg and r[1] is None:  # stat-only URC keeps the cell we knew
            r = (r[0], self.reg[1], self.reg[2], self.reg[3])
        self.reg = r
        self.reg_change.set()
        if r[0] in (REG_HOME, REG_ROAMING):
            self.reg_evt.set()
        else:
            self.reg_evt.clear()

    async def registration(self):
        lines = await self.cmd("AT%s?" % self.reg_cmd, self.reg_cmd + ":")
        self._set_reg(parse_reg(lines[0], True) if lines else None)
        return self.reg

    def registered(self):
        return self.reg is not None and self.reg[0] in (REG_HOME, REG_ROAMING)

    async def wait_registered(self, timeout_ms):
        """True once home or roaming; False on timeout or when the network denies us."""
        await self.registration()
        t0 = time.ticks_ms()
        while not self.registered():
            if self.reg and self.reg[0] == REG_DENIED:
                return False
            left = timeout_ms - time.ticks_diff(time.ticks_ms(), t0)
            if left <= 0:
                return False
            self.reg_change.clear()
            try:
                await asyncio.wait_for_ms(self.reg_change.wait(), left)
            except asyncio.TimeoutError:
                return False
        return True

    async def signal(self):
        """{'rssi': dBm} from +CSQ, plus RSRP/RSRQ from +CESQ where the module has it."""
        out = {}
        lines = await self.cmd("AT+CSQ", "+CSQ:")
        if lines:
            out["rssi"] = parse_csq(lines[0])
        try:
            lines = await self.cmd("AT+CESQ", "+CESQ:")
            if lines:
                out.update(parse_cesq(lines[0]))
        except AtError:
            pass
        return out

    # ------------------------------------------------------------------ SMS (27.005, PDU mode)

    async def send_sms(self, number, body, vp=None):
        """SMS-SUBMIT of `body` (bytes: 8-bit data; str: GSM-7 or UCS-2). -> TP-MR.
        27.005 §3.5.1: AT+CMGS=<length>, wait for "> ", PDU in hex, Ctrl-Z; up to 60 s."""
        pdu = _pdu()
        tpdu = pdu.encode_submit(number, body, vp=vp)
        payload = tpdu.hex().upper().encode() + b"\x1a"
        lines = await self.cmd("AT+CMGS=%d" % pdu.tpdu_length(tpdu), "+CMGS:", _SMS_SEND_MS, payload)
        if not lines:
            return None
        return _int(lines[0][atlines.after_colon(lines[0]):])

    def _on_cmti(self, line, _):
        """+CMTI: <mem>,<index> (27.005 §3.4.1): read and delete it in a task."""
        f = atlines.fields(line, atlines.after_colon(line))
        idx = _int(f[-1])
        if idx is not None:
            asyncio.create_task(self._fetch_sms(idx))

    async def _fetch_sms(self, idx):
        try:
            lines = await self.cmd("AT+CMGR=%d" % idx, "+CMGR:", _SMS_READ_MS)
            if len(lines) >= 2:
                try:
                    self._deliver(parse_cmgr(lines[0], lines[1])[1])
                except ValueError as e:  # pdu.PduError
                    self.sms_errors += 1
                    self.log("modem: bad SMS at %d: %s" % (idx, e))
            await self.cmd("AT+CMGD=%d" % idx, None, _SMS_READ_MS)
        except (AtError, AtTimeout, ModemReset) as e:
            self.log("modem: SMS %d not read: %r" % (idx, e))

    def _on_cmt(self, line, pdu_line):
        """+CMT: [<alpha>],<length> then the PDU (27.005 §3.4.1, CNMI mt=2)."""
        try:
            self._deliver(_pdu().decode(hex_pdu(pdu_line or "")))
        except ValueError as e:  # pdu.PduError
            self.sms_errors += 1
            self.log("modem: bad +CMT: %s" % e)

    def _deliver(self, m):
        if m.kind != "deliver":
            return
        self.inbox.append(m)
        self.inbox_evt.set()

    async def recv_sms(self, timeout_ms):
        """The oldest received SMS, waiting up to timeout_ms; None on timeout."""
        return await _pop(self.inbox, self.inbox_evt, timeout_ms)

    async def read_stored_sms(self):
        """Messages already stored when we booted: AT+CMGL=4 (all, PDU mode), then delete."""
        lines = await self.cmd("AT+CMGL=4", "+CMGL:", 20000)
        for i in range(0, len(lines) - 1, 2):
            f = atlines.fields(lines[i], atlines.after_colon(lines[i]))
            try:
                self._deliver(_pdu().decode(hex_pdu(lines[i + 1])))
            except ValueError:  # pdu.PduError
                self.sms_errors += 1
            await self.cmd("AT+CMGD=%s" % f[0], None, _SMS_READ_MS)

    # ------------------------------------------------------------------ UDP, GNSS, PSM: dialects

    async def udp_open(self, host, port):
        raise ModemError("udp not supported")

    async def udp_send(self, data):
        raise ModemError("udp not supported")

    async def udp_close(self):
        pass

    async def udp_recv(self, timeout_ms):
        return await _pop(self.udp_inbox, self.udp_evt, timeout_ms)

    async def _read_datagrams(self, cmd, prefix):
        """Run a socket read command; every data payload in its answer becomes a datagram."""
        try:
            lines = await self.cmd(cmd, prefix, 10000)
        except (AtError, AtTimeout, ModemReset) as e:
            self.log("modem: %s failed %r" % (cmd, e))
            return
        for x in lines:
            if isinstance(x, bytes) and x:
                self.udp_inbox.append(x)
                self.udp_evt.set()

    async def gnss_power(self, on):
        raise ModemError("gnss not supported")

    async def gnss_fix(self):
        raise ModemError("gnss not supported")


async def _pop(items, evt, timeout_ms):
    if not items:
        evt.clear()
        try:
            await asyncio.wait_for_ms(evt.wait(), timeout_ms)
        except asyncio.TimeoutError:
            return None
    item = items.pop(0)
    if not items:
        evt.clear()
    return item
