"""SMS gateways: the interface every gateway implements, and the `log` gateway (none).

    gateway = urelief.server.gateways.make_gateway("log" | "modem:/dev/ttyUSB0@115200")
    result = await gateway.send("+8210…", b"\\x11…")     # bytes: 8-bit data SMS (a packet)
    result = await gateway.send("+8210…", "text")        # str: text SMS (GSM-7 or UCS-2)

`send` answers when the message left (or failed): `SmsResult(ok, ref, error)`. Delivery reports
arrive later through `gateway.on_status(ref, status, error)` (the server sets that callback), or
through the HTTP status webhook for an external gateway (docs/server.md).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from urelief.server import logs


@dataclass
class SmsResult:
    ok: bool
    ref: str | None = None
    error: str | None = None


class SmsGateway:
    """Base class. Subclasses implement `_send`."""

    name = "base"

    def __init__(self) -> None:
        self.on_status: Callable[[str, str, str | None], None] | None = None

    async def send(self, to: str, body: bytes | str) -> SmsResult:
        try:
            return await self._send(to, body)
        except Exception as e:  # a broken gateway must not break the caller
            logs.event("sms_send_failed", level=40, gateway=self.name, to=to, error=repr(e))
            return SmsResult(False, error=repr(e))

    async def _send(self, to: str, body: bytes | str) -> SmsResult:
        raise NotImplementedError

    async def start(self, loop: asyncio.AbstractEventLoop, inbound) -> None:
        """Gateways that receive SMS themselves call `await inbound(sender, payload)` for each
        (payload: bytes for 8-bit data, str for text). Default: nothing to start."""

    def report(self, ref: str, status: str, error: str | None = None) -> None:
        if self.on_status is not None:
            self.on_status(ref, status, error)

    async def close(self) -> None:
        pass


class LogGateway(SmsGateway):
    """No radio: logs each message and keeps the last ones (GET /api/sms/outbox). Development,
    tests, and servers whose SMS leaves through an external gateway that polls the outbox."""

    name = "log"

    def __init__(self, keep: int = 1000):
        super().__init__()
        self.sent: deque[dict] = deque(maxlen=keep)
        self._refs = itertools.count(1)

    async def _send(self, to: str, body: bytes | str) -> SmsResult:
        ref = f"log-{next(self._refs)}"
        entry = {"ref": ref, "to": to}
        if isinstance(body, bytes):
            entry["data_hex"] = body.hex()
        else:
            entry["text"] = body
        self.sent.append(entry)
        logs.event("sms_out", gateway=self.name, ref=ref, to=to,
                   kind="binary" if isinstance(body, bytes) else "text")
        return SmsResult(True, ref)
