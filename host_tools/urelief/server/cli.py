"""`urelief server`: run the police server (embedded SQLite under ./var/ by default)."""

from __future__ import annotations

import json
import socket
import sys

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError

from urelief.registry.db import DatabaseInUse, hold_single_server, normalize_url
from urelief.server.config import ServerConfig, parse_hostport


@click.command("server")
@click.option("--db", "db_url", envvar="URELIEF_DB_URL", default=None,
              help="database URL (default: SQLite at var/urelief.db)")
@click.option("--udp", default="127.0.0.1:7420", show_default=True,
              help="UDP ingest HOST:PORT ('off' to disable; port 0 = any free port)")
@click.option("--http", default="127.0.0.1:8420", show_default=True,
              help="HTTP (API, dashboard, webhooks) HOST:PORT")
@click.option("--sms-gateway", default=None,
              help="log (none) | outbox | modem:/dev/ttyUSB0[@BAUD] | kannel:URL (docs/server.md)")
@click.option("--sms-language", default=None, help="guardian texts: en | ko (default en)")
@click.option("--sms-templates", default=None, type=click.Path(exists=True, dir_okay=False),
              help="JSON file of guardian text templates (docs/server.md)")
@click.option("--tile-url", default=None, help="map tile URL template; '' = no tiles (offline)")
@click.option("--guardian-sms/--no-guardian-sms", default=None,
              help="text guardians when an SOS opens an incident (default on)")
@click.option("--open-webhooks", is_flag=True, default=None,
              help="run /sms/* and /aml without authentication when URELIEF_GATEWAY_TOKEN / "
                   "URELIEF_AML_HMAC_KEY are unset (default: they are off)")
@click.option("--trusted-proxy", "trusted_proxies", multiple=True,
              help="reverse proxy address or CIDR whose X-Forwarded-For is believed "
                   "(repeatable; URELIEF_TRUSTED_PROXIES, comma-separated; default none)")
@click.option("--migrate", "migrate_db", is_flag=True,
              help="upgrade the database schema to this server's first (default: refuse to "
                   "start on another schema; `urelief registry migrate` is the explicit step)")
@click.option("--log-level", default="INFO", show_default=True)
def server_cmd(db_url, udp, http, sms_gateway, sms_language, sms_templates, tile_url,
               guardian_sms, open_webhooks, trusted_proxies, migrate_db, log_level) -> None:
    """Verified UDP/SMS ingest, registry and incident API, live dashboard, /metrics."""
    import uvicorn

    from urelief.server import logs
    from urelief.server.app import create_app

    logs.setup(log_level.upper())
    # The loop shares the GIL with the writer and gateway threads: hand it over after 1 ms
    # rather than CPython's 5 ms, so a waiting thread does not add 5 ms to an ack.
    sys.setswitchinterval(0.001)
    try:
        cfg = ServerConfig.from_env(
            db_url=db_url, sms_gateway=sms_gateway, sms_language=sms_language,
            sms_templates=sms_templates, tile_url=tile_url, guardian_sms=guardian_sms,
            udp=None if udp == "off" else parse_hostport(udp), open_webhooks=open_webhooks,
            trusted_proxies=tuple(trusted_proxies) or None)
        host, port = parse_hostport(http)
    except ValueError as e:
        raise click.ClickException(f"bad address or setting: {e}") from None
    try:
        lock = hold_single_server(cfg.db_url)  # noqa: F841  held until the process exits
    except DatabaseInUse as e:
        raise click.ClickException(str(e)) from None
    sock = _listen("HTTP", socket.SOCK_STREAM, host, port)
    sock.listen(512)
    if cfg.udp is not None:  # bound for real at start-up; a bad address or a taken port now
        _listen("UDP", socket.SOCK_DGRAM, *cfg.udp).close()
    try:
        _schema_ready(cfg.db_url, migrate_db)
        app = create_app(cfg, migrate_db=False)
    except (OperationalError, InterfaceError) as e:
        where = make_url(normalize_url(cfg.db_url)).render_as_string(hide_password=True)
        first = str(getattr(e, "orig", e) or e).strip().splitlines()[0]
        raise click.ClickException(f"database unreachable ({where}): {first}") from None
    app.state.http_addr = sock.getsockname()[:2]
    server = app.state.server

    # X-Forwarded-* only from the configured proxies (uvicorn would trust loopback by default).
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                            proxy_headers=bool(cfg.trusted_proxies),
                            forwarded_allow_ips=list(cfg.trusted_proxies) or [])
    uv = uvicorn.Server(config)

    orig_startup = uv.startup

    async def startup(sockets=None):
        await orig_startup(sockets=sockets)
        # One line on stdout for scripts and tests: where we listen (ports may have been 0).
        print(json.dumps({"event": "listening", "http": list(app.state.http_addr),
                          "udp": list(server.udp_addr) if server.udp_addr else None}), flush=True)

    uv.startup = startup
    try:
        uv.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    sys.exit(0)


def _schema_ready(url: str, upgrade: bool) -> None:
    """The schema this server was written for, or a one-line refusal: migrations are an
    operator's step (`urelief registry migrate`), not a side effect of starting."""
    from urelief.registry import migrate

    if upgrade:
        migrate.upgrade(url)
        return
    have, want = migrate.current(url), migrate.head()
    if have != want:
        raise click.ClickException(
            f"database schema is {have or 'empty'}, this server needs {want}: run "
            "`urelief registry migrate` first (or start with --migrate)")


def _listen(what: str, kind: int, host: str, port: int) -> socket.socket:
    """A bound socket, or a one-line error naming the address (taken, not ours, no such host)."""
    try:
        family = socket.getaddrinfo(host, port, type=kind)[0][0]
        sock = socket.socket(family, kind)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        raise click.ClickException(f"cannot listen on {what} {host}:{port}: "
                                   f"{e.strerror or e}") from None
    return sock
