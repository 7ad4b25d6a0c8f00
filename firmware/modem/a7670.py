"""SIMCom A7670 / SIM7600 (LTE Cat-1). Commands from the A76XX and SIM7500/SIM7600 AT manuals:
+NETOPEN / +CIPOPEN / +CIPSEND with manual receive (+CIPRXGET), GNSS with +CGPS / +CGNSSINFO,
voice (VoLTE) with ATD<n>; / ATA / AT+CHUP and the call URCs (VOICE CALL: BEGIN / END, RING with
+CLIP, NO CARRIER, BUSY, NO ANSWER). The terminal never makes a sound: loudspeaker volume and
ringer level are 0 (27.007 +CLVL, +CRSL) after every boot, the microphone unmuted (+CMUT=0)."""
import asyncio

from micropython import const

from modem import atlines
from modem.core import Modem, ModemError, gnss_answer

_LINK = const(0)
_NET_MS = const(30000)  # AT+NETOPEN: OK, then "+NETOPEN: 0"
_OPEN_MS = const(15000)
_SEND_MS = const(10000)
_RECV_MAX = const(1500)
_CALL_MS = const(20000)  # ATD / ATA / AT+CHUP: the A76XX manual's max response time is 20 s
_CALL_ENDS = ("VOICE CALL: END", "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE")


class A7670(Modem):
    name = "a7670"
    caps = ("gnss", "sms", "udp", "gnss_with_lte", "voice")
    # A7670 / SIM7600 Hardware Design: PWRKEY low >= 50 ms (typ 500 ms) on, >= 2.5 s off;
    # UART answers ~ 9-12 s after power on.
    pwrkey_on_ms = 500
    pwrkey_off_ms = 2800
    off_to_on_ms = 3000
    power_down_ms = 3000  # power-off press -> off: the emulated/typical 2.5 s, with margin
    boot_ms = 16000
    urc_prefixes = atlines.URC_PREFIXES + ("+NETOPEN:", "+CIPOPEN:", "+CIPSEND:", "+CIPRXGET:",
                                            "+IPCLOSE:", "+CIPEVENT:", "+CIPCLOSE:", "+CGPS:",
                                            "VOICE CALL:", "+CLIP:", "MISSED_CALL:")
    powd_cmd = "AT+CPOF"
    data_after = ("+CIPRXGET: 2,",)  # "+CIPRXGET: 2,<link>,<n>,<rest>" then <n> bytes
    apn = ""

    def __init__(self, reader, writer, pwrkey=None, log=print):
        super().__init__(reader, writer, pwrkey, log)
        self.net_evt = asyncio.Event()
        self.open_evt = asyncio.Event()
        self.open_result = None
        self.sock_open = False
        self.at.on("+NETOPEN:", self._on_netopen)
        self.at.on("+CIPOPEN:", self._on_cipopen)
        self.at.on("+CIPRXGET:", self._on_rx)
        self.at.on("+IPCLOSE:", self._on_close)
        self.at.on("+CIPEVENT:", self._on_netclosed)
        self.at.on("+CIPSEND:", self._on_sent)
        self.unsent = 0  # bytes the module accepted but could not send (+CIPSEND cnflen < reqlen)
        # Calls: on_call(kind, arg) with ('ring', caller number), ('connected', None),
        # ('ended', the line that said so); on_call returns True for a ring it takes. A ring
        # nobody takes is hung up at once (the terminal takes no other calls).
        self.on_call = None
        self.at.on("VOICE CALL: BEGIN", lambda line, _: self._call("connected", None))
        for end in _CALL_ENDS:
            self.at.on(end, lambda line, _: self._call("ended", line))
        self.at.on("+CLIP:", self._on_clip)

    async def dialect_init(self):
        if self.apn:
            await self.cmd('AT+CGDCONT=1,"IP","%s"' % self.apn)
        await self.cmd("AT+CLIP=1")  # caller id with every RING (27.007 7.18)
        await self.silence()

    # ------------------------------------------------------------------ voice

    async def silence(self):
        """Nothing audible: loudspeaker volume 0 (27.007 8.23), ringer level 0 (8.21); the
        microphone on (+CMUT=0, 8.24: it mutes the uplink voice, the centre's ears)."""
        await self.cmd("AT+CLVL=0")
        await self.cmd("AT+CRSL=0")
        await self.cmd("AT+CMUT=0")

    async def dial(self, number):
        """A voice call (the ';'): OK once dialled, then VOICE CALL: BEGIN when answered."""
        await self.cmd("ATD%s;" % number, None, _CALL_MS)

    async def answer(self):
        await self.cmd("ATA", None, _CALL_MS)

    async def hang_up(self):
        await self.cmd("AT+CHUP", None, _CALL_MS)

    def _call(self, kind, arg):
        if self.on_call is not None:
            return self.on_call(kind, arg)
        return False

    def _on_clip(self, line, _):
        """+CLIP: "<number>",<type>,... after RING (27.007 7.18)."""
        f = atlines.fields(line, atlines.after_colon(line))
        if not self._call("ring", f[0] if f else ""):
            asyncio.create_task(self._refuse())

    async def _refuse(self):
        try:
            await self.hang_up()
        except Exception as e:  # the ring ends by itself when the caller gives up
            self.log("a7670: call not refused: %r" % e)

    def dialect_reset(self):
        self.net_evt.clear()
        self.sock_open = False

    def _on_netopen(self, line, _):
        f = atlines.fields(line, atlines.after_colon(line))
        if f[0] == "0":
            self.net_evt.set()

    def _on_cipopen(self, line, _):
        f = atlines.fields(line, atlines.after_colon(line))
        self.open_result = f[1] if len(f) > 1 else "?"
        self.open_evt.set()

    def _on_close(self, line, _):
        self.sock_open = False

    def _on_netclosed(self, line, _):  # "+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY"
        self.net_evt.clear()
        self.sock_open = False

    def _on_sent(self, line, _):  # +CIPSEND: <link>,<reqSendLength>,<cnfSendLength>
        f = atlines.fields(line, atlines.after_colon(line))
        if len(f) > 2 and f[1] != f[2]:
            self.unsent += 1
            self.log("a7670: datagram not sent whole: %s" % line)

    def _on_rx(self, line, _):
        if line.startswith("+CIPRXGET: 1"):  # data waiting on a link (manual receive mode)
            asyncio.create_task(self._read_data())

    async def _read_data(self):
        await self._read_datagrams("AT+CIPRXGET=2,%d,%d" % (_LINK, _RECV_MAX), "+CIPRXGET:")

    async def _net_up(self):
        if self.net_evt.is_set():
            return
        lines = await self.cmd("AT+NETOPEN?", "+NETOPEN:")
        if lines and atlines.fields(lines[0], atlines.after_colon(lines[0]))[0] == "1":
            self.net_evt.set()
            return
        await self.cmd("AT+CIPRXGET=1")  # manual receive: "+CIPRXGET: 1,<link>" then read
        await self.cmd("AT+NETOPEN", None, _NET_MS)
        try:
            await asyncio.wait_for_ms(self.net_evt.wait(), _NET_MS)
        except asyncio.TimeoutError:
            raise ModemError("NETOPEN failed")

    async def udp_open(self, host, port):
        await self._net_up()
        if self.sock_open:
            await self.udp_close()
        self.host, self.port = host, port
        self.open_evt.clear()
        await self.cmd('AT+CIPOPEN=%d,"UDP",,,%d' % (_LINK, 5000 + _LINK), None, _OPEN_MS)
        try:
            await asyncio.wait_for_ms(self.open_evt.wait(), _OPEN_MS)
        except asyncio.TimeoutError:
            raise ModemError("CIPOPEN no result")
        if self.open_result != "0":  # +CIPOPEN: <link>,<err>; 0 = success
            raise ModemError("CIPOPEN result %s" % self.open_result)
        self.sock_open = True

    async def udp_send(self, data):
        if not self.sock_open:
            raise ModemError("socket not open")
        await self.cmd('AT+CIPSEND=%d,%d,"%s",%d' % (_LINK, len(data), self.host, self.port),
                       None, _SEND_MS, data)

    async def udp_close(self):
        if self.sock_open:
            self.sock_open = False
            await self.cmd("AT+CIPCLOSE=%d" % _LINK, None, _OPEN_MS)

    async def gnss_power(self, on):
        await self.cmd("AT+CGPS=%d" % (1 if on else 0), None, 5000)

    async def gnss_fix(self):
        """AT+CGNSSINFO: parsed by firmware/gnss where available, else the raw line."""
        lines = await self.cmd("AT+CGNSSINFO", "+CGNSSINFO:", 5000)
        return gnss_answer(lines[0] if lines else None, "cgnssinfo")
