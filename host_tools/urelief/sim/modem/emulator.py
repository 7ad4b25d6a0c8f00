"""An AT modem on the virtual board's UART: the 27.007/27.005 part every dialect shares, power via
PWRKEY, registration, PDU-mode SMS, and the faults a tester can inject. Dialect classes
(dialects.py) add sockets, GNSS and their boot banner.

Everything runs in the device's host loop thread; replies are scheduled with clock.call_later
(delays from the datasheets), never sent by blocking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from urelief.sim.modem.network import Sms, SmsNetwork
from urelief.sms import pdu as pdus

EPOCH = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)  # device time 0 in network time
CTRL_Z, ESC = 0x1A, 0x1B


_T3_STEP_S = {0: 600, 1: 3600, 2: 36000, 3: 2, 4: 30, 5: 60, 6: 1152000}
_T2_STEP_S = {0: 2, 1: 60, 2: 360}


def timer3_ms(bits: str) -> float:
    """GPRS Timer 3 octet (3GPP 24.008 §10.5.7.4a), 8 bits as text -> ms (unit 7: deactivated)."""
    v = int(bits, 2)
    step = _T3_STEP_S.get(v >> 5)
    return float("inf") if step is None else (v & 31) * step * 1000.0


def timer2_ms(bits: str) -> float:
    """GPRS Timer 2 octet (3GPP 24.008 §10.5.7.4) -> ms (unit 7: deactivated)."""
    v = int(bits, 2)
    step = _T2_STEP_S.get(v >> 5)
    return float("inf") if step is None else (v & 31) * step * 1000.0


SIM_SMS_SLOTS = 50  # the emulated SIM's SMS store (+CPMS total)


@dataclass
class Faults:
    """Switches a tester flips (any time, from the host loop thread)."""

    no_answer: bool = False  # firmware hung: UART silent until power-cycled via PWRKEY
    slow_ms: float = 0.0  # added to every answer
    errors: dict[str, list[str]] = field(default_factory=dict)  # "AT+CSQ" -> ["+CME ERROR: 100"]
    no_sim: bool = False
    registration: str = "ok"  # "ok" | "denied" | "searching" (never registers)
    coverage: bool = True  # False: no network (a tunnel, a basement)
    data: bool = True  # False: SMS-only coverage: datagrams the modem takes never get through
    pwrkey_dead: bool = False  # PWRKEY pulses ignored
    # The next N datagrams from the server whose type byte (in clear, offset 1) is the key
    # vanish on the way down: {0x84: 2} loses the next two STAND_DOWNs.
    lose_downlinks: dict[int, int] = field(default_factory=dict)
    lost_downlinks: int = 0

    def loses(self, data: bytes) -> bool:
        t = data[1] if len(data) > 1 else None
        if self.lose_downlinks.get(t, 0) > 0:
            self.lose_downlinks[t] -= 1
            self.lost_downlinks += 1
            return True
        return False

    def error_for(self, cmd: str) -> str | None:
        for prefix, queue in self.errors.items():
            if cmd.upper().startswith(prefix.upper()) and queue:
                return queue.pop(0)
        return None


@dataclass
class Timing:
    """Datasheet / field figures, ms of device time."""

    at_ready_ms: float = 2000  # PWRKEY accepted -> first boot URC
    sim_ready_ms: float = 1500  # boot URC -> +CPIN: READY
    sms_ready_ms: float = 3000  # boot URC -> "SMS Ready"
    register_ms: float = 4000  # radio on + SIM ready -> registered (LTE-M attach: 2-10 s)
    answer_ms: float = 20  # a plain command's answer
    sms_submit_ms: float = 2500  # AT+CMGS data -> +CMGS (2-3 s on LTE-M)
    pdp_ms: float = 600  # context activation
    udp_send_ms: float = 80  # data accepted -> OK
    uplink_ms: float = 60  # radio latency each way (LTE-M RTT ~ 100-300 ms)
    gnss_ttff_ms: float = 30000  # cold start, open sky
    gnss_hot_ms: float = 2000  # hot start (SIM7080G: < 1 s open sky, a few s in the field)
    gnss_hot_for_ms: float = 2 * 3600_000  # ephemeris valid this long after the last fix
    # PSM (27.007 +CPSMS, 3GPP 24.301): after the last traffic the network releases the RRC
    # connection (its inactivity timer, operator-set: 10 s here), the active time T3324 runs, then
    # the module sleeps until T3412 (TAU) or a wake press. BG95 Hardware Design 3.4.2 and SIMCom
    # SIM7020 Hardware Design 5.3.4 (the SIM70x0 LPWA family): in PSM the module stays registered
    # but answers nothing; PWRKEY (BG95 also PON_TRIG) or the TAU timer wakes it. Woken, it answers
    # after psm_wake_ms (modelled as the UART-ready time of a boot, an upper bound) without a new
    # attach or PDN set-up.
    rrc_release_ms: float = 10000
    psm_wake_ms: float = 1800
    # Sleep mode by DTR (SIMCom AT+CSCLK=1, the A76xx/SIM7600 Cat-1 modules without PSM): DTR high
    # and the UART idle this long -> asleep, still paged (SMS, data arrive; RI pulses, the URC
    # waits); DTR low -> the UART answers again after dtr_wake_ms. SIMCom gives ~40 ms for the
    # DTR wake on its older modules (SIM802 Hardware Design 3.6.4); no A76xx figure was found, nor
    # for the idle time or the RI pulse: modelled values.
    sleep_idle_ms: float = 2000
    dtr_wake_ms: float = 40
    ri_pulse_ms: float = 120
    pwrkey_on_ms: float = 1000  # press at least this long to power on
    pwrkey_off_ms: float = 1200  # press at least this long to power off
    power_down_ms: float = 1800  # off press -> really off (SIM7000 family Toff(uart) 1.8-6.9 s)


class ModemEmulator:
    """A modem module: attach to a device with `attach(dev, uart_id, pwrkey_gpio)`."""

    name = "generic"
    boot_urcs = ("RDY",)  # sent when AT-ready
    late_boot_urcs = ("SMS Ready",)  # sent at sms_ready_ms
    act = 7  # E-UTRAN; 9 = NB-S1
    prompt = b"\r\n> "

    def __init__(self, sms_network: SmsNetwork | None = None, msisdn: str = "+821012345678",
                 timing: Timing | None = None, position=(37.5665, 126.9780, 38.0),
                 resolve: dict[str, tuple[str, int]] | None = None):
        self.sms_net = sms_network or SmsNetwork()
        self.msisdn = msisdn
        self.t = timing or Timing()
        self.faults = Faults()
        self.position = position
        self.resolve = resolve or {}  # host name -> real (ip, port) on loopback
        self.clock = None
        self.uart = None
        self.on = False
        self.log: list[tuple[float, str, str]] = []  # (t_ms, "rx"/"tx", text)
        self.boots = 0
        self._press_t: float | None = None
        self._press_woke = False
        self.shutting = False  # between a PWRKEY off press and the module really off
        self._epoch = 0  # bumps on every power change: stale timers check it and do nothing
        self.storage: dict[int, tuple[int, bytes]] = {}  # SIM SMS store, index -> (stat, pdu)
        self.radio_at: float | None = None  # device ms of the last datagram or SMS on the air
        self._reset_state()

    # ------------------------------------------------------------------ wiring

    def attach(self, dev, uart_id: int = 1, pwrkey_gpio: int | None = 41, powered: bool = False):
        self.clock = dev.clock
        self.uart = dev.uart(uart_id)
        self.uart.attach(self)
        if pwrkey_gpio is not None:
            dev.pin(pwrkey_gpio).on_change(self.on_pwrkey)
        self.sms_net.attach(self.msisdn, self, self.clock)
        if powered:
            self._power_on(at_ready_ms=0)
        return self

    def _reset_state(self) -> None:
        self.rx = bytearray()
        self.echo = True
        self.cmee = 0
        self.cmgf = 0
        self.cnmi_mt = 0
        self.reg_urc = {"CREG": 0, "CGREG": 0, "CEREG": 0}
        self.cfun = 1
        self.ready = False
        self.sim_ready = False
        self.stat = 0  # 27.007 <stat>
        self.mr = 0
        self.pending: tuple | None = None  # collecting data after "> ": (kind, n, args)
        self.psm = None
        self.edrx = None
        self.psm_urc = False  # +CPSMSTATUS=1 (SIM7080): ENTER PSM / EXIT PSM reported
        self.asleep = False  # in PSM: radio off, UART deaf, unreachable for downlinks
        self.psm_entries = 0
        self._activity = 0  # bumps on every traffic: a stale idle timer sees it and does nothing
        self.dialect_reset()

    def dialect_reset(self) -> None:
        pass

    # ------------------------------------------------------------------ power

    def on_pwrkey(self, level: int, t_ms: float) -> None:
        """PWRKEY asserted (1) / released (0). SIMCom/Quectel: a press of the right length toggles;
        in PSM a press wakes the module instead."""
        if self.faults.pwrkey_dead:
            return
        if level and self.on and self.asleep:
            self._press_t = t_ms
            self._press_woke = True  # this press wakes; its release does not switch off
            self.wake()
            return
        if level:
            if self.shutting:
                return  # still shutting down: the key is not looked at
            self._press_t = t_ms
            if not self.on:
                ep = self._epoch
                self.clock.call_later(self.t.pwrkey_on_ms, lambda: self._press_held(ep))
        elif self._press_t is not None:
            held = t_ms - self._press_t
            self._press_t = None
            if self._press_woke:  # the press that switched the module on does not switch it off
                self._press_woke = False
            elif self.on and not self.shutting and held >= self.t.pwrkey_off_ms:
                self._power_down()

    def _press_held(self, ep: int) -> None:
        if ep == self._epoch and self._press_t is not None and not self.on:
            self._press_woke = True
            self._power_on()

    quiet_boot = False  # this boot prints no boot URCs (reboot(announce=False))

    def _power_on(self, at_ready_ms: float | None = None) -> None:
        self.quiet_boot = False
        self._epoch += 1
        self.on = True
        self.boots += 1
        self.faults.no_answer = False
        self._reset_state()
        self._later(self.t.at_ready_ms if at_ready_ms is None else at_ready_ms, self._boot_done)

    def _power_down(self) -> None:
        """PWRKEY off: log off the network, announce it, go dark power_down_ms later."""
        self._epoch += 1
        self.send_urc("NORMAL POWER DOWN")
        self.ready = False
        self.shutting = True

        def off():
            self.shutting = False
            self.power_off()

        self.clock.call_later(self.t.power_down_ms, off)

    def dialect_power_off(self) -> None:
        pass

    def reboot(self, announce: bool = True) -> None:
        """Fault: the module resets by itself (a brown-out on its supply, its own watchdog) and
        comes back with its defaults (echo on, no URC routing, no data context). announce=False:
        it prints no boot lines at all (on autobaud a SIMCom module sends no "RDY" before it has
        seen an AT, SIM7080 AT manual AT+IPR); only its echo, back on, gives it away."""
        self._power_on()
        self.quiet_boot = not announce

    def power_off(self) -> None:
        self._epoch += 1
        self.on = False
        self.ready = False
        self.dialect_power_off()

    def _boot_done(self) -> None:
        self.ready = True
        self._later(self.t.sim_ready_ms, self._sim_up)
        if self.quiet_boot:
            return
        for u in self.boot_urcs:
            self.send_urc(u)
        self._later(self.t.sms_ready_ms, lambda: [self.send_urc(u) for u in self.late_boot_urcs])

    def _sim_up(self) -> None:
        if self.faults.no_sim:
            return
        self.sim_ready = True
        if not self.quiet_boot:
            self.send_urc("+CPIN: READY")
        self._start_registration()

    def _start_registration(self) -> None:
        if not (self.sim_ready and self.cfun == 1):
            return
        self._set_stat(2)
        self._later(self.t.register_ms, self._registration_result)

    def _registration_result(self) -> None:
        f = self.faults
        if not f.coverage or f.registration == "searching" or self.cfun != 1:
            return
        self._set_stat(3 if f.registration == "denied" else 1)

    def set_coverage(self, ok: bool) -> None:
        """Fault: no-coverage window starts (False) / ends (True)."""
        self.faults.coverage = ok
        if not self.on or not self.sim_ready:
            return
        if not ok:
            self._set_stat(2)
            self.coverage_lost()
        else:
            self._later(self.t.register_ms / 2, self._registration_result)

    def coverage_lost(self) -> None:
        pass

    def _set_stat(self, stat: int) -> None:
        if stat == self.stat:
            return
        self.stat = stat
        for name, n in self.reg_urc.items():
            if n:
                self.send_urc(f"+{name}: " + self._reg_fields(stat, n))

    def _reg_fields(self, stat: int, n: int) -> str:
        if n >= 2 and stat in (1, 5):
            return f'{stat},"1A2B","01ABCDEF",{self.act}'
        return str(stat)

    @property
    def registered(self) -> bool:
        return self.on and self.stat in (1, 5) and self.faults.coverage

    @property
    def reachable(self) -> bool:
        """Registered and awake: the network can deliver to it now."""
        return self.registered and not self.asleep

    # ------------------------------------------------------------------ PSM

    def psm_timers_ms(self) -> tuple[float, float] | None:
        """(T3412 TAU, T3324 active) from the +CPSMS setting, ms; None when PSM is off."""
        if not self.psm:
            return None
        a = [x.strip().strip('"') for x in self.psm.split(",")]
        if a[0] != "1" or len(a) < 5:
            return None
        return timer3_ms(a[3]), timer2_ms(a[4])

    def activity(self) -> None:
        """Traffic (a command, an uplink, a downlink): the idle countdown to PSM starts again."""
        self._activity += 1
        timers = self.psm_timers_ms()
        if timers is None or self.asleep:
            return
        n = self._activity
        self._later(self.t.rrc_release_ms + timers[1],
                    lambda: self._enter_psm() if n == self._activity else None)

    def _enter_psm(self) -> None:
        if not self.registered or self.pending:
            return
        if self.psm_urc:
            self.send_urc("+CPSMSTATUS: ENTER PSM")
        self.asleep = True
        self.psm_entries += 1
        tau = self.psm_timers_ms()[0]
        n = self._activity
        self._later(tau, lambda: self.wake() if n == self._activity and self.asleep else None)

    def wake(self) -> None:
        """Out of PSM (a press or the TAU timer): answering again after psm_wake_ms."""
        if not self.asleep:
            return

        def up():
            self.asleep = False
            if self.psm_urc:
                self.send_urc("+CPSMSTATUS: EXIT PSM")
            self.activity()

        self._activity += 1
        self._later(self.t.psm_wake_ms, up)

    # ------------------------------------------------------------------ UART

    def _later(self, ms: float, fn) -> None:
        ep = self._epoch
        self.clock.call_later(ms, lambda: fn() if ep == self._epoch and self.on else None)

    def send(self, data: bytes) -> None:
        if self.on:
            self.log.append((self.clock.now_ms(), "tx", data.decode("latin-1")))
            self.uart.send(data)

    def send_urc(self, line: str) -> None:
        self.send(b"\r\n" + line.encode("latin-1") + b"\r\n")

    def reply(self, *lines: str | bytes, final: str = "OK", delay_ms: float | None = None) -> None:
        out = b""
        for x in lines:
            out += b"\r\n" + (x if isinstance(x, bytes) else x.encode("latin-1")) + b"\r\n"
        if final:
            out += b"\r\n" + final.encode() + b"\r\n"
        d = (self.t.answer_ms if delay_ms is None else delay_ms) + self.faults.slow_ms
        self._later(d, lambda: self.send(out))

    def error(self, code: int | None = None, cms: bool = False, delay_ms: float | None = None):
        if code is None or (not cms and self.cmee == 0):
            self.reply(final="ERROR", delay_ms=delay_ms)
        else:
            self.reply(final=f"+{'CMS' if cms else 'CME'} ERROR: {code}", delay_ms=delay_ms)

    def garbage(self, data: bytes = b"\x00\xff\xfe\x13 ~~\x80\x81") -> None:
        """Fault: line noise on the UART."""
        self.send(data)

    def on_device_tx(self, data: bytes) -> None:
        if not self.on:
            return
        self.log.append((self.clock.now_ms(), "rx", data.decode("latin-1")))
        self.rx += data
        while self.rx:
            if self.pending:
                if not self._collect():
                    return
                continue
            i = self.rx.find(b"\r")
            if i < 0:
                if len(self.rx) > 2048:
                    self.rx.clear()
                return
            raw = bytes(self.rx[:i])
            del self.rx[:i + 1]
            if self.rx[:1] == b"\n":
                del self.rx[:1]
            line = raw.decode("latin-1").strip()
            if self.echo and self.ready and not self.faults.no_answer and not self.deaf():
                self.send(raw + b"\r")
            if line:
                self._command(line)

    def _collect(self) -> bool:
        kind, n, args = self.pending
        if kind == "sms":
            end = -1
            for k, b in enumerate(self.rx):
                if b in (CTRL_Z, ESC):
                    end = k
                    break
            if end < 0:
                return False
            data, term = bytes(self.rx[:end]), self.rx[end]
            del self.rx[:end + 1]
            self.pending = None
            if term == ESC:
                self.reply()  # 27.005: ESC cancels the send
            else:
                self._cmgs_data(n, data)
            return True
        if len(self.rx) < n:
            return False
        data = bytes(self.rx[:n])
        del self.rx[:n]
        self.pending = None
        self.socket_data(args, data)
        return True

    def ask_data(self, kind: str, n: int, args=None) -> None:
        """Answer "> " and take the next n bytes (socket) or up to Ctrl-Z (sms)."""
        self.pending = (kind, n, args)
        self._later(self.t.answer_ms + self.faults.slow_ms, lambda: self.send(self.prompt))

    # ------------------------------------------------------------------ commands

    def deaf(self) -> bool:
        """The UART takes nothing in: in PSM (or, by dialect, asleep by DTR)."""
        return self.asleep

    def _command(self, line: str) -> None:
        if not self.ready or self.faults.no_answer or self.deaf():
            return
        self.activity()
        if not line.upper().startswith("AT"):
            return self.error()
        err = self.faults.error_for(line)
        if err:
            return self.reply(final=err)
        body = line[2:]
        if body.upper().startswith("E") and body[1:] in ("0", "1", ""):
            self.echo = body[1:] == "1"
            return self.reply()
        if body == "" or body.upper() in ("&W", "Z", "&F"):
            return self.reply()
        if self.dialect_command(body):
            return
        m = re.match(r"^\+?([A-Za-z]+)(=\?|\?|=)?(.*)$", body)
        if not m:
            return self.error()
        name, op, arg = m.group(1).upper(), m.group(2) or "", m.group(3)
        handler = getattr(self, f"at_{name.lower()}", None)
        if handler is None:
            return self.error(4)  # operation not supported
        handler(op, arg)

    def dialect_command(self, body: str) -> bool:
        return False

    def need_sim(self) -> bool:
        if self.faults.no_sim:
            self.error(10)  # SIM not inserted
            return False
        if not self.sim_ready:
            self.error(14)  # SIM busy
            return False
        return True

    # 27.007 ------------------------------------------------------------------
    def at_i(self, op, arg):
        self.reply("SIMCOM " + self.name.upper(), "Revision: emulated")

    def at_cgmm(self, op, arg):
        self.reply(self.name.upper())

    def at_cgsn(self, op, arg):
        self.reply("86" + self.msisdn[-13:].rjust(13, "0"))

    def at_cimi(self, op, arg):
        if self.need_sim():
            self.reply("450051234567890")

    def at_cmee(self, op, arg):
        if op == "=":
            self.cmee = int(arg or 0)
        self.reply(*([f"+CMEE: {self.cmee}"] if op == "?" else []))

    def at_cpin(self, op, arg):
        if op == "?":
            if self.faults.no_sim:
                return self.error(10)
            if not self.sim_ready:
                return self.error(14)
            return self.reply("+CPIN: READY")
        self.reply()

    def at_cfun(self, op, arg):
        if op == "?":
            return self.reply(f"+CFUN: {self.cfun}")
        parts = arg.split(",")
        if len(parts) > 1 and parts[1] == "1":  # AT+CFUN=1,1: reset
            self.reply(delay_ms=50)
            self._later(200, self.reboot)
            return
        self.cfun = int(parts[0] or 1)
        if self.cfun == 1:
            self._start_registration()
        else:
            self._set_stat(0)
        self.reply(delay_ms=300)

    def _at_reg(self, name, op, arg):
        if op == "=":
            self.reg_urc[name] = int(arg or 0)
            return self.reply()
        if op == "?":
            n = self.reg_urc[name]
            return self.reply(f"+{name}: {n}," + self._reg_fields(self.stat, n))
        self.reply()

    def at_creg(self, op, arg):
        self._at_reg("CREG", op, arg)

    def at_cgreg(self, op, arg):
        self._at_reg("CGREG", op, arg)

    def at_cereg(self, op, arg):
        self._at_reg("CEREG", op, arg)

    def at_csq(self, op, arg):
        self.reply("+CSQ: 18,99" if self.registered else "+CSQ: 99,99")

    def at_cesq(self, op, arg):
        self.reply("+CESQ: 99,99,255,255,20,45" if self.registered else "+CESQ: 99,99,255,255,255,255")

    def at_cops(self, op, arg):
        if op == "?":
            return self.reply('+COPS: 0,2,"45005",7' if self.registered else "+COPS: 0")
        self.reply()

    def at_cclk(self, op, arg):
        now = EPOCH + timedelta(milliseconds=self.clock.now_ms())
        self.reply(now.strftime('+CCLK: "%y/%m/%d,%H:%M:%S+00"'))

    def at_cgdcont(self, op, arg):
        self.reply()

    def at_cpsms(self, op, arg):
        if op == "=":
            self.psm = arg
            self.activity()  # the idle countdown runs with the new timers
        self.reply(*([f"+CPSMS: {self.psm or 0}"] if op == "?" else []))

    def at_cedrxs(self, op, arg):
        if op == "=":
            self.edrx = arg
        self.reply()

    def at_cpowd(self, op, arg):  # SIMCom LPWA: NORMAL POWER DOWN, then dark
        self._power_down()

    def at_cpof(self, op, arg):  # SIMCom Cat-1: OK, then dark
        self.reply()
        self._later(100, self._power_down)

    def at_qpowd(self, op, arg):  # Quectel: OK, then POWERED DOWN
        self.reply()
        self._later(100, self._power_down)

    # 27.005 ------------------------------------------------------------------
    def at_cmgf(self, op, arg):
        if op == "=":
            self.cmgf = int(arg or 0)
        self.reply(*([f"+CMGF: {self.cmgf}"] if op == "?" else []))

    def at_cnmi(self, op, arg):
        if op == "=":
            parts = (arg.split(",") + ["0"] * 5)[:5]
            self.cnmi_mt = int(parts[1] or 0)
        self.reply()

    def at_csms(self, op, arg):
        self.reply()

    def at_cpms(self, op, arg):
        n = len(self.storage)
        m = SIM_SMS_SLOTS
        self.reply(f'+CPMS: "SM",{n},{m},"SM",{n},{m},"SM",{n},{m}')

    def at_cmgs(self, op, arg):
        if op != "=" or self.cmgf != 0 or not arg.strip().isdigit():
            return self.error(302, cms=True)  # operation not allowed
        if not self.need_sim():
            return
        self.ask_data("sms", int(arg))

    def _cmgs_data(self, tpdu_len: int, hexdata: bytes) -> None:
        try:
            pdu = bytes.fromhex(hexdata.decode("latin-1").strip())
            if len(pdu) - pdu[0] - 1 != tpdu_len:
                raise pdus.PduError("length")
            sub = pdus.decode_submit(pdu)
        except (ValueError, IndexError):
            return self.error(304, cms=True)  # invalid PDU mode parameter
        if not self.registered or not self.rf_free():
            return self.error(331, cms=True, delay_ms=self.t.sms_submit_ms)  # no network service
        self.mr = (self.mr + 1) % 256
        mr = self.mr
        sms = Sms(self.msisdn, sub.number, sub.body, sub.udh)
        self.radio_at = self.clock.now_ms()
        self._later(self.t.sms_submit_ms, lambda: self.sms_net.submit(sms))
        self.reply(f"+CMGS: {mr}", delay_ms=self.t.sms_submit_ms)

    def rf_free(self) -> bool:
        """False while something else holds the radio (SIM7080: GNSS)."""
        return True

    def store_sms(self, sender: str, body: str | bytes, udh: bytes = b"") -> int:
        """An SMS already on the SIM (arrived while the board was off). -> its index."""
        pdu = pdus.encode_deliver(sender, body, self.utc_now() if self.clock else None, udh=udh)
        idx = next((i for i in range(SIM_SMS_SLOTS) if i not in self.storage), None)
        if idx is None:
            raise ValueError(f"the SIM's {SIM_SMS_SLOTS} SMS slots are full")
        self.storage[idx] = (0, pdu)
        return idx

    def sms_delivered(self, sms: Sms) -> None:
        """From the SMS centre: store or route to the TE per AT+CNMI (27.005 §3.4.1). A SIM
        store that is full refuses it (memory capacity exceeded, 23.040 TP-FCS D0) and the
        SMSC keeps it and tries again later, as it does for a handset out of reach."""
        full = self.cnmi_mt != 2 and len(self.storage) >= SIM_SMS_SLOTS
        if full or not (self.on and self.sim_ready and self.reachable):
            self.clock.call_later(5000, lambda: self.sms_delivered(sms))  # SMSC retries later
            return
        self.activity()
        self.radio_at = self.clock.now_ms()
        if self.cnmi_mt == 2:
            pdu = pdus.encode_deliver(sms.sender, sms.body, self.utc_now(), udh=sms.udh)
            tpdu = len(pdu) - pdu[0] - 1
            self.send(f"\r\n+CMT: ,{tpdu}\r\n{pdu.hex().upper()}\r\n".encode())
            return
        idx = self.store_sms(sms.sender, sms.body, sms.udh)
        if self.cnmi_mt == 1:
            self.send_urc(f'+CMTI: "SM",{idx}')

    def at_cmgr(self, op, arg):
        idx = int(arg or -1) if arg.strip().lstrip("-").isdigit() else -1
        if idx not in self.storage:
            return self.error(321, cms=True)  # invalid memory index
        stat, pdu = self.storage[idx]
        self.storage[idx] = (1, pdu)  # now read
        self.reply(f"+CMGR: {stat},,{len(pdu) - pdu[0] - 1}", pdu.hex().upper())

    def at_cmgd(self, op, arg):
        idx = int(arg.split(",")[0] or -1)
        self.storage.pop(idx, None)
        self.reply()

    def at_cmgl(self, op, arg):
        lines = []
        for idx, (stat, pdu) in sorted(self.storage.items()):
            lines += [f"+CMGL: {idx},{stat},,{len(pdu) - pdu[0] - 1}", pdu.hex().upper()]
        self.reply(*lines)

    # ------------------------------------------------------------------ for dialects

    def socket_data(self, args, data: bytes) -> None:
        raise NotImplementedError

    def utc_now(self) -> datetime:
        return EPOCH + timedelta(milliseconds=self.clock.now_ms())

    def lookup(self, host: str, port: int) -> tuple[str, int]:
        return self.resolve.get(host, (host, port))
