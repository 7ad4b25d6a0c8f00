"""SMS gateways: the interface every gateway implements, `log` (none) and `outbox` (an external
gateway that polls GET /api/sms/outbox and reports through POST /sms/status).

    gateway = urelief.server.gateways.make_gateway("log" | "outbox" | "modem:…" | "kannel:…")
    result = await gateway.send("+8210…", b"\\x11…")     # bytes: one 8-bit data SMS (a packet)
    result = await gateway.send("+8210…", "text")        # str: any length, GSM-7 or UCS-2,
                                                         # concatenated by the gateway as needed

`send` answers when the message left (or failed): `SmsResult(ok, refs, error)`, one reference
per SMS the gateway's delivery reports will name (a modem: each part's TP-MR; Kannel: one for
the whole message). Reports arrive later through `gateway.on_status(ref, status, error)` (the
server sets that callback), or through the HTTP status webhooks (docs/server.md).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from urelief.server import logs

NOT_SENT = "not sent: no gateway configured"


@dataclass
class SmsResult:
    ok: bool
    refs: list[str] = field(default_factory=list)
    error: str | None = None
    status: str = "sent"  # when ok: sent (left for the network) | queued (with a gateway)

    @property
    def ref(self) -> str | None:
        return self.refs[0] if self.refs else None


class SmsGateway:
    """Base class. Subclasses implement `_send`; `health()` says what /healthz shows."""

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

    def health(self) -> dict:
        return {"name": self.name, "ok": True}

    async def close(self) -> None:
        pass


class _Kept(SmsGateway):
    def __init__(self, keep: int = 1000):
        super().__init__()
        self.sent: deque[dict] = deque(maxlen=keep)
        self._refs = itertools.count(1)

    def _keep(self, to: str, body: bytes | str) -> str:
        ref = f"{self.name}-{next(self._refs)}"
        entry = {"ref": ref, "to": to}
        if isinstance(body, bytes):
            entry["data_hex"] = body.hex()
        else:
            entry["text"] = body
        self.sent.append(entry)
        return ref


class LogGateway(_Kept):
    """No gateway: each message is logged and kept (GET /api/sms/outbox) but NOT sent, and the
    sender is told so ("not sent: no gateway configured"); guardian SMS stay failed and are
    retried until they expire. Development and tests only."""

    name = "log"

    async def _send(self, to: str, body: bytes | str) -> SmsResult:
        ref = self._keep(to, body)
        logs.event("sms_not_sent", level=30, gateway=self.name, ref=ref, to=to,
                   kind="binary" if isinstance(body, bytes) else "text", reason=NOT_SENT)
        return SmsResult(False, [ref], NOT_SENT)

    def health(self) -> dict:
        return {"name": self.name, "ok": False, "detail": NOT_SENT}


class OutboxGateway(_Kept):
    """An external gateway polls the outbox (GET /api/sms/outbox), sends what it finds and
    reports each ref through POST /sms/status. The message is `queued` until it does."""

    name = "outbox"

    async def _send(self, to: str, body: bytes | str) -> SmsResult:
        ref = self._keep(to, body)
        logs.event("sms_queued", gateway=self.name, ref=ref, to=to,
                   kind="binary" if isinstance(body, bytes) else "text")
        return SmsResult(True, [ref], status="queued")
