"""SMS gateway through Kannel (bearerbox + smsbox): its HTTP `sendsms` out, `dlr-url` delivery
reports and an `sms-service` `get-url` in (docs/server.md has the kannel.conf a centre needs).

    kannel:http://USER:PASS@HOST:13013/cgi-bin/sendsms?from=%2B82112[&smsc=ID]
    URELIEF_KANNEL_DLR_URL=http://SERVER:8000/sms/kannel/status?token=GATEWAY_TOKEN

A packet goes as one 8-bit SMS (coding=1, the raw bytes); a text is split here into the same
concatenated parts the modem gateway sends (8-bit reference UDH), each sent with its `udh`,
coding=0 (GSM-7, UTF-8 charset) or coding=2 (UCS-2, the UTF-16BE bytes), so each part has its
own ref for its delivery reports. Kannel answers "0: Accepted for delivery" (202): queued.
"""

from __future__ import annotations

import itertools
import os
import secrets
from urllib.parse import parse_qsl, quote, quote_from_bytes, urlsplit

import httpx

from urelief.server import logs
from urelief.server.sms import SmsGateway, SmsResult
from urelief.sms import pdu as pdus

DLR_MASK = 1 | 2 | 8 | 16  # delivered, undeliverable, SMSC accepted, SMSC rejected
DLR_STATUS = {1: "delivered", 2: "failed", 4: "sent", 8: "sent", 16: "failed"}  # Kannel %d
CODING_GSM7, CODING_8BIT, CODING_UCS2 = 0, 1, 2
TIMEOUT_S = 10.0


def dlr_status(kind: int) -> str | None:
    """The status a Kannel DLR type (%d, one bit) means, or None."""
    return DLR_STATUS.get(kind)


class KannelGateway(SmsGateway):
    name = "kannel"

    def __init__(self, url: str, dlr_url: str | None = None):
        super().__init__()
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"kannel: needs an http(s) sendsms URL, got {url!r}")
        self._base = f"{u.scheme}://{u.hostname}:{u.port or 13013}{u.path or '/cgi-bin/sendsms'}"
        self._fixed = [("username", u.username or ""), ("password", u.password or ""),
                       *parse_qsl(u.query)]
        self.dlr_url = dlr_url if dlr_url is not None else os.environ.get("URELIEF_KANNEL_DLR_URL")
        self._ref_base = secrets.token_hex(3)  # refs unique across server runs
        self._ids = itertools.count(1)
        self._concat_ref = itertools.count(secrets.randbelow(256))
        self._client: httpx.AsyncClient | None = None
        self._last_error: str | None = None

    def _query(self, to: str, ref: str, coding: int, data: bytes, udh: bytes = b"") -> str:
        q = [*self._fixed, ("to", to), ("coding", str(coding))]
        if coding == CODING_UCS2:
            q.append(("charset", "UTF-16BE"))
        elif coding == CODING_GSM7:
            q.append(("charset", "UTF-8"))
        if self.dlr_url and coding != CODING_8BIT:  # a packet's SMS has no record to update
            sep = "&" if "?" in self.dlr_url else "?"
            q += [("dlr-mask", str(DLR_MASK)),
                  ("dlr-url", f"{self.dlr_url}{sep}ref={ref}&type=%d")]
        raw = [("udh", udh)] if udh else []
        raw.append(("text", data))
        return "&".join([f"{k}={quote(v, safe='')}" for k, v in q]
                        + [f"{k}={quote_from_bytes(v, safe='')}" for k, v in raw])

    def _parts(self, body: bytes | str) -> list[tuple[int, bytes, bytes]]:
        """[(coding, user data, udh)] for one message."""
        if isinstance(body, bytes):
            return [(CODING_8BIT, body, b"")]
        parts = pdus.split_text(body)
        ref = next(self._concat_ref) & 0xFF
        coding = CODING_GSM7 if pdus.text_septets(body) is not None else CODING_UCS2
        out = []
        for k, part in enumerate(parts, 1):
            udh = pdus.concat_udh(ref, len(parts), k) if len(parts) > 1 else b""
            data = part.encode("utf-8" if coding == CODING_GSM7 else "utf-16-be")
            out.append((coding, data, udh))
        return out

    async def _send(self, to: str, body: bytes | str) -> SmsResult:
        try:
            parts = self._parts(body)
        except pdus.PduError as e:
            return SmsResult(False, error=str(e))
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT_S)
        refs: list[str] = []
        for coding, data, udh in parts:
            ref = f"k{self._ref_base}-{next(self._ids)}"
            try:
                r = await self._client.get(f"{self._base}?{self._query(to, ref, coding, data, udh)}")
            except httpx.HTTPError as e:
                self._last_error = f"kannel unreachable: {e!r}"
                return SmsResult(False, refs, self._last_error)
            if r.status_code not in (200, 202) or not r.text.startswith("0:"):
                self._last_error = f"kannel {r.status_code}: {r.text.strip()[:200]}"
                return SmsResult(False, refs, self._last_error)
            self._last_error = None
            refs.append(ref)
        logs.event("sms_queued", gateway=self.name, to=to, parts=len(refs))
        return SmsResult(True, refs, status="queued")

    def health(self) -> dict:
        out = {"name": self.name, "ok": self._last_error is None, "dlr": bool(self.dlr_url)}
        if self._last_error:
            out["detail"] = self._last_error
        return out

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
