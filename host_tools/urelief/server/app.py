"""The police server's app factory: registry API, incidents API, live stream, gateway webhooks,
UDP ingest, dashboard, /metrics and /healthz — one process, one event loop, one writer thread.

    app = create_app(ServerConfig.from_env(db_url=…, udp=("0.0.0.0", 7420)))
    uvicorn.run(app, …)          # or `urelief server`
"""

from __future__ import annotations

import asyncio
import functools
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from urelief.registry import migrate
from urelief.registry.db import Database
from urelief.registry.keys import ServerKey
from urelief.registry.service import Registry
from urelief.server import api_incidents, api_knock, api_registry, apidoc, guard, logs, webhooks
from urelief.server.config import ServerConfig
from urelief.server.delivery import Delivery
from urelief.server.devices import DeviceCache
from urelief.server.gateways import make_gateway
from urelief.server.ingest import Ingest
from urelief.server.live import LiveHub
from urelief.server.notify import Notifier
from urelief.server.sms import SmsGateway

DASHBOARD = Path(__file__).with_name("dashboard")
LEAFLET = DASHBOARD / "node_modules" / "leaflet" / "dist"


@dataclass
class Server:
    cfg: ServerConfig
    db: Database
    registry: Registry
    cache: DeviceCache
    hub: LiveHub
    ingest: Ingest
    notifier: Notifier
    gateway: SmsGateway
    cells: Any = None  # cells.CellLocations, when a cell file is configured
    udp_transport: Any = None  # udp.UdpEndpoint
    udp_addr: tuple | None = None
    delivery: Delivery | None = None  # pending downlinks, repeated until confirmed


def build(cfg: ServerConfig, gateway: SmsGateway | None = None) -> Server:
    db = Database(cfg.db_url)
    registry = Registry(db, ServerKey.load_or_create())
    cache = DeviceCache(db, registry.server_key)
    registry.device_listeners.append(cache.forget)  # registry changes hold at once
    hub = LiveHub()
    gateway = gateway or make_gateway(cfg.sms_gateway)
    ingest = Ingest(cfg, db, cache, hub)
    notifier = Notifier(cfg, db, cache, gateway, ingest, hub)
    ingest.on_opened = notifier.incident_opened
    cells = None
    if cfg.cell_locations:
        from urelief.server.cells import CellLocations

        cells = CellLocations.load(cfg.cell_locations)
    server = Server(cfg, db, registry, cache, hub, ingest, notifier, gateway, cells)
    server.delivery = ingest.delivery = Delivery(cfg, db, cache, ingest, notifier)
    return server


async def _gateway_inbound(server: Server, sender: str, payload: bytes | str) -> dict:
    """An SMS the gateway received itself (modem +CMT/+CMTI, simulator network). -> the
    ingest's answer; reason "internal_error": not stored, keep the SMS and try again."""
    from fastapi import HTTPException

    try:
        return await webhooks.handle_sms(server, sender, payload)
    except HTTPException as e:  # an unusable AML message: counted and logged already
        logs.event("sms_inbound_rejected", sender=sender, detail=str(e.detail))
        return {"status": "rejected", "reason": "unusable"}


def tile_origin(tile_url: str) -> str | None:
    """The CSP source for a tile URL template: scheme://host, `{s}` subdomains as `*`."""
    from urllib.parse import urlsplit

    u = urlsplit(tile_url.replace("{s}", "tiles-s"))
    if u.scheme not in ("http", "https") or not u.hostname:
        return None
    host = u.netloc.replace("tiles-s", "*")
    return f"{u.scheme}://{host}"


def dashboard_csp(cfg: ServerConfig) -> str:
    """No inline script or style, nothing from elsewhere but the map tiles."""
    img = " ".join(x for x in ("'self'", "data:", tile_origin(cfg.tile_url or "")) if x)
    return ("default-src 'none'; script-src 'self'; style-src 'self'; "
            f"img-src {img}; connect-src 'self'; font-src 'self'; media-src 'self'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")


class SecurityHeaders:
    """ASGI middleware (not BaseHTTPMiddleware: the live stream passes through untouched):
    every response is never framed (clickjacking), not sniffed, sends no referrer; the
    dashboard gets its CSP, the API (JSON) one that allows nothing; /docs keeps its own."""

    def __init__(self, app, cfg: ServerConfig):
        self.app = app
        common = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                  (b"referrer-policy", b"no-referrer")]
        csp = b"content-security-policy"
        self.page = common + [(csp, dashboard_csp(cfg).encode())]
        self.api = common + [(csp, b"default-src 'none'; frame-ancestors 'none'; "
                                   b"base-uri 'none'")]
        self.docs = common

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        extra = (self.page if path == "/" or path.startswith(("/dashboard", "/vendor"))
                 else self.docs if path.startswith(("/docs", "/redoc", "/openapi"))
                 else self.api)

        async def send_with(msg):
            if msg["type"] == "http.response.start":
                have = {k.lower() for k, _ in msg.get("headers", [])}
                msg["headers"] = list(msg.get("headers", [])) + [
                    (k, v) for k, v in extra if k not in have]
            await send(msg)

        return await self.app(scope, receive, send_with)


def create_app(cfg: ServerConfig | None = None, *, gateway: SmsGateway | None = None,
               migrate_db: bool = True) -> FastAPI:
    cfg = cfg or ServerConfig.from_env()
    if migrate_db:
        migrate.upgrade(cfg.db_url)
    server = build(cfg, gateway)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from urelief.server import gcsettle, udp

        loop = asyncio.get_running_loop()
        server.hub.loop = loop
        server.ingest.start(loop)
        if cfg.udp is not None:
            endpoint = await udp.serve(server.ingest, *cfg.udp)
            server.udp_transport = server.notifier.udp = endpoint
            server.udp_addr = endpoint.addr
        await server.gateway.start(loop, functools.partial(_gateway_inbound, server))
        server.notifier.start(loop)
        await server.delivery.start(loop)
        logs.event("server_started", udp=server.udp_addr, db=server.db.dialect,
                   http=getattr(app.state, "http_addr", None), gateway=server.gateway.name)
        if cfg.guardian_sms and server.gateway.name == "log":
            logs.event("guardian_sms_without_gateway", level=30, gateway="log",
                       detail="guardian SMS are on but no SMS gateway is configured: nothing "
                              "will reach a guardian (set --sms-gateway)")
        gcsettle.settle()  # started: what lives now lives as long as the server
        try:
            yield
        finally:
            await server.delivery.stop()
            await server.notifier.stop()
            if server.udp_transport is not None:
                server.udp_transport.close()
            await asyncio.to_thread(server.ingest.stop)
            await server.gateway.close()
            server.db.dispose()

    app = FastAPI(title="U-Relief police server", version="1", lifespan=lifespan,
                  description="Verified SOS ingest, subscriber registry, incidents, live dashboard.")
    app.state.server = server
    app.state.allowed_origins = cfg.allowed_origins  # registry.auth's CSRF check
    app.add_middleware(guard.BodyLimit, max_bytes=cfg.max_body_bytes)
    guard.announce(cfg)
    app.add_middleware(SecurityHeaders, cfg=cfg)
    api_registry.install(app, server.registry)
    app.include_router(api_incidents.router)
    app.include_router(webhooks.router)
    api_knock.install(app, server)
    apidoc.install(app)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> JSONResponse:
        ok_db = True
        try:
            with server.db.engine.connect() as c:
                c.execute(text("SELECT 1"))
        except Exception:
            ok_db = False
        writer = server.ingest.writer.status()
        ok = ok_db and writer["alive"]
        return JSONResponse({"ok": ok, "db": ok_db, "udp": server.udp_addr,
                             "commits": writer["commits"], "rows": writer["rows"],
                             "writer": writer, "rejections": server.ingest.rejections,
                             "sms_gateway": server.gateway.health()},
                            200 if ok else 503)

    @app.get("/metrics", tags=["ops"])
    def metrics_() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    @app.get("/dashboard/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(DASHBOARD / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/dashboard/config.json", include_in_schema=False)
    def dashboard_config(request: Request) -> dict:
        return {"tile_url": cfg.tile_url, "tile_attribution": cfg.tile_attribution}

    app.mount("/dashboard/static", StaticFiles(directory=DASHBOARD / "static"), name="static")
    if LEAFLET.is_dir():
        app.mount("/vendor/leaflet", StaticFiles(directory=LEAFLET), name="leaflet")
    else:
        logs.event("leaflet_missing", level=30, path=str(LEAFLET),
                   hint="run `make setup` (npm install in host_tools/urelief/server/dashboard)")
    return app
