"""SMS gateway on a USB GSM/LTE modem: pyserial, AT commands, PDU mode (3GPP TS 27.005).

    AT+CMGF=0            PDU mode
    AT+CNMI=2,1,0,1,0    new messages kept in the SIM store, announced as +CMTI: "SM",<index>;
                         status reports straight to us as +CDS
    AT+CMGR=<i> -> +CMGR: <stat>,,<len> / <PDU>      read one; AT+CMGD=<i> once it is stored
    AT+CMGL=4            everything still in the store: read at every (re)connection
    AT+CMGS=<n>  "> "  <PDU hex><Ctrl-Z>   ->  +CMGS: <mr>  OK   (up to 60 s on a busy cell)

An SMS leaves the modem's store only after the server's database has committed it (the ingest
answered), so one that arrives while the server is down, busy or killed waits on the SIM and is
read at the next start; a packet read twice is a replay the ingest refuses, never a second row.
A reader thread splits the byte stream into whole lines and sorts each by what the line is:
final result codes (OK / ERROR / +CME ERROR / +CMS ERROR) end the running command; the `> `
prompt (no line end) releases the PDU; unsolicited codes (+CMTI, +CMT/+CDS with their PDU line,
RING) are handled even while a command runs; anything else goes to the running command, or to
the log when none runs. An unplugged modem (read error) is reopened every 0.5 s on the same
port; /healthz shows the state and how often and how long it was gone.
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
REOPEN_S = 0.5  # how often an unplugged modem's port is tried again
_URC_LINE = ("+CMTI:", "RING")  # unsolicited, one line
_URC_PDU = ("+CMT:", "+CDS:")  # unsolicited, header then a PDU line
INIT = ("AT", "ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,1,0,1,0")


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
        self._taken: set[int] = set()
        self.state = "starting"  # starting | ready | unplugged
        self.outages = 0
        self._down_since: float | None = None

    async def start(self, loop: asyncio.AbstractEventLoop, inbound) -> None:
        self._loop, self._inbound = loop, inbound
        self._store_lock = asyncio.Lock()
        await asyncio.to_thread(self._connect)
        threading.Thread(target=self._reader, name="modem-reader", daemon=True).start()
        await self._ready()

    def _connect(self) -> None:
        import serial  # pyserial

        self._ser = serial.serial_for_url(self.port, self.baud, timeout=0.1)

    async def _ready(self) -> None:
        """After (re)connecting: set the modem up, then take in what its store holds."""
        for cmd in INIT:
            await asyncio.to_thread(self.command, cmd, 2.0)
        self.state, self._down_since = "ready", None
        logs.event("modem_ready", port=self.port, outages=self.outages)
        await self._sweep()

    async def _sweep(self) -> None:
        lines = await asyncio.to_thread(self.command, "AT+CMGL=4", 20.0)
        for head, pdu_hex in zip(lines[::2], lines[1::2], strict=False):
            if head.startswith("+CMGL:"):
                await self._take(int(head.split(":", 1)[1].split(",")[0]), pdu_hex)

    async def _fetch(self, idx: int) -> None:
        lines = await asyncio.to_thread(self.command, f"AT+CMGR={idx}")
        if len(lines) >= 2 and lines[0].startswith("+CMGR:"):
            await self._take(idx, lines[1])

    async def _take(self, idx: int, pdu_hex: str) -> None:
        """One stored SMS into the server; deleted from the store once the commit is done."""
        async with self._store_lock:
            if idx in self._taken:
                return
            self._taken.add(idx)
            try:
                keep = await self._deliver(pdu_hex)
                if not keep:
                    await asyncio.to_thread(self.command, f"AT+CMGD={idx}")
            finally:
                self._taken.discard(idx)

    async def _deliver(self, pdu_hex: str) -> bool:
        """-> True to keep the SMS in the store (the server could not store it)."""
        try:
            msg = pdus.decode(bytes.fromhex(pdu_hex))
        except (ValueError, pdus.PduError) as e:
            logs.event("modem_bad_pdu", level=30, error=str(e))
            return False  # never readable: deleting it keeps the store from filling
        if isinstance(msg, pdus.StatusReport):
            self._status(msg)
            return False
        out = await self._inbound(msg.sender, msg.body)
        return isinstance(out, dict) and out.get("reason") == "internal_error"

    def _status(self, msg) -> None:
        self.report(f"mr{msg.mr}", msg.outcome, None if msg.outcome != "failed"
                    else f"TP-ST 0x{msg.status:02x}")

    def health(self) -> dict:
        out = {"name": self.name, "ok": self.state == "ready", "state": self.state,
               "port": self.port, "outages": self.outages}
        if self._down_since is not None:
            out["down_s"] = round(time.monotonic() - self._down_since, 1)
        return out

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
        while not self._stop.is_set():
            try:
                self._read_lines()
            except Exception as e:  # unplugged: the port is reopened until the modem is back
                if self._stop.is_set():
                    return
                self._unplugged(e)
                self._replug()

    def _read_lines(self) -> None:
        buf = b""
        while not self._stop.is_set():
            chunk = self._ser.read(self._ser.in_waiting or 1)
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
                if line.strip():
                    self._line(line.strip())

    def _unplugged(self, e: Exception) -> None:
        if self.state != "unplugged":  # one outage until the modem answers again
            self.state, self._down_since = "unplugged", time.monotonic()
            self.outages += 1
        self._urc = None
        self._resp.put("ERROR (modem unplugged)")  # ends a running command (a +CMGS waits 60 s)
        logs.event("modem_unplugged", level=40, port=self.port, error=repr(e))
        try:
            self._ser.close()
        except Exception:  # noqa: S110 (already gone)
            pass

    def _replug(self) -> None:
        while not self._stop.wait(REOPEN_S):
            try:
                self._connect()
            except Exception:  # noqa: S112 (still unplugged)
                continue
            logs.event("modem_replugged", port=self.port,
                       down_s=round(time.monotonic() - (self._down_since or 0), 1))
            if self._loop is not None:
                asyncio.run_coroutine_threadsafe(self._ready_logged(), self._loop)
            return

    async def _ready_logged(self) -> None:
        try:
            await self._ready()
        except Exception as e:  # not our modem yet (a stale name?) or gone again: reopen
            logs.event("modem_init_failed", level=40, error=repr(e))
            if self.state == "unplugged" and self._ser is not None:
                await asyncio.to_thread(self._ser.close)  # the reader fails and reopens

    def _line(self, line: str) -> None:
        """Sort one whole line by what it is (never by where a buffer happens to end)."""
        if self._urc is not None:
            header, self._urc = self._urc, None
            self._unsolicited(header, line)
        elif line.startswith(_URC_PDU):
            self._urc = line
        elif line.startswith(_URC_LINE):
            self._urc_line(line)
        elif self._busy:
            self._resp.put(line)
        else:
            logs.event("modem_line", line=line[:80])  # unknown URC: logged, never dropped silently

    def _urc_line(self, line: str) -> None:
        if line.startswith("+CMTI:") and self._loop is not None:
            idx = line.rsplit(",", 1)[-1].strip()
            if idx.isdigit():
                asyncio.run_coroutine_threadsafe(self._fetch_logged(int(idx)), self._loop)
                return
        logs.event("modem_urc", line=line[:80])

    async def _fetch_logged(self, idx: int) -> None:
        try:
            await self._fetch(idx)
        except Exception as e:  # left in the store: read by the next sweep
            logs.event("modem_fetch_failed", level=30, index=idx, error=repr(e))

    def _unsolicited(self, header: str, pdu_hex: str) -> None:
        """+CMT (a modem set to route SMS to us) or +CDS: no store, handled at once."""
        try:
            msg = pdus.decode(bytes.fromhex(pdu_hex))
        except (ValueError, pdus.PduError) as e:
            logs.event("modem_bad_pdu", level=30, header=header, error=str(e))
            return
        if isinstance(msg, pdus.StatusReport):
            self._status(msg)
        elif self._inbound is not None and self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._inbound(msg.sender, msg.body), self._loop)
