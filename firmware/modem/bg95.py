"""Quectel BG95 (LTE-M / NB-IoT + GNSS). Commands from the BG95 TCP/IP and GNSS AT manuals:
+QIACT / +QIOPEN "UDP SERVICE" / +QISEND / +QIRD, GNSS +QGPS / +QGPSLOC=2."""
import asyncio

from micropython import const

from modem import atlines
from modem.core import Modem, ModemError, gnss_answer

_CTX = const(1)
_CONN = const(0)
_ACT_MS = const(150000)  # AT+QIACT: max response time 150 s
_OPEN_MS = const(15000)


class Bg95(Modem):
    name = "bg95"
    caps = ("gnss", "sms", "udp", "psm")  # GNSS and LTE share the RF (time-multiplexed)
    # BG95 Hardware Design: PWRKEY low 500-1000 ms on, 650-1500 ms off; "APP RDY" ~ 3-5 s.
    pwrkey_on_ms = 700
    pwrkey_off_ms = 1000
    off_to_on_ms = 5000  # > the on press + boot to "RDY": a later press would switch it off
    power_down_ms = 2000  # PWRKEY off press -> STATUS low: >= 1.3 s
    boot_ms = 10000
    # PSM wake: "drive PWRKEY low" (Hardware Design 3.4.2) for the on press's 500 ms minimum and
    # under the 650 ms that switches an awake module off. No PSM URC: a probe finds it asleep.
    psm_wake_ms = 550
    urc_prefixes = atlines.URC_PREFIXES + ("+QIURC:", "+QIOPEN:")
    powd_cmd = "AT+QPOWD=1"
    data_after = ("+QIRD:",)  # "+QIRD: <len>,<ip>,<port>" then <len> bytes

    def __init__(self, reader, writer, pwrkey=None, log=print):
        super().__init__(reader, writer, pwrkey, log)
        self.open_evt = asyncio.Event()
        self.open_result = None
        self.at.on("+QIOPEN:", self._on_open)
        self.at.on("+QIURC:", self._on_qiurc)

    def _on_open(self, line, _):
        self.open_result = atlines.fields(line, atlines.after_colon(line))[-1]
        self.open_evt.set()

    def _on_qiurc(self, line, _):
        if '"recv"' in line:
            asyncio.create_task(self._read_data())

    async def _read_data(self):
        await self._read_datagrams("AT+QIRD=%d,1500" % _CONN, "+QIRD:")

    async def udp_open(self, host, port):
        self.host, self.port = host, port
        await self.cmd("AT+QIACT=%d" % _CTX, None, _ACT_MS)
        self.open_evt.clear()
        await self.cmd('AT+QIOPEN=%d,%d,"UDP SERVICE","127.0.0.1",0,5000,0' % (_CTX, _CONN))
        try:
            await asyncio.wait_for_ms(self.open_evt.wait(), _OPEN_MS)
        except asyncio.TimeoutError:
            raise ModemError("QIOPEN no result")
        if self.open_result != "0":
            raise ModemError("QIOPEN result %s" % self.open_result)

    async def udp_send(self, data):
        await self.cmd('AT+QISEND=%d,%d,"%s",%d' % (_CONN, len(data), self.host, self.port),
                       None, 10000, data)

    async def udp_close(self):
        await self.cmd("AT+QICLOSE=%d" % _CONN, None, 10000)

    async def gnss_power(self, on):
        await self.cmd("AT+QGPS=1" if on else "AT+QGPSEND", None, 5000)

    async def gnss_fix(self):
        """AT+QGPSLOC=2 (signed degrees); +CME ERROR: 516 = no fix yet -> None."""
        try:
            lines = await self.cmd("AT+QGPSLOC=2", "+QGPSLOC:", 5000)
        except Exception:
            return None
        return gnss_answer(lines[0] if lines else None, "qgpsloc")
