"""HTTP endpoints for machines: an SMS gateway's inbound messages and delivery reports, and
phones' AML HTTPS location messages. Documented in docs/server.md.

    POST /sms/inbound   {"from": "+8210…", "data_hex" | "data_base64" | "text": …}
    POST /sms/status    {"ref": "…", "status": "sent|delivered|failed", "error"?: "…"}
    GET  /sms/kannel/inbound?from=%p&coding=%c&data=%b&udh=%u   Kannel's sms-service get-url
    GET  /sms/kannel/status?ref=…&type=%d                 Kannel's dlr-url
    POST /aml           application/x-www-form-urlencoded AML body (v=1&location_latitude=…)

Authentication (server/guard.py): the gateway sends `URELIEF_GATEWAY_TOKEN` as `X-Gateway-Token`;
an AML body carries its `hmac` when `URELIEF_AML_HMAC_KEY` is set. Unconfigured, they are off.
"""

from __future__ import annotations

import asyncio
import base64
import binascii

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from urelief.server import aml, guard, incidents, logs, metrics
from urelief.sms import pdu as pdus

router = APIRouter(tags=["gateway"])
DLR_WAIT_TRIES = 50  # x 0.1 s: how long a delivery report waits for its send to be stored


class InboundSms(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    sender: str = Field(alias="from", min_length=1, max_length=32, description="E.164 number")
    to: str | None = None
    data_hex: str | None = Field(None, max_length=400, description="8-bit user data, hex")
    data_base64: str | None = Field(None, max_length=300, description="8-bit user data, base64")
    text: str | None = Field(None, max_length=1000, description="text SMS (GSM-7/UCS-2 decoded)")


class SmsStatus(BaseModel):
    ref: str = Field(min_length=1, max_length=64)
    status: str = Field(pattern="^(queued|sent|delivered|failed)$")
    error: str | None = Field(None, max_length=300)


def _payload(msg: InboundSms) -> bytes | str:
    try:
        if msg.data_hex is not None:
            return bytes.fromhex(msg.data_hex)
        if msg.data_base64 is not None:
            return base64.b64decode(msg.data_base64, validate=True)
    except (ValueError, binascii.Error) as e:
        raise HTTPException(422, f"user data does not decode: {e}") from None
    if msg.text is not None:
        return msg.text
    raise HTTPException(422, "one of data_hex, data_base64, text is required")


@router.post("/sms/inbound", dependencies=[Depends(guard.require_gateway)])
async def sms_inbound(request: Request, msg: InboundSms) -> dict:
    return await handle_sms(request.app.state.server, msg.sender, _payload(msg))


async def handle_sms(server, sender: str, payload: bytes | str) -> dict:
    """One inbound SMS, from the webhook or from a gateway that receives itself (modem, sim):
    an AML location, or a U-Relief packet (binary or "UR1:" text), acked in the same form."""
    if _looks_aml(payload):
        def parse():
            loc = aml.parse_sms(payload)
            loc.msisdn = loc.msisdn or sender  # v1 carries no number: the SMS sender's
            return loc

        return await _aml(server, parse, "sms", f"sms:{sender}")
    text_form = isinstance(payload, str)

    async def reply(pkt: bytes) -> None:
        from urelief import protocol as p

        r = await server.gateway.send(sender, p.to_text(pkt) if text_form else pkt)
        metrics.SMS_SENT.labels("ack", "sent" if r.ok else "failed").inc()

    out = await server.ingest.handle(payload, "sms", f"sms:{sender}", reply, route=sender)
    return out.as_dict()


def _looks_aml(payload: bytes | str) -> bool:
    if isinstance(payload, str):
        return aml.is_aml_text(payload)
    if payload[:5] in (b'A"ML=', b"AML=1", b"AML=2"):
        return True
    # An Android data SMS carries the AML text GSM-7 packed: 'A"ML=' packs to 41 51 93 d9 8b.
    return payload[:4] == bytes.fromhex("415193d9") or aml.is_aml_text(aml.gsm7_unpack(payload[:8]))


def _aml_rejected(transport: str, reason: str, status: int, detail: str = "") -> HTTPException:
    metrics.AML_RECEIVED.labels(transport, reason).inc()
    metrics.PACKETS_REJECTED.labels("aml_" + reason).inc()
    logs.event("aml_rejected", transport=transport, reason=reason, detail=detail)
    return HTTPException(status, {"status": "rejected", "reason": reason, "detail": detail})


async def _aml(server, parse, transport: str, source: str, request: Request | None = None) -> dict:
    """`source` (a phone number, a client address) is what the AML rate limit counts;
    `request`: an AML HTTPS body, held to the webhook policy (guard.aml_refusal)."""
    if not server.ingest.aml_limit.allow(source):
        raise _aml_rejected(transport, "rate_limited", 429, f"too many AML messages from {source}")
    try:
        loc = parse()
    except aml.AmlError as e:
        raise _aml_rejected(transport, e.reason, 422, str(e)) from None
    refusal = guard.aml_refusal(request, loc.authenticated) if request is not None else None
    if refusal is not None:
        raise _aml_rejected(transport, refusal[1], refusal[0], refusal[2])
    for w in loc.warnings:
        logs.event("aml_warning", transport=transport, warning=w, msisdn=loc.msisdn)

    def store():
        with server.db.session() as s:
            inc, opened = incidents.open_aml(s, loc)
            s.flush()
            return inc.id, opened

    incident_id, opened = await run_in_threadpool(store)
    metrics.AML_RECEIVED.labels(transport, "ok").inc()
    if opened:
        metrics.INCIDENTS_OPENED.labels("false").inc()
        logs.event("incident_opened", incident=incident_id, source="aml", transport=transport)
    server.hub.publish("incident", {"id": incident_id, "school_id": None, "opened": opened,
                                    "events": ["aml"]})
    return {"status": "accepted", "incident_id": incident_id, "warnings": loc.warnings,
            "location": loc.as_dict()}


@router.post("/aml")
async def aml_https(request: Request) -> dict:
    server = request.app.state.server
    pre = guard.aml_refusal(request, True)  # off, or a gateway token missing: before parsing
    if pre is not None:
        raise _aml_rejected("https", pre[1], pre[0], pre[2])
    body = await request.body()  # at most guard.PATH_LIMITS["/aml"]
    source = "aml:" + (request.client.host if request.client else "")
    return await _aml(server, lambda: aml.parse_https(body, server.cfg.aml_hmac_key), "https",
                      source, request)


@router.post("/sms/status", dependencies=[Depends(guard.require_gateway)])
async def sms_status(request: Request, st: SmsStatus) -> dict:
    server = request.app.state.server
    known = await run_in_threadpool(server.notifier.delivery_report, st.ref, st.status, st.error)
    if not known:
        raise HTTPException(404, f"no message with ref {st.ref!r}")
    return {"ok": True}


def _raw_query(request: Request) -> dict[str, bytes]:
    """The query with its values as bytes: Kannel's %b is the user data, any octets."""
    from urllib.parse import parse_qsl

    pairs = parse_qsl(request.scope.get("query_string", b"").decode("latin-1"),
                      keep_blank_values=True, encoding="latin-1")
    return {k: v.encode("latin-1") for k, v in pairs}


def _concat_part(udh: bytes) -> tuple[int, int, int] | None:
    """(reference, parts, part number) if a user data header holds a concatenation element
    (IEI 0x00: 8-bit reference, 0x08: 16-bit), else None. `udh` with its length octet."""
    i, end = 1, min(len(udh), 1 + (udh[0] if udh else 0))
    while i + 1 < end:
        iei, n = udh[i], udh[i + 1]
        el = udh[i + 2:i + 2 + n]
        if iei == 0x00 and n == 3 and len(el) == 3:
            return el[0], el[1], el[2]
        if iei == 0x08 and n == 4 and len(el) == 4:
            return el[0] << 8 | el[1], el[2], el[3]
        i += 2 + n
    return None


def _sms_refused(reason: str, detail: str, sender: str) -> HTTPException:
    metrics.PACKETS_REJECTED.labels(reason).inc()
    logs.event("sms_rejected", level=30, reason=reason, source=f"sms:{sender}", detail=detail)
    return HTTPException(422, {"status": "rejected", "reason": reason, "detail": detail})


@router.get("/sms/kannel/inbound", dependencies=[Depends(guard.require_gateway)])
async def kannel_inbound(request: Request) -> dict:
    """Kannel's sms-service get-url: from=%p&coding=%c&data=%b&udh=%u (docs/server.md).
    Kannel joins a concatenated SMS before the get-url (sms-combine-concatenated-mo, its
    default); a part that reaches us alone cannot be joined here and is refused, and so is a
    joined binary message: a U-Relief packet is always one SMS."""
    q = _raw_query(request)
    sender = q.get("from", b"").decode("ascii", "replace")
    if not 1 <= len(sender) <= 32:
        raise HTTPException(422, "from: a sender number is required")
    data = q.get("data", b"")
    if len(data) > 1000:
        raise HTTPException(422, "data: longer than a concatenated SMS can carry")
    part = _concat_part(q.get("udh", b""))
    if part is not None:
        raise _sms_refused("sms_part", f"part {part[2]} of {part[1]} (reference {part[0]}) of a "
                           "concatenated SMS: Kannel must join the parts before the get-url "
                           "(core group: sms-combine-concatenated-mo = true)", sender)
    coding = q.get("coding", b"0")
    if coding == b"1" and len(data) > pdus.UD_OCTETS and not _looks_aml(data):
        raise _sms_refused("concatenated", f"{len(data)} octets of 8-bit data: a concatenated "
                           "binary SMS, and a U-Relief packet is always one SMS", sender)
    try:
        payload: bytes | str = (data if coding == b"1" else
                                data.decode("utf-16-be") if coding == b"2" else data.decode())
    except UnicodeDecodeError as e:
        raise HTTPException(422, f"data does not decode for coding {coding!r}: {e}") from None
    return await handle_sms(request.app.state.server, sender, payload)


@router.get("/sms/kannel/status", dependencies=[Depends(guard.require_gateway)])
async def kannel_status(request: Request, ref: str, type: int) -> dict:
    """Kannel's dlr-url: ref=<ours>&type=%d (1 delivered, 2 failed, 8 SMSC took it, 16 refused)."""
    from urelief.server.kannel import dlr_status

    status = dlr_status(type)
    if status is None or len(ref) > 64:
        raise HTTPException(422, f"unknown delivery report type {type}")
    server = request.app.state.server
    error = None if status != "failed" else (
        f"refused by the SMSC (Kannel DLR {type})" if type == 16 else
        f"undeliverable (Kannel DLR {type})")
    # An SMSC may report before the send that made the ref has been stored: wait for it a while.
    for _ in range(DLR_WAIT_TRIES):
        if await run_in_threadpool(server.notifier.delivery_report, ref, status, error):
            break
        await asyncio.sleep(0.1)
    else:
        raise HTTPException(404, f"no message with ref {ref!r}")
    return {"ok": True}
