"""SMS gateway on a USB GSM/LTE modem: pyserial, AT commands, PDU mode (3GPP TS 27.005).

    AT+CMGF=0            PDU mode
    AT+CNMI=2,2,0,1,0    new messages straight to us as +CMT, status reports as +CDS
    AT+CMGS=<n>  "> "  <PDU hex><Ctrl-Z>   ->  +CMGS: <mr>  OK   (up to 60 s on a busy cell)

A reader thread splits the byte stream into whole lines and sorts them: final result codes
(OK / ERROR / +CME ERROR / +CMS ERROR) end the running command; the `> ` prompt (no line end)
releases the PDU; +CMT/+CDS (header line, then the PDU line) are unsolicited and handled at
once; anything else goes to the running command, or to the log when none runs.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time

from urelief.server import logs
from urelief.server.sms import SmsGateway, SmsResult
from urelief.sms import pdu as pdus

_FINAL_OK = ("OK",)
_FINAL_ERR = ("ERROR", "+CME ERROR", "+CMS ERROR", "NO CARRIER")
_PROMPT = "> "
_CTRL_Z = b"\x1a"
SUBMIT_TIMEOUT_S = 60.0  # +CMGS can take tens of seconds (27.005; module manuals: 60 s)


class AtError(RuntimeError):
    pass


class AtModemGateway(SmsGateway):
    name = "modem"

    def __init__(self, port: str, baud: int = 115200):
        super().__init__()
        self.port, self.baud = port, baud
        self._ser = None
        self._resp: queue.Queue[str] = queue.Queue()
        self._cmd_lock = threading.Lock()
        self._busy = False
        self._urc: str | None = None  # +CMT/+CDS header waiting for its PDU line
        self._inbound = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._concat_ref = itertools.count(1)

    async def start(self, loop: asyncio.AbstractEventLoop, inbound) -> None:
        self._loop, self._inbound = loop, inbound
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        import serial  # pyserial

        self._ser = serial.serial_for_url(self.port, self.baud, timeout=0.1)
        threading.Thread(target=self._reader, name="modem-reader", daemon=True).start()
        for cmd in ("AT", "ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,2,0,1,0"):
            self.command(cmd)
        logs.event("modem_ready", port=self.port)

    async def close(self) -> None:
        self._stop.set()
        if self._ser is not None:
            await asyncio.to_thread(self._ser.close)

    # -- commands --------------------------------------------------------------------------
    def command(self, cmd: str, timeout_s: float = 5.0) -> list[str]:
        """Run one command; its intermediate lines, or AtError with the final result code."""
        with self._cmd_lock:
            self._drain()
            self._busy = True
            try:
                self._ser.write(cmd.encode() + b"\r")
                return self._collect(timeout_s)
            finally:
                self._busy = False

    def _collect(self, timeout_s: float) -> list[str]:
        deadline = time.monotonic() + timeout_s
        lines: list[str] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AtError("timeout")
            try:
                line = self._resp.get(timeout=left)
            except queue.Empty:
                raise AtError("timeout") from None
            if line in _FINAL_OK:
                return lines
            if line.startswith(_FINAL_ERR):
                raise AtError(line)
            if line != _PROMPT:
                lines.append(line)

    def _drain(self) -> None:
        while not self._resp.empty():
            self._resp.get_nowait()

    def submit(self, pdu: bytes, tpdu_len: int) -> int:
        """AT+CMGS in PDU mode; returns the message reference."""
        with self._cmd_lock:
            self._drain()
            self._busy = True
            try:
                self._ser.write(f"AT+CMGS={tpdu_len}\r".encode())
                deadline = time.monotonic() + 5.0
                while True:  # wait for the prompt (an early ERROR means no SIM/no network)
                    line = self._resp.get(timeout=max(0.01, deadline - time.monotonic()))
                    if line == _PROMPT:
                        break
                    if line.startswith(_FINAL_ERR):
                        raise AtError(line)
                self._ser.write(pdu.hex().upper().encode() + _CTRL_Z)
                lines = self._collect(SUBMIT_TIMEOUT_S)
            except queue.Empty:
                self._ser.write(b"\x1b")  # ESC aborts the pending message
                raise AtError("no '> ' prompt") from None
            finally:
                self._busy = False
        for line in lines:
            if line.startswith("+CMGS:"):
                return int(line.split(":", 1)[1].split(",")[0])
        raise AtError("no +CMGS in the answer")

    async def _send(self, to: str, body: bytes | str) -> SmsResult:
        """One SMS for a packet; a text in as many concatenated parts as it needs (8-bit
        reference, one per message). Each part's TP-MR is a ref its +CDS report names."""
        try:
            parts = pdus.encode_submits(to, body, ref=next(self._concat_ref) & 0xFF)
        except pdus.PduError as e:
            return SmsResult(False, error=str(e))
        refs: list[str] = []
        for pdu, n in parts:
            try:
                mr = await asyncio.to_thread(self.submit, pdu, n)
            except AtError as e:
                where = f"part {len(refs) + 1}/{len(parts)}: " if len(parts) > 1 else ""
                return SmsResult(False, refs, where + str(e))
            refs.append(f"mr{mr}")
        return SmsResult(True, refs)

    # -- reader ----------------------------------------------------------------------------
    def _reader(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = self._ser.read(self._ser.in_waiting or 1)
            except Exception as e:  # unplugged: stop, the next send fails cleanly
                logs.event("modem_read_failed", level=40, error=repr(e))
                return
            if not chunk:
                continue
            buf += chunk
            while True:
                if buf.lstrip(b"\r\n") == b"> ":
                    self._resp.put(_PROMPT)
                    buf = b""
                    break
                cut = buf.find(b"\n")
                if cut < 0:
                    break
                line, buf = buf[:cut].strip(b"\r").decode("ascii", "replace"), buf[cut + 1:]
                if line:
                    self._line(line.strip())

    def _line(self, line: str) -> None:
        if self._urc is not None:
            header, self._urc = self._urc, None
            self._unsolicited(header, line)
        elif line.startswith(("+CMT:", "+CDS:")):
            self._urc = line
        elif self._busy:
            self._resp.put(line)
        else:
            logs.event("modem_line", line=line[:80])  # unknown URC: logged, never dropped silently

    def _unsolicited(self, header: str, pdu_hex: str) -> None:
        try:
            msg = pdus.decode(bytes.fromhex(pdu_hex))
        except (ValueError, pdus.PduError) as e:
            logs.event("modem_bad_pdu", level=30, header=header, error=str(e))
            return
        if isinstance(msg, pdus.StatusReport):
            self.report(f"mr{msg.mr}", msg.outcome, None if msg.outcome != "failed"
                        else f"TP-ST 0x{msg.status:02x}")
        elif self._inbound is not None and self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._inbound(msg.sender, msg.body), self._loop)
