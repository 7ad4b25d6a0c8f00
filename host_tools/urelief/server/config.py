"""Server settings: one dataclass, filled from the command line and `URELIEF_*` environment."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path


def default_db_url() -> str:
    """Embedded SQLite under ./var/ (created on first use)."""
    var = Path(os.environ.get("URELIEF_VAR", "var"))
    var.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(var / 'urelief.db').resolve()}"


def parse_hostport(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` or `PORT`; `[::1]:PORT` for IPv6."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or default_host
    return host, int(port)


def split_list(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


@dataclass
class ServerConfig:
    db_url: str = ""
    udp: tuple[str, int] | None = ("127.0.0.1", 7420)  # device packets; None = no UDP ingest
    http: tuple[str, int] = ("127.0.0.1", 8420)
    # Group commit: the writer commits what has queued up, at most this many rows per transaction.
    commit_batch_max: int = 512
    writer_process: bool = True  # run the commits in a child process (keeps the GIL free)
    # Token buckets: per source (an IP, a phone number) before verification, so a flood of
    # forged packets cannot eat the CPU; per device after it (a stuck device cannot flood).
    source_rate_per_s: float = 2000.0
    source_burst: int = 4000
    device_rate_per_s: float = 20.0
    device_burst: int = 40
    # AML messages per phone number (SMS) or client address (HTTPS): a phone sends a handful
    # per emergency call; more is a fault or a flood, and each one writes an incident event.
    aml_rate_per_s: float = 1.0
    aml_burst: int = 20
    guardian_sms: bool = True  # text the guardians on open, dispatch, resolve / false alarm
    sms_language: str = "en"  # guardian texts: "ko" for the Korean service (guardian_text.py)
    sms_templates: str = ""  # a centre's JSON file of templates replacing built-in ones
    sms_timezone: str = ""  # for {time}; default by language (ko: Asia/Seoul, else UTC)
    # A guardian SMS that fails is tried again after 15 s, 30 s, 60 s … (at most every 10 min)
    # until the gateway takes it, and given up an hour after the event that caused it.
    # Pending downlinks (server/delivery.py): repeated over UDP this often while the device was
    # heard over UDP within downlink_awake_s (a PSM modem listens ~T3324 after its uplink).
    downlink_repeat_s: float = 10.0
    downlink_awake_s: float = 30.0
    sms_retry_base_s: float = 15.0
    sms_retry_max_s: float = 600.0
    guardian_sms_expire_s: float = 3600.0
    # Map tiles for the dashboard; empty = no tiles (offline): the map still shows the track.
    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tile_attribution: str = "&copy; OpenStreetMap contributors"
    aml_hmac_key: bytes | None = None  # AML HTTPS bodies must carry a matching `hmac` when set
    gateway_token: str | None = None  # the SMS gateway's X-Gateway-Token (webhooks)
    open_webhooks: bool = False  # run /sms/* and /aml unauthenticated when no token/key is set
    # Proxies whose X-Forwarded-For / -Proto are believed (addresses or CIDRs); none by default:
    # the client address is the TCP peer's, so a forged header cannot dodge per-address limits.
    trusted_proxies: tuple[str, ...] = ()
    max_body_bytes: int = 1024 * 1024  # request bodies past this get 413 (roster, AML: own limits)
    # Silent-caller links (server/knock.py): an unopened link dies after knock_link_ttl_s; an
    # opened one lives while its incident is open, at most knock_link_max_s. Links per number.
    knock_link_ttl_s: float = 900.0
    knock_link_max_s: float = 12 * 3600.0
    knock_links_per_number: int = 3  # burst; then one more every knock_link_refill_s
    knock_link_refill_s: float = 120.0
    public_url: str = ""  # base of the texted link (https://sos.example.org); "" = the request's
    # WebRTC ICE servers for the caller's video, as RTCPeerConnection takes them; [] = host
    # candidates only (enough when phone and dashboard reach each other directly).
    ice_servers: list = field(default_factory=list)
    # Origins (scheme://host:port) besides the server's own whose cookie-authenticated writes
    # are accepted (CSRF check); e.g. the public name a reverse proxy serves the dashboard on.
    allowed_origins: tuple[str, ...] = ()
    # Offline cell → position file (OpenCelliD CSV): places cell-only alerts on the map.
    cell_locations: str = ""
    sms_gateway: str = "log"  # log | outbox | modem:PORT[@BAUD] | kannel:URL (server/gateways.py)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides) -> ServerConfig:
        env = os.environ
        cfg = cls(
            db_url=env.get("URELIEF_DB_URL", ""),
            tile_url=env.get("URELIEF_TILE_URL", cls.tile_url),
            tile_attribution=env.get("URELIEF_TILE_ATTRIBUTION", cls.tile_attribution),
            cell_locations=env.get("URELIEF_CELL_LOCATIONS", ""),
            guardian_sms=env.get("URELIEF_GUARDIAN_SMS", "1") not in ("0", "false", "no"),
            sms_gateway=env.get("URELIEF_SMS_GATEWAY", cls.sms_gateway),
            sms_language=env.get("URELIEF_SMS_LANGUAGE", cls.sms_language),
            sms_templates=env.get("URELIEF_SMS_TEMPLATES", ""),
            sms_timezone=env.get("URELIEF_SMS_TIMEZONE", ""),
            aml_hmac_key=env["URELIEF_AML_HMAC_KEY"].encode() if env.get("URELIEF_AML_HMAC_KEY") else None,
            gateway_token=env.get("URELIEF_GATEWAY_TOKEN") or None,
            open_webhooks=_flag(env.get("URELIEF_OPEN_WEBHOOKS", "")),
            trusted_proxies=split_list(env.get("URELIEF_TRUSTED_PROXIES", "")),
            public_url=env.get("URELIEF_PUBLIC_URL", ""),
            ice_servers=_ice_servers(env.get("URELIEF_ICE_SERVERS", "")),
            allowed_origins=split_list(env.get("URELIEF_ALLOWED_ORIGINS", "")),
        )
        for name, conv in (("source_rate_per_s", float), ("source_burst", int),
                           ("device_rate_per_s", float), ("device_burst", int),
                           ("aml_rate_per_s", float), ("aml_burst", int),
                           ("max_body_bytes", int),
                           ("knock_link_ttl_s", float), ("knock_link_max_s", float),
                           ("knock_links_per_number", int), ("knock_link_refill_s", float),
                           ("sms_retry_base_s", float), ("sms_retry_max_s", float),
                           ("guardian_sms_expire_s", float)):
            if f"URELIEF_{name.upper()}" in env:
                setattr(cfg, name, conv(env[f"URELIEF_{name.upper()}"]))
        for k, v in overrides.items():
            if v is not None:
                setattr(cfg, k, v)
        if not cfg.db_url:
            cfg.db_url = default_db_url()
        return cfg


def _ice_servers(text: str) -> list:
    """`URELIEF_ICE_SERVERS`: JSON, as RTCPeerConnection's iceServers
    (`[{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "c"}]`)."""
    if not text.strip():
        return []
    servers = json.loads(text)
    if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s
                                                for s in servers):
        raise ValueError("URELIEF_ICE_SERVERS: a JSON list of {urls, username?, credential?}")
    return servers
