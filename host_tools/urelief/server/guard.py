"""HTTP guards in front of the routes.

- `BodyLimit`: an ASGI middleware that refuses a request body past its path's limit — at once
  from `Content-Length` (nothing read), or as soon as a chunked body passes it — so an anonymous
  300 MiB POST costs the server one 64 KiB read buffer, not 300 MiB.
- The machine webhooks' policy (`/sms/*` for an SMS gateway, `/aml` for AML HTTPS): an SMS
  gateway sends the shared `X-Gateway-Token`; an AML body carries its `hmac` when an AML key is
  set (it is then required). With neither configured they are off (503, and the server says so
  at start) unless the operator runs them open on purpose (`--open-webhooks`).
"""

from __future__ import annotations

import hmac
import json

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from urelief.server import logs
from urelief.server.config import ServerConfig

KIB = 1024
# Per-path body limits in bytes (longest matching prefix wins); everything else: the config's
# max_body_bytes. A roster CSV of a large school is a few MiB; an AML body is under 2 KiB.
PATH_LIMITS = {"/api/schools/": 8 * KIB * KIB, "/aml": 8 * KIB, "/sms/": 64 * KIB}


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body over {limit} bytes")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: dict[str, int] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = sorted((path_limits or PATH_LIMITS).items(), key=lambda kv: -len(kv[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.path_limits:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _reply(send, 400, "bad Content-Length")
                return
            if declared > limit:
                await _reply(send, 413, f"request body over {limit} bytes")
                return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return msg

        async def watched(msg: Message) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as e:
            if started:
                raise
            await _reply(send, 413, e.detail)


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------------------ webhooks

OFF_HINT = ("set URELIEF_GATEWAY_TOKEN (the gateway sends it as X-Gateway-Token) or "
            "URELIEF_AML_HMAC_KEY, or run them unauthenticated on purpose with --open-webhooks "
            "(URELIEF_OPEN_WEBHOOKS=1)")


def webhook_auth(cfg: ServerConfig) -> dict[str, str]:
    """How each webhook is authenticated: 'token', 'hmac', 'open' or 'off'."""
    gateway = "token" if cfg.gateway_token else "open" if cfg.open_webhooks else "off"
    aml = ("hmac" if cfg.aml_hmac_key else "token" if cfg.gateway_token
           else "open" if cfg.open_webhooks else "off")
    return {"sms": gateway, "aml": aml}


def announce(cfg: ServerConfig) -> None:
    """Say at start what the webhooks accept: off and open are both warnings."""
    auth = webhook_auth(cfg)
    off = sorted(k for k, v in auth.items() if v == "off")
    opened = sorted(k for k, v in auth.items() if v == "open")
    if off:
        logs.event("webhooks_off", level=30, webhooks=off, hint=OFF_HINT)
    if opened:
        logs.event("webhooks_open", level=30, webhooks=opened,
                   hint="anyone who reaches this port can open incidents through them")


def _config(request: Request) -> ServerConfig:
    return request.app.state.server.cfg


def _token_ok(request: Request, cfg: ServerConfig) -> bool:
    # Kannel's get-url and dlr-url cannot set a header: the token may ride in the query.
    got = request.headers.get("x-gateway-token", "") or (
        request.query_params.get("token", "") if request.url.path.startswith("/sms/kannel/")
        else "")
    return bool(cfg.gateway_token) and hmac.compare_digest(got.encode(), cfg.gateway_token.encode())


def require_gateway(request: Request) -> None:
    """FastAPI dependency for an SMS gateway's webhooks (inbound messages, delivery reports)."""
    cfg = _config(request)
    mode = webhook_auth(cfg)["sms"]
    if mode == "off":
        raise HTTPException(503, "SMS gateway webhooks are off: " + OFF_HINT)
    if mode == "token" and not _token_ok(request, cfg):
        raise HTTPException(401, "bad or missing X-Gateway-Token")


def aml_refusal(request: Request, authenticated: bool | None) -> tuple[int, str, str] | None:
    """(status, reason, detail) if this AML HTTPS body may not be used, else None.
    `authenticated`: the body's hmac checked (True/False), None when it carries none."""
    cfg = _config(request)
    mode = webhook_auth(cfg)["aml"]
    if mode == "off":
        return 503, "webhooks_off", "AML webhook is off: " + OFF_HINT
    if mode == "hmac" and authenticated is not True:
        if authenticated is None:
            return 401, "no_hmac", "an AML key is configured: the body must carry its hmac"
        return 401, "bad_hmac", "the body's hmac does not match"
    if mode == "token" and not _token_ok(request, cfg):
        return 401, "bad_token", "bad or missing X-Gateway-Token"
    return None
