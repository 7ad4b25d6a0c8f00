"""The modules: what differs between SIMCom SIM7080G, SIMCom A7670/SIM7600 and Quectel BG95 —
boot banner, PWRKEY timing, socket commands and GNSS commands. Command syntax and answers follow
each vendor's AT manual; timings their hardware design manuals."""

from __future__ import annotations

from urelief.sim.modem.emulator import ModemEmulator, Timing
from urelief.sim.modem.network import UdpLink
from urelief.sim.modem.voice import Voice


def _args(s: str) -> list[str]:
    """Comma-separated AT arguments, quotes removed (commas inside quotes kept)."""
    out, cur, quoted = [], "", False
    for ch in s:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    out.append(cur.strip())
    return out


class _Radio(ModemEmulator):
    """One UDP socket over a real loopback socket, and a GNSS receiver with a time to first fix."""

    gnss_signal = True  # False: no sky, or the active antenna unpowered

    def dialect_reset(self) -> None:
        self.sock_open = False
        self.remote: tuple[str, int] | None = None
        self.rx_queue: list[bytes] = []
        self.gnss_on_at: float | None = None
        self.gnss_fix_at: float | None = None  # the last fix given (power-off forgets it)
        self.pdp = False

    def dialect_power_off(self) -> None:
        self.dialect_reset()

    def coverage_lost(self) -> None:
        self.pdp = False

    def udp_out(self, data: bytes, addr: tuple[str, int] | None = None) -> bool:
        addr = addr or self.remote
        if not (self.registered and self.pdp and self.rf_free() and addr):
            return False
        if getattr(self, "link", None) is None:
            self.link = UdpLink(self.clock, self._udp_in)
        real = self.lookup(*addr)
        self.activity()
        self.radio_at = self.clock.now_ms()
        if self.faults.data:
            self._later(self.t.uplink_ms, lambda: self.link.send(real, data))
        return True

    def _udp_in(self, data: bytes) -> None:
        if not (self.on and self.sock_open and self.reachable and self.faults.data):
            return  # the network drops it: nowhere to deliver (off, no socket, PSM, SMS-only)
        if self.faults.loses(data):
            return  # lost on the way down (a tester's fault)
        self.activity()
        def arrive():
            self.radio_at = self.clock.now_ms()
            self.rx_queue.append(data)
            self.data_ready()
        self._later(self.t.uplink_ms, arrive)

    def data_ready(self) -> None:
        raise NotImplementedError

    def gnss_fixed(self) -> bool:
        """A fix gnss_ttff_ms after GNSS power-on (cold), gnss_hot_ms when the module had one
        within gnss_hot_for_ms (ephemeris kept while powered); never without sky or antenna."""
        if self.gnss_on_at is None or not self.gnss_signal:
            return False
        now = self.clock.now_ms()
        last = self.gnss_fix_at
        hot = last is not None and self.gnss_on_at - last <= self.t.gnss_hot_for_ms
        if now - self.gnss_on_at < (self.t.gnss_hot_ms if hot else self.t.gnss_ttff_ms):
            return False
        self.gnss_fix_at = now
        return True

    def close(self) -> None:
        if getattr(self, "link", None) is not None:
            self.link.close()
            self.link = None


class Sim7080(_Radio):
    """SIMCom SIM7080G. Hardware Design: PWRKEY low >= 1 s on, >= 1.2 s off, UART ready ~1.8 s;
    off press -> UART off 1.8-6.9 s (SIM7000-family figure, modelled at its typical 1.8 s).
    GNSS and LTE share one RF path: while GNSS is powered the radio refuses to transmit."""

    name = "sim7080"
    boot_urcs = ("RDY",)
    late_boot_urcs = ("SMS Ready",)
    act = 7  # LTE-M reports E-UTRAN (27.007 <AcT> 7); NB-IoT would be 9

    def __init__(self, *a, **kw):
        kw.setdefault("timing", Timing(at_ready_ms=1800, pwrkey_on_ms=1000, pwrkey_off_ms=1200))
        super().__init__(*a, **kw)

    def rf_free(self) -> bool:
        return self.gnss_on_at is None

    def dialect_command(self, body: str) -> bool:
        u = body.upper()
        if u.startswith(("+CNMP", "+CMNB", "+CSCLK", "+CACFG", "+CNETLIGHT")):
            self.reply()
        elif u.startswith("+CPSMSTATUS="):  # PSM entry/exit URCs on (SIM7080 AT manual)
            self.psm_urc = body.strip().endswith("1")
            self.reply()
        elif u == "+CNACT?":
            ip = "10.64.0.7" if self.pdp else "0.0.0.0"
            self.reply(*[f'+CNACT: {i},{int(self.pdp and i == 0)},"{ip if i == 0 else "0.0.0.0"}"'
                         for i in range(4)])
        elif u.startswith("+CNACT="):
            a = _args(body[7:])
            on = a[1] == "1"
            self.reply()
            if on and self.registered and self.rf_free():
                self._later(self.t.pdp_ms, lambda: (setattr(self, "pdp", True),
                                                     self.send_urc("+APP PDP: 0,ACTIVE")))
            elif on:
                self._later(self.t.pdp_ms * 5, lambda: self.send_urc("+APP PDP: 0,DEACTIVE"))
            else:
                self.pdp = False
                self._later(self.t.pdp_ms, lambda: self.send_urc("+APP PDP: 0,DEACTIVE"))
        elif u.startswith("+CAOPEN="):  # <cid>,<pdp>,"UDP","host",port
            a = _args(body[8:])
            if not self.pdp or not self.rf_free():
                self.reply(f"+CAOPEN: {a[0]},1", delay_ms=500)
            else:
                self.remote = (a[3], int(a[4]))
                self.sock_open = True
                self.reply(f"+CAOPEN: {a[0]},0", delay_ms=150)
        elif u.startswith("+CASEND="):  # <cid>,<len>
            a = _args(body[8:])
            if not self.sock_open:
                self.error()
            else:
                self.ask_data("udp", int(a[1]))
        elif u.startswith("+CARECV="):  # <cid>,<readlen>
            a = _args(body[8:])
            data = self.rx_queue.pop(0)[: int(a[1])] if self.rx_queue else b""
            line = b"+CARECV: %d" % len(data) + (b"," + data if data else b"")
            self.reply(line)
        elif u.startswith("+CACLOSE="):
            self.sock_open = False
            self.reply()
        elif u.startswith("+CGNSPWR="):
            on = body[9:].strip() == "1"
            if on and self.gnss_on_at is None:
                self.gnss_on_at = self.clock.now_ms()
            elif not on:
                self.gnss_on_at = None
            self.reply()
        elif u == "+CGNSPWR?":
            self.reply(f"+CGNSPWR: {int(self.gnss_on_at is not None)}")
        elif u == "+CGNSINF":
            self.reply(self._cgnsinf())
        else:
            return False
        return True

    def socket_data(self, args, data: bytes) -> None:
        if self.udp_out(data):
            self.reply(delay_ms=self.t.udp_send_ms)
        else:
            self.error(delay_ms=self.t.udp_send_ms)

    def data_ready(self) -> None:
        self.send_urc("+CADATAIND: 0")

    def _cgnsinf(self) -> str:
        """21 fields (SIM7080 manual): run,fix,UTC,lat,lon,alt,speed km/h,course,mode,,HDOP,PDOP,
        VDOP,,in view,GPS used,GLONASS used,,C/N0 max,HPA,VPA."""
        if self.gnss_on_at is None:
            return "+CGNSINF: 0" + "," * 20
        if not self.gnss_fixed():
            return "+CGNSINF: 1,0," + self.utc_now().strftime("%Y%m%d%H%M%S.000") + "," * 18
        lat, lon, alt = self.position
        t = self.utc_now().strftime("%Y%m%d%H%M%S.000")
        return f"+CGNSINF: 1,1,{t},{lat:.6f},{lon:.6f},{alt:.3f},0.00,0.0,1,,0.9,1.2,0.8,,12,8,3,,38,4.5,6.0"


class A7670(Voice, _Radio):
    """SIMCom A7670 / SIM7600 (LTE Cat-1). Hardware Design: PWRKEY low >= 50 ms on (500 ms typ),
    >= 2.5 s off; "*ATREADY" ~ 9 s after power on. GNSS runs beside LTE; voice over VoLTE
    (voice.py)."""

    name = "a7670"
    boot_urcs = ("*ATREADY: 1",)
    late_boot_urcs = ("SMS DONE", "PB DONE")

    def __init__(self, *a, **kw):
        kw.setdefault("timing", Timing(at_ready_ms=9000, sim_ready_ms=800, sms_ready_ms=2500,
                                       pwrkey_on_ms=50, pwrkey_off_ms=2500, power_down_ms=2500,
                                       gnss_ttff_ms=35000))
        super().__init__(*a, **kw)

    def dialect_reset(self) -> None:
        super().dialect_reset()
        self.voice_reset()
        self.rx_manual = False
        self.csclk = False  # AT+CSCLK=1: sleep when DTR is high and the UART idle
        self.sleeping = False
        self.held_urcs: list[bytes] = []
        self.sleeps = 0
        self._uart_n = 0  # bumps on UART traffic and DTR changes: stale sleep timers do nothing

    # ------------------------------------------------------------------ sleep by DTR

    def attach_sleep_lines(self, dev, dtr_gpio: int, ri_gpio: int | None = None) -> None:
        """The board's DTR (the host's output) and RI (the module's, active low) lines."""
        self.dtr = dev.pin(dtr_gpio).level
        dev.pin(dtr_gpio).on_change(self.on_dtr)
        self.ri = dev.pin(ri_gpio) if ri_gpio is not None else None

    dtr = 0
    ri = None

    def on_dtr(self, level: int, t_ms: float) -> None:
        self.dtr = level
        self._uart_idle()
        if not level and self.sleeping:
            def awake():
                self.sleeping = False
                held, self.held_urcs = self.held_urcs, []
                for data in held:
                    self.send(data)
                self._uart_idle()
            self._later(self.t.dtr_wake_ms, awake)

    def deaf(self) -> bool:
        return self.asleep or self.sleeping

    def _uart_idle(self) -> None:
        self._uart_n += 1
        n = self._uart_n
        if self.csclk and self.dtr:
            self._later(self.t.sleep_idle_ms, lambda: self._sleep() if n == self._uart_n else None)

    def _sleep(self) -> None:
        if self.csclk and self.dtr and not self.pending and not self.sleeping:
            self.sleeping = True
            self.sleeps += 1

    def on_device_tx(self, data: bytes) -> None:
        super().on_device_tx(data)
        if not self.sleeping:
            self._uart_idle()

    def send(self, data: bytes) -> None:
        if self.sleeping and self.on:  # paged while asleep: RI pulses, the line waits for DTR
            self.held_urcs.append(data)
            if self.ri is not None:
                self.ri.drive(0)
                self.clock.call_later(self.t.ri_pulse_ms, lambda: self.ri.drive(None))
            return
        super().send(data)

    def dialect_command(self, body: str) -> bool:
        u = body.upper()
        if u.startswith("+CSCLK="):
            self.csclk = body[7:].strip() == "1"
            self.reply()
            self._uart_idle()
        elif u == "+NETOPEN?":
            self.reply(f"+NETOPEN: {int(self.pdp)}")
        elif u == "+NETOPEN":
            if self.pdp:
                self.reply("+IP ERROR: Network is already opened", final="ERROR")
                return True
            self.reply()
            ok = self.registered
            def opened():
                self.pdp = ok
                self.send_urc(f"+NETOPEN: {0 if ok else 1}")
            self._later(self.t.pdp_ms if ok else self.t.pdp_ms * 5, opened)
        elif u == "+NETCLOSE":
            self.pdp = self.sock_open = False
            self.reply("+NETCLOSE: 0")
        elif u.startswith("+CIPRXGET=1"):
            self.rx_manual = True
            self.reply()
        elif u.startswith("+CIPRXGET=2"):  # 2,<link>,<len>
            a = _args(body[10:])
            data = self.rx_queue.pop(0)[: int(a[2])] if self.rx_queue else b""
            head = f"+CIPRXGET: 2,{a[1]},{len(data)},0".encode()
            self.reply(head + b"\r\n" + data)
        elif u.startswith("+CIPOPEN="):  # <link>,"UDP",,,<localport>
            a = _args(body[9:])
            self.reply()
            ok = self.pdp
            self.sock_open = ok
            self._later(150, lambda: self.send_urc(f"+CIPOPEN: {a[0]},{0 if ok else 4}"))
        elif u.startswith("+CIPSEND="):  # <link>,<len>,"host",port
            a = _args(body[9:])
            if not self.sock_open:
                self.error()
            else:
                self.ask_data("udp", int(a[1]), (a[0], a[2], int(a[3])))
        elif u.startswith("+CIPCLOSE="):
            self.sock_open = False
            self.reply()
            self._later(100, lambda: self.send_urc(f"+CIPCLOSE: {body[10:].strip()},0"))
        elif u.startswith("+CGPS="):
            on = body[6:].split(",")[0].strip() == "1"
            if on and self.gnss_on_at is None:
                self.gnss_on_at = self.clock.now_ms()
            self.reply()
            if not on and self.gnss_on_at is not None:
                self.gnss_on_at = None
                self._later(300, lambda: self.send_urc("+CGPS: 0"))
        elif u == "+CGNSSINFO":
            self.reply(self._cgnssinfo())
        else:
            return False
        return True

    def socket_data(self, args, data: bytes) -> None:
        link, host, port = args
        if self.udp_out(data, (host, port)):
            self.reply(delay_ms=self.t.udp_send_ms)
            self._later(self.t.udp_send_ms + 20,
                        lambda: self.send_urc(f"+CIPSEND: {link},{len(data)},{len(data)}"))
        else:
            self.error(delay_ms=self.t.udp_send_ms)

    def data_ready(self) -> None:
        if self.rx_manual:
            self.send_urc("+CIPRXGET: 1,0")

    def _cgnssinfo(self) -> str:
        """SIM7600 16 fields: mode,GPS SVs,GLONASS SVs,BeiDou SVs,lat ddmm.mmmmmm,N/S,
        lon dddmm.mmmmmm,E/W,ddmmyy,hhmmss.s,alt,speed knots,course,PDOP,HDOP,VDOP."""
        if not self.gnss_fixed():
            return "+CGNSSINFO: " + "," * 15
        lat, lon, alt = self.position
        def ddmm(v: float, width: int) -> str:
            d = int(abs(v))
            return f"{d:0{width}d}{(abs(v) - d) * 60:09.6f}"
        now = self.utc_now()
        return (f"+CGNSSINFO: 2,08,03,02,{ddmm(lat, 2)},{'N' if lat >= 0 else 'S'},"
                f"{ddmm(lon, 3)},{'E' if lon >= 0 else 'W'},{now:%d%m%y},{now:%H%M%S}.0,"
                f"{alt:.1f},0.0,0.0,1.3,0.9,0.9")


class Bg95(_Radio):
    """Quectel BG95. Hardware Design: PWRKEY low 500-1000 ms on, 650-1500 ms off; RDY ~ 2.5 s,
    APP RDY later. GNSS and LTE are time-multiplexed on one RF."""

    name = "bg95"
    boot_urcs = ("RDY",)
    late_boot_urcs = ("APP RDY",)

    def __init__(self, *a, **kw):
        kw.setdefault("timing", Timing(at_ready_ms=2500, pwrkey_on_ms=500, pwrkey_off_ms=650,
                                       power_down_ms=1000))
        super().__init__(*a, **kw)

    def rf_free(self) -> bool:
        return self.gnss_on_at is None

    def dialect_command(self, body: str) -> bool:
        u = body.upper()
        if u.startswith("+QIACT="):
            if self.registered:
                self.pdp = True
                self.reply(delay_ms=self.t.pdp_ms)
            else:
                self.error(delay_ms=self.t.pdp_ms * 5)
        elif u.startswith("+QIOPEN="):  # ctx,conn,"UDP SERVICE","127.0.0.1",0,localport,0
            a = _args(body[8:])
            self.reply()
            ok = self.pdp
            self.sock_open = ok
            self._later(150, lambda: self.send_urc(f"+QIOPEN: {a[1]},{0 if ok else 566}"))
        elif u.startswith("+QISEND="):  # conn,len,"host",port
            a = _args(body[8:])
            self.ask_data("udp", int(a[1]), (a[2], int(a[3])))
        elif u.startswith("+QIRD="):
            data = self.rx_queue.pop(0) if self.rx_queue else b""
            host, port = self.remote or ("0.0.0.0", 0)
            self.reply(f'+QIRD: {len(data)},"{host}",{port}'.encode() + b"\r\n" + data)
        elif u.startswith("+QICLOSE="):
            self.sock_open = False
            self.reply()
        elif u == "+QGPS=1":
            self.gnss_on_at = self.clock.now_ms()
            self.reply()
        elif u == "+QGPSEND":
            self.gnss_on_at = None
            self.reply()
        elif u.startswith("+QGPSLOC"):
            if not self.gnss_fixed():
                self.error(516)  # +CME ERROR: 516 = not fixed now
                return True
            lat, lon, alt = self.position
            now = self.utc_now()
            self.reply(f"+QGPSLOC: {now:%H%M%S}.0,{lat:.5f},{lon:.5f},0.9,{alt:.1f},3,0.00,0.0,0.0,"
                       f"{now:%d%m%y},08")
        else:
            return False
        return True

    def socket_data(self, args, data: bytes) -> None:
        self.remote = args
        self.reply(final="SEND OK" if self.udp_out(data, args) else "SEND FAIL",
                   delay_ms=self.t.udp_send_ms)

    def data_ready(self) -> None:
        self.send_urc('+QIURC: "recv",0')


DIALECTS = {"sim7080": Sim7080, "a7670": A7670, "sim7600": A7670, "bg95": Bg95}


def make(dialect: str, **kw) -> ModemEmulator:
    return DIALECTS[dialect](**kw)
