"""FastAPI dependencies: who is calling, and may they.

    from urelief.registry.auth import current_operator, require_role
    @router.post("/incidents/{id}/ack")
    def ack(id: int, who: Annotated[Actor, Depends(require_role(Role.DISPATCHER, Role.ADMIN))]):

The app must hold a `Registry` at `app.state.registry` (see `urelief.server.api_registry.install`).
The token comes from `Authorization: Bearer urt_…`, else the `urelief_token` cookie (set by
POST /api/auth/login, so the dashboard's EventSource/WebSocket is authenticated too).
Failures answer 401/403 and leave an audit entry; a source address that keeps failing gets 429
(see `Registry._auth_failure`: its audit rows are then summarised, one a minute).

Cross-site request forgery: a write (any method but GET/HEAD/OPTIONS) authenticated by the
cookie alone must come from the server's own origin — its `Origin` (else `Referer`) is the
request's own scheme://host:port or one of `app.state.allowed_origins` — else 403. SameSite
does not cover this: a page on another port of the same host is the same site. A bearer header
is never sent by a browser on its own, so requests carrying one are not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from urelief.registry.audit import Actor
from urelief.registry.errors import Throttled
from urelief.registry.models import Role
from urelief.registry.service import Registry

TOKEN_COOKIE = "urelief_token"
_bearer = HTTPBearer(auto_error=False, description="an operator token: urt_<key id>_<secret>")


def get_registry(request: Request) -> Registry:
    registry = getattr(request.app.state, "registry", None)
    if registry is None:
        raise RuntimeError("app.state.registry is not set (use api_registry.install)")
    return registry


def client_addr(request: Request | WebSocket) -> str:
    return request.client.host if request.client else ""


def request_token(request: Request | WebSocket) -> str:
    """The bearer token from the Authorization header, else the `urelief_token` cookie."""
    scheme, value = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and value:
        return value
    return request.cookies.get(TOKEN_COOKIE, "")


RegistryDep = Annotated[Registry, Depends(get_registry)]


def current_operator(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    registry: RegistryDep,
) -> Actor:
    del creds  # declared for the OpenAPI security scheme; read below with the cookie fallback
    token = request_token(request)
    if request.method not in SAFE_METHODS and not _has_bearer(request) and token:
        refusal = cross_site(request)
        if refusal:
            raise HTTPException(status.HTTP_403_FORBIDDEN, refusal)
    actor = registry.authenticate(token, client_addr(request), what=_what(request))
    if actor is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing, unknown, expired or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return actor


def websocket_operator(ws: WebSocket) -> Actor | None:
    """For WebSocket handlers: the actor from the cookie or `?token=`, or None (close 1008)."""
    registry: Registry = ws.app.state.registry
    token = ws.cookies.get(TOKEN_COOKIE) or ws.query_params.get("token", "")
    try:
        return registry.authenticate(token, client_addr(ws), what="websocket " + ws.url.path)
    except Throttled:
        return None


CurrentOperator = Annotated[Actor, Depends(current_operator)]  # any authenticated operator


def require_role(*roles: Role | str) -> Callable[..., Actor]:
    allowed = frozenset(Role(r) for r in roles)

    def dependency(
        request: Request,
        actor: Annotated[Actor, Depends(current_operator)],
        registry: RegistryDep,
    ) -> Actor:
        if actor.role not in allowed:
            registry.audit_denied(
                actor, "http.denied", detail={"request": _what(request), "needs": sorted(allowed)}
            )
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {actor.role} may not do this (needs one of: {', '.join(sorted(allowed))})",
            )
        return actor

    return dependency


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _has_bearer(request: Request) -> bool:
    scheme, value = get_authorization_scheme_param(request.headers.get("authorization"))
    return scheme.lower() == "bearer" and bool(value)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return ""
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = parts.port or default
    return f"{parts.scheme}://{host}:{port}".lower()


def cross_site(request: Request) -> str | None:
    """Why a cookie-authenticated write is refused (a reason), or None if it is same-origin."""
    sent = request.headers.get("origin") or request.headers.get("referer") or ""
    if not sent or sent == "null":
        return "cookie-authenticated write without Origin or Referer: refused (CSRF)"
    own = _origin_of(f"{request.url.scheme}://{request.headers.get('host', '')}/")
    allowed = {own} | {_origin_of(o) for o in getattr(request.app.state, "allowed_origins", ())}
    if _origin_of(sent) not in allowed:
        return f"cross-origin write from {_origin_of(sent) or sent[:80]!r} refused (CSRF)"
    return None


def _what(request: Request) -> str:
    return f"{request.method} {request.url.path}"
