"""HTTP for silent-caller links (`knock.py`): the dispatcher's side under /api, the caller's
page and its calls under /k/{token} (no operator login: the token plus the holder cookie).

    POST /api/knock                        {msisdn} or {incident_id}: incident + link, SMS sent
    GET  /api/incidents/{id}/knock         links, chat, last heard, pending video offer
    POST /api/incidents/{id}/knock/chat    {text}
    POST /api/incidents/{id}/knock/signal  {type: answer|candidate|restart, offer_id, …}
    GET  /api/incidents/{id}/knock/live    SSE: chat, position, offer, candidate, seen, closed
    GET  /k/{token}                        the caller's page (nothing at all for a dead link)
    POST /k/{token}/hello | ping | position | chat | signal;   GET /k/{token}/live (SSE)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from urelief.ratelimit import RateLimiter
from urelief.registry.audit import Actor
from urelief.registry.auth import CurrentOperator, require_role
from urelief.registry.errors import Invalid, NotFound, Throttled
from urelief.registry.models import Role
from urelief.server import logs, metrics
from urelief.server.apidoc import IdField, RowId
from urelief.server.knock import Gone, Links, LinkView, Relay, sms_text

PAGE = Path(__file__).with_name("knock_page")
HOLDER_COOKIE = "k"
BODY_MAX = 32 * 1024  # bytes; an SDP offer is ~4-6 KB
# The caller's page: its own files only, no inline script or style, nothing framed, no referrer
# (the token is in the URL).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; media-src 'self'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff", "X-Robots-Tag": "noindex, nofollow",
    "Permissions-Policy": "camera=(self), geolocation=(self), microphone=()",
}
# What a dead, forwarded or closed link shows: an empty page, the same for every reason.
NOTHING = "<!doctype html><html><head><meta charset=\"utf-8\"><title></title></head>" \
          "<body></body></html>"

Dispatcher = Annotated[Actor, Depends(require_role(Role.DISPATCHER, Role.ADMIN))]
router = APIRouter(tags=["silent caller"])


class KnockIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    msisdn: str | None = Field(None, max_length=20, description="E.164, e.g. +821012345678")
    incident_id: IdField | None = Field(None, description="an AML incident, which carries a number")


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(..., min_length=1, max_length=500)


class Knock:
    """What the routes share: links (DB), the live relay, per-link rate limits."""

    def __init__(self, server):
        self.server = server
        self.links = Links(server.cfg, server.db)
        self.relay = Relay()
        self.per_link = RateLimiter(10.0, 80)  # requests per link: positions, chat, ICE


def _knock(request: Request) -> Knock:
    return request.app.state.knock


def _changed(k: Knock, incident_id: int, what: str) -> None:
    """The dashboard's list and map refresh on `incident` events."""
    k.server.hub.publish("incident", {"id": incident_id, "school_id": None, "knock": what})


# -- the dispatcher's side -----------------------------------------------------------------------

@router.post("/api/knock")
async def send_link(request: Request, body: KnockIn, who: Dispatcher) -> dict:
    """Open a silent-caller incident for a phone (or reach an AML incident's caller) and text
    it a one-time link through the configured SMS gateway."""
    k = _knock(request)
    inc, link_id, token = await run_in_threadpool(k.links.create, who, body.msisdn,
                                                  body.incident_id)
    base = k.server.cfg.public_url or str(request.base_url)
    url = f"{base.rstrip('/')}/k/{token}"
    to = inc["caller_msisdn"]
    r = await k.server.gateway.send(to, sms_text(url))
    metrics.SMS_SENT.labels("knock", "sent" if r.ok else "failed").inc()
    await run_in_threadpool(k.links.note_sms, inc["id"], link_id, to, r.ok, r.ref, r.error)
    logs.event("knock_link_sent", incident=inc["id"], link=link_id, to=to, ok=r.ok)
    _changed(k, inc["id"], "link")
    return {"incident": inc, "link_id": link_id, "sms": {"ok": r.ok, "ref": r.ref,
                                                          "error": r.error}}


@router.get("/api/incidents/{incident_id}/knock")
async def desk_view(request: Request, incident_id: RowId, who: CurrentOperator) -> dict:
    k = _knock(request)
    out = await run_in_threadpool(k.links.desk_view, who, incident_id)
    out["video"] = k.relay.video_out(incident_id)
    return out


@router.post("/api/incidents/{incident_id}/knock/chat")
async def desk_chat(request: Request, incident_id: RowId, body: ChatIn, who: Dispatcher) -> dict:
    k = _knock(request)
    await run_in_threadpool(k.links.desk_view, who, incident_id)  # visible to this operator
    line = await run_in_threadpool(k.links.chat, incident_id, "desk", body.text, who)
    k.relay.publish(incident_id, "caller", "chat", line)
    k.relay.publish(incident_id, "desk", "chat", line)
    _changed(k, incident_id, "chat")
    return line


@router.post("/api/incidents/{incident_id}/knock/signal")
async def desk_signal(request: Request, incident_id: RowId, who: Dispatcher) -> dict:
    k = _knock(request)
    await run_in_threadpool(k.links.desk_view, who, incident_id)
    k.relay.desk_signal(incident_id, await _json(request))
    return {"ok": True}


@router.get("/api/incidents/{incident_id}/knock/live")
async def desk_live(request: Request, incident_id: RowId, who: CurrentOperator):
    k = _knock(request)
    await run_in_threadpool(k.links.desk_view, who, incident_id)
    still_open = lambda: _open(k, incident_id)  # noqa: E731
    return StreamingResponse(k.relay.stream(incident_id, "desk", still_open),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _open(k: Knock, incident_id: int) -> bool:
    from urelief.registry.models import Incident
    from urelief.server.knock import OPEN

    with k.server.db.session() as s:
        inc = s.get(Incident, incident_id)
        return inc is not None and inc.status in OPEN


# -- the caller's side -----------------------------------------------------------------------------

async def _view(request: Request, token: str, claim: bool = False) -> LinkView:
    k = _knock(request)
    view = await run_in_threadpool(k.links.resolve, token, request.cookies.get(HOLDER_COOKIE),
                                   claim)
    if not claim and not k.per_link.allow(str(view.link_id)):
        raise Throttled("slow down")
    return view


async def _json(request: Request) -> dict:
    raw = await request.body()
    if len(raw) > BODY_MAX:
        raise Invalid("body too large", [{"field": "body", "message": f"at most {BODY_MAX} B"}])
    try:
        body = json.loads(raw)
    except ValueError:
        raise Invalid("not JSON", [{"field": "body", "message": "a JSON object"}]) from None
    if not isinstance(body, dict):
        raise Invalid("not an object", [{"field": "body", "message": "a JSON object"}])
    return body


@router.get("/k/{token}", include_in_schema=False)
async def page(request: Request, token: str) -> Response:
    try:
        view = await _view(request, token, claim=True)
    except Gone:
        return HTMLResponse(NOTHING, 404, headers=PAGE_HEADERS)
    resp = HTMLResponse((PAGE / "index.html").read_text(), headers=PAGE_HEADERS)
    if view.holder is not None:  # this phone now holds the link
        resp.set_cookie(HOLDER_COOKIE, view.holder, path=f"/k/{token}", httponly=True,
                        samesite="lax", secure=request.url.scheme == "https",
                        max_age=int(_knock(request).server.cfg.knock_link_max_s))
    k = _knock(request)
    k.relay.publish(view.incident_id, "desk", "seen", {})
    return resp


@router.post("/k/{token}/hello", include_in_schema=False)
async def caller_hello(request: Request, token: str) -> dict:
    """The page (re)started: chat so far, quick replies, ICE servers. Any earlier video is
    gone with the old page, so the desk is told."""
    k = _knock(request)
    view = await _caller(request, token)
    if k.relay.video.get(view.incident_id) is not None:
        k.relay.caller_signal(view.incident_id, {"type": "stopped"})
    k.relay.publish(view.incident_id, "desk", "seen", {})
    return await run_in_threadpool(k.links.caller_view, view)


@router.post("/k/{token}/ping", include_in_schema=False)
async def caller_ping(request: Request, token: str) -> dict:
    """The page is still open (every 15 s): the desk's "page last seen"."""
    k = _knock(request)
    view = await _caller(request, token)
    k.relay.publish(view.incident_id, "desk", "seen", {})
    return {"ok": True}


@router.post("/k/{token}/position", include_in_schema=False)
async def caller_position(request: Request, token: str) -> dict:
    k = _knock(request)
    view = await _caller(request, token)
    fix = await run_in_threadpool(k.links.position, view, await _json(request))
    k.relay.publish(view.incident_id, "desk", "position", fix)
    _changed(k, view.incident_id, "position")
    return {"ok": True}


@router.post("/k/{token}/chat", include_in_schema=False)
async def caller_chat(request: Request, token: str) -> dict:
    k = _knock(request)
    view = await _caller(request, token)
    body = await _json(request)
    line = await run_in_threadpool(k.links.chat, view.incident_id, "caller", body.get("text"))
    k.relay.publish(view.incident_id, "desk", "chat", line)
    k.relay.publish(view.incident_id, "caller", "chat", line)
    _changed(k, view.incident_id, "chat")
    return line


@router.post("/k/{token}/signal", include_in_schema=False)
async def caller_signal(request: Request, token: str) -> dict:
    k = _knock(request)
    view = await _caller(request, token)
    k.relay.caller_signal(view.incident_id, await _json(request))
    return {"ok": True}


@router.get("/k/{token}/live", include_in_schema=False)
async def caller_live(request: Request, token: str):
    k = _knock(request)
    view = await _caller(request, token)

    def still_open() -> bool:
        if k.links.alive(view.link_id):
            return True
        k.relay.forget(view.incident_id)
        return False

    return StreamingResponse(k.relay.stream(view.incident_id, "caller", still_open),
                             media_type="text/event-stream",
                             headers={**PAGE_HEADERS, "X-Accel-Buffering": "no"})


async def _caller(request: Request, token: str) -> LinkView:
    try:
        return await _view(request, token)
    except Gone:
        raise NotFound("") from None  # the same answer for every dead link


def install(app: FastAPI, server) -> None:
    app.state.knock = Knock(server)
    app.include_router(router)
    app.mount("/k/static", StaticFiles(directory=PAGE / "static"), name="knock-static")
