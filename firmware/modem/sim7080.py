"""SIMCom SIM7080G (LTE-M / NB-IoT, Cat-M1/NB2). Commands from the SIM7080 Series AT Command Manual:
PDP with +CNACT (app network), UDP with +CAOPEN/+CASEND/+CARECV, GNSS with +CGNSPWR/+CGNSINF.
Hardware truth: GNSS and LTE share one RF path: they cannot run at the same time."""
import asyncio

from micropython import const

from modem import atlines
from modem.core import Modem, ModemError, gnss_answer

_CID = const(0)  # the one socket we use (0..12)
_PDP = const(0)  # app network context (0..3)
_PDP_MS = const(30000)  # +CNACT activation budget (URC "+APP PDP: 0,ACTIVE" follows OK)
_OPEN_MS = const(15000)  # +CAOPEN for UDP answers once the socket exists
_SEND_MS = const(10000)
_RECV_MAX = const(1460)  # +CARECV reads at most 1460 bytes


class Sim7080(Modem):
    name = "sim7080"
    caps = ("gnss", "sms", "udp", "psm")  # no gnss_with_lte: one RF for both
    # SIM7080G Hardware Design: PWRKEY low >= 1 s powers on, >= 1.2 s powers off; UART ready
    # ~1.8 s. After an off press the module takes 1.8-6.9 s to go dark (SIM7000 Hardware Design
    # V1.04 Table 9, same family): press "on" only after that. The on press stays under 1.2 s so
    # that it can never switch off a module that is already booting.
    pwrkey_on_ms = 1100
    pwrkey_off_ms = 1300
    off_to_on_ms = 7000
    boot_ms = 6000
    urc_prefixes = atlines.URC_PREFIXES + ("+CADATAIND:", "+CASTATE:", "+APP PDP:", "+CAURC:")
    inline_data = ("+CARECV: ",)  # "+CARECV: <len>,<len bytes>"
    psm_status_cmd = "AT+CPSMSTATUS=1"  # URCs "+CPSMSTATUS: ENTER PSM" / "EXIT PSM"
    psm_wake_ms = 1100  # PWRKEY low wakes it from PSM; under the 1.2 s press that switches off
    apn = ""

    def __init__(self, reader, writer, pwrkey=None, log=print):
        super().__init__(reader, writer, pwrkey, log)
        self.pdp_evt = asyncio.Event()
        self.sock_open = False
        self.gnss_on = False
        self.at.on("+APP PDP:", self._on_pdp)
        self.at.on("+CADATAIND:", self._on_data)
        self.at.on("+CASTATE:", self._on_state)

    async def dialect_init(self):
        await self.cmd("AT+CNETLIGHT=0")  # covert: network status LED off
        await self.cmd("AT+CNMP=38")  # LTE only
        if self.apn:
            await self.cmd('AT+CGDCONT=1,"IP","%s"' % self.apn)

    def dialect_reset(self):
        self.pdp_evt.clear()
        self.sock_open = False
        self.gnss_on = False

    def _on_pdp(self, line, _):
        if "DEACTIVE" in line:
            self.pdp_evt.clear()
            self.sock_open = False
        elif "ACTIVE" in line:
            self.pdp_evt.set()

    def _on_state(self, line, _):
        f = atlines.fields(line, atlines.after_colon(line))
        if len(f) > 1 and f[1] == "0":  # +CASTATE: <cid>,0 = closed by the network
            self.sock_open = False

    def _on_data(self, line, _):
        asyncio.create_task(self._read_data())

    async def _read_data(self):
        await self._read_datagrams("AT+CARECV=%d,%d" % (_CID, _RECV_MAX), "+CARECV:")

    async def _pdp_up(self):
        if self.pdp_evt.is_set():
            return
        lines = await self.cmd("AT+CNACT?", "+CNACT:")
        for x in lines:  # +CNACT: <pdpidx>,<statusx>,"<address>"
            f = atlines.fields(x, atlines.after_colon(x))
            if f[0] == str(_PDP) and f[1] == "1":
                self.pdp_evt.set()
                return
        await self.cmd("AT+CNACT=%d,1" % _PDP, None, _PDP_MS)
        try:
            await asyncio.wait_for_ms(self.pdp_evt.wait(), _PDP_MS)
        except asyncio.TimeoutError:
            raise ModemError("PDP context not activated")

    async def udp_open(self, host, port):
        if self.gnss_on:
            raise ModemError("GNSS holds the RF: power it off first")
        await self._pdp_up()
        if self.sock_open:
            await self.udp_close()
        lines = await self.cmd('AT+CAOPEN=%d,%d,"UDP","%s",%d' % (_CID, _PDP, host, port),
                               "+CAOPEN:", _OPEN_MS)
        f = atlines.fields(lines[0], atlines.after_colon(lines[0])) if lines else ["", "1"]
        if len(f) < 2 or f[1] != "0":  # +CAOPEN: <cid>,<result>; 0 = success
            raise ModemError("CAOPEN result %s" % (f[1] if len(f) > 1 else "?"))
        self.sock_open = True

    async def udp_send(self, data):
        if self.gnss_on:
            raise ModemError("GNSS holds the RF: power it off first")
        if not self.sock_open:
            raise ModemError("socket not open")
        await self.cmd("AT+CASEND=%d,%d" % (_CID, len(data)), None, _SEND_MS, data)

    async def udp_close(self):
        if self.sock_open:
            self.sock_open = False
            await self.cmd("AT+CACLOSE=%d" % _CID)

    async def gnss_power(self, on):
        """+CGNSPWR. Powering GNSS on suspends LTE use: the caller schedules around it."""
        await self.cmd("AT+CGNSPWR=%d" % (1 if on else 0), None, 5000)
        self.gnss_on = bool(on)

    async def gnss_fix(self):
        """AT+CGNSINF: the parsed Fix where firmware/gnss has the parser, else the raw line."""
        lines = await self.cmd("AT+CGNSINF", "+CGNSINF:", 5000)
        return gnss_answer(lines[0] if lines else None, "cgnsinf")

    async def send_sms(self, number, body, vp=None):
        if self.gnss_on:
            raise ModemError("GNSS holds the RF: power it off first")
        return await super().send_sms(number, body, vp)

