"""The modem as the alarm's two channels: a UDP link kept open to the police server, and SMS to
the police gateway's number; every downlink (datagram or SMS) goes to on_downlink(bytes|str).
Mechanism only: which channel to use, and when, is policy.py's call."""
import asyncio

import supervise
from console import event
from micropython import const
from modem.at import AtError, AtTimeout, ModemReset
from modem.core import ModemError

from alarm.policy import LINK_CONNECTING, LINK_DOWN, LINK_UP

_ERRORS = (AtError, AtTimeout, ModemReset, ModemError, OSError)
_START_RETRY_MS = const(30000)  # a modem that does not come up: try again this often
_DATA_RETRY_MS = const(30000)  # after the network refused data
_WATCH_MS = const(1000)  # link check period (no AT traffic: attributes only)
_DRAIN_MS = const(20)  # an uplink in the modem when a GNSS window wants the RF: wait this much


class Transport:
    def __init__(self, modem, host, port, sms_number, on_downlink, on_change, log=print):
        self.m = modem
        self.host = host
        self.port = port
        self.sms_number = sms_number
        self.on_downlink = on_downlink
        self.on_change = on_change  # called when the link state changes (wake the sender)
        self.log = log
        self.link = LINK_CONNECTING
        self.ready = False  # the modem is initialised
        self._resets = 0
        self._reg = None
        self._wake = asyncio.Event()
        self.cell_changed = asyncio.Event()  # registration (cell) changed: refresh cell info
        # The one RF path of a modem whose GNSS and LTE cannot run together (SIM7080): held by
        # a GNSS window (alarm/radio.py), uplinks and data-link opens wait for it.
        self.held = False
        self._busy = 0  # uplinks inside the modem now
        self._free = asyncio.Event()
        self._free.set()

    def sms_ok(self):
        m = self.m
        return bool(self.sms_number) and self.ready and m.ready and m.registered()

    def _set(self, link):
        if link != self.link:
            self.link = link
            self.log(event("link", "state=" + ("up" if link == LINK_UP else
                                               "down" if link == LINK_DOWN else "connecting")))
            self.on_change()

    async def run(self):
        """Task: modem up, then keep the UDP link open while registered."""
        m = self.m
        while True:
            try:
                await m.start()
                break
            except _ERRORS as e:
                self.log(event("fault", "what=modem", repr(e)))
                await asyncio.sleep_ms(_START_RETRY_MS)
        self.ready = True
        self._resets = m.resets
        asyncio.create_task(m.supervise())
        asyncio.create_task(self._udp_rx())
        asyncio.create_task(self._sms_rx())
        self.log(event("modem_ready", "model=" + m.name))
        self.on_change()
        while True:
            supervise.alive("transport", 600000)  # an AT exchange is bounded far below this
            if m.resets != self._resets:
                self._resets = m.resets
                self._set(LINK_CONNECTING)  # the modem rebooted: its socket is gone
            if not (m.ready and m.registered()):
                if self.link == LINK_UP:
                    self._set(LINK_CONNECTING)
            elif self.link != LINK_UP:
                if self.held:
                    await self.free()  # no data context while the GNSS has the RF
                    continue
                await self._open()
                if self.link == LINK_DOWN:
                    await asyncio.sleep_ms(_DATA_RETRY_MS)
                    self._set(LINK_CONNECTING)
                    continue
            if m.reg != self._reg:
                self._reg = m.reg
                self.cell_changed.set()
            self._wake.clear()
            try:
                await asyncio.wait_for_ms(self._wake.wait(), _WATCH_MS)
            except asyncio.TimeoutError:
                pass

    async def _open(self):
        try:
            await self.m.udp_open(self.host, self.port)
            self.m.link_ok()
            self._set(LINK_UP)
        except _ERRORS as e:
            self.log(event("fault", "what=data_link", repr(e)))
            if isinstance(e, ModemReset) or self.m.resets != self._resets:
                self._set(LINK_CONNECTING)  # the modem rebooted: open once it is initialised
            else:
                self.m.link_failed()  # the modem layer re-initialises one whose link keeps failing
                self._set(LINK_DOWN)

    async def free(self):
        """Returns once no GNSS window holds the RF."""
        while self.held:
            await self._free.wait()

    async def hold(self):
        """A GNSS window takes the RF: new uplinks wait, those inside the modem finish first."""
        self.held = True
        self._free.clear()
        while self._busy:
            await asyncio.sleep_ms(_DRAIN_MS)

    def release(self):
        """The window closed. -> True if the RF was held (what waited may go now)."""
        if not self.held:
            return False
        self.held = False
        self._free.set()
        return True

    async def send(self, channel, packet):
        """Hand one packet to the modem once the RF is free; raises on failure (the outbox
        keeps it)."""
        await self.free()
        self._busy += 1
        try:
            if channel == "sms":
                await self.m.send_sms(self.sms_number, packet)
                return
            try:
                await self.m.udp_send(packet)
            except _ERRORS:
                self._set(LINK_CONNECTING)  # reopen before the next try
                self._wake.set()
                raise
        finally:
            self._busy -= 1

    async def _udp_rx(self):
        while True:
            d = await self.m.udp_recv(60000)
            if d:
                self.on_downlink(d)

    async def _sms_rx(self):
        while True:
            s = await self.m.recv_sms(60000)
            if s is not None and s.body:
                self.on_downlink(s.body)
