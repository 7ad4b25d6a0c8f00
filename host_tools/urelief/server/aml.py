"""Advanced Mobile Location (ETSI TS 103 625) intake: phones' SMS v1/v2 and HTTPS bodies.

A phone dialling 112 sends its position as an SMS (`A"ML=1;lt=…;ml=126`) or an HTTPS POST
(`v=1&location_latitude=…`). Parsing is lenient where real senders are sloppy: the `ml` length
field is often off by one or two (even in Google's own example), and old UK-style senders drop the
double quote (`AML=1`). Those give warnings, never a rejection. A message without a usable header
or position fields is rejected with a reason (`AmlError.reason`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from urelief.sms.pdu import septets_text, unpack_septets

# pm (v1) / ls / location_source (v2, HTTPS) → one vocabulary.
_METHODS = {"G": "gnss", "W": "wifi", "C": "cell", "N": "none", "GPS": "gnss", "WIFI": "wifi",
            "CELL": "cell", "FUSED": "fused", "F": "fused"}


class AmlError(ValueError):
    """Not an AML message we can use; `reason` is a short machine-readable word."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class AmlLocation:
    """One phone's emergency location, whatever the AML form it came in."""

    version: int
    transport: str  # "sms" | "https"
    lat: float | None  # degrees WGS84; None when the phone had no location
    lon: float | None
    accuracy_m: float | None  # radius at the stated confidence (lc)
    confidence_pct: int | None
    method: str  # gnss | wifi | cell | fused | none | unknown
    time: datetime | None  # UTC time of the position
    imei: str | None = None
    imsi: str | None = None
    msisdn: str | None = None  # caller's number (v2 `en`, HTTPS `device_number`)
    mcc: str | None = None
    mnc: str | None = None
    authenticated: bool | None = None  # HTTPS hmac checked: True/False; None when no hmac
    fields: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in (
            "version", "transport", "lat", "lon", "accuracy_m", "confidence_pct", "method",
            "imei", "imsi", "msisdn", "mcc", "mnc", "authenticated", "warnings")}
        d["time"] = self.time.isoformat() if self.time else None
        return d


def gsm7_unpack(data: bytes, septets: int | None = None) -> str:
    """GSM 7-bit packed user data (no UDH) as text: an Android AML data SMS."""
    n = septets if septets is not None else len(data) * 8 // 7
    text = septets_text(unpack_septets(data, n))
    # 7 spare bits at the end of a full octet read as a trailing '@' (0x00): drop it.
    if septets is None and len(data) * 8 % 7 == 0 and text.endswith("@"):
        text = text[:-1]
    return text


def is_aml_text(text: str) -> bool:
    t = text.lstrip()
    return t.startswith('A"ML=') or t.startswith("AML=")


def parse_sms(payload: str | bytes) -> AmlLocation:
    """Parse an AML SMS: text (`A"ML=1;…`) or an Android data SMS's packed GSM-7 user data."""
    if isinstance(payload, bytes):
        try:
            text = payload.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if not is_aml_text(text):
            text = gsm7_unpack(payload)
    else:
        text = payload
    text = text.strip().rstrip("\r\n")
    if not is_aml_text(text):
        raise AmlError("not_aml", "no A\"ML= header")
    warnings: list[str] = []
    fields: dict[str, str] = {}
    for part in text.split(";"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            warnings.append(f"field without '=': {part[:20]!r}")
            continue
        fields[key.strip()] = value.strip()
    header = 'A"ML' if 'A"ML' in fields else "AML"
    if header == "AML":
        warnings.append("header without the double quote (AML= instead of A\"ML=)")
    try:
        version = int(fields.pop(header))
    except ValueError as e:
        raise AmlError("bad_version", fields.get(header, "")) from e
    if version == 1:
        loc = _sms_v1(fields, warnings)
        if "ml" in fields:
            try:
                declared = int(fields["ml"])
            except ValueError:
                declared = -1
            if declared != len(text):
                # Real senders (Google's published example among them) are off by one or two.
                warnings.append(f"ml={fields['ml']} but the message is {len(text)} characters")
        else:
            warnings.append("no ml field")
    elif version == 2:
        loc = _sms_v2(fields, warnings)
    else:
        raise AmlError("bad_version", str(version))
    loc.fields = fields
    return loc


def _float(fields: dict[str, str], key: str, warnings: list[str]) -> float | None:
    v = fields.get(key)
    if v is None or v in ("", "N"):
        return None
    try:
        return float(v)
    except ValueError:
        warnings.append(f"{key}={v!r} is not a number")
        return None


def _int(fields: dict[str, str], key: str, warnings: list[str]) -> int | None:
    f = _float(fields, key, warnings)
    return None if f is None else int(f)


def _latlon(lat: float | None, lon: float | None) -> tuple[float | None, float | None]:
    if lat is None or lon is None:
        return None, None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise AmlError("bad_position", f"{lat},{lon}")
    return lat, lon


def _sms_v1(fields: dict[str, str], warnings: list[str]) -> AmlLocation:
    if "lt" not in fields or "lg" not in fields:
        raise AmlError("no_position", "v1 needs lt and lg")
    method = _METHODS.get(fields.get("pm", "").upper(), "unknown")
    lat, lon = _latlon(_float(fields, "lt", warnings), _float(fields, "lg", warnings))
    if method == "none":
        lat = lon = None  # pm=N: the phone had no location; lt/lg are placeholders
    when = None
    top = fields.get("top", "")
    if top:
        try:
            when = datetime.strptime(top, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            warnings.append(f"top={top!r} is not YYYYMMDDhhmmss")
    return AmlLocation(
        version=1, transport="sms", lat=lat, lon=lon,
        accuracy_m=_float(fields, "rd", warnings), confidence_pct=_int(fields, "lc", warnings),
        method=method, time=when, imei=fields.get("ei"), imsi=fields.get("si"),
        mcc=fields.get("mcc"), mnc=fields.get("mnc"), warnings=warnings)


def _sms_v2(fields: dict[str, str], warnings: list[str]) -> AmlLocation:
    lo = fields.get("lo")
    if not lo:
        raise AmlError("no_position", "v2 needs lo=lat,lon,accuracy")
    parts = lo.split(",")
    try:
        lat, lon = float(parts[0]), float(parts[1])
        acc = float(parts[2]) if len(parts) > 2 and parts[2] else None
    except (ValueError, IndexError) as e:
        raise AmlError("bad_position", lo) from e
    lat, lon = _latlon(lat, lon)
    when = None
    et = _int(fields, "et", warnings)  # epoch seconds of the emergency call
    rel = _int(fields, "lt", warnings)  # location time relative to et, s; -9999 unknown
    if et is not None:
        when = datetime.fromtimestamp(et + (rel if rel not in (None, -9999) else 0), UTC)
    nc = fields.get("nc", "")
    return AmlLocation(
        version=2, transport="sms", lat=lat, lon=lon, accuracy_m=acc,
        confidence_pct=_int(fields, "lc", warnings),
        method=_METHODS.get(fields.get("ls", "").upper(), "unknown"), time=when,
        imei=fields.get("ei"), msisdn=fields.get("en"), mcc=nc[:3] or None, mnc=nc[3:] or None,
        warnings=warnings)


def parse_https(body: bytes | str, hmac_key: bytes | None = None) -> AmlLocation:
    """Parse an AML HTTPS form body. With `hmac_key`, check its `hmac` (HMAC-SHA1, hex) over the
    raw url-encoded body before `&hmac=` (the encoded form, as the senders compute it)."""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    fields = dict(parse_qsl(raw, keep_blank_values=True))
    warnings: list[str] = []
    if "v" not in fields and "location_latitude" not in fields:
        raise AmlError("not_aml", "no v= or location_latitude=")
    try:
        version = int(fields.get("v", "1"))
    except ValueError as e:
        raise AmlError("bad_version", fields["v"]) from e
    authenticated = None
    if "hmac" in fields:
        cut = raw.rfind("&hmac=")
        if hmac_key is None:
            warnings.append("hmac present but no key configured: not checked")
        elif cut < 0:
            authenticated = False
        else:
            want = hmac.new(hmac_key, raw[:cut].encode(), hashlib.sha1).hexdigest()
            authenticated = hmac.compare_digest(want, fields["hmac"].lower())
    lat, lon = _latlon(_float(fields, "location_latitude", warnings),
                       _float(fields, "location_longitude", warnings))
    if lat is None:
        raise AmlError("no_position", "location_latitude/location_longitude missing")
    when = None
    ms = _int(fields, "location_time", warnings)  # ms since the epoch
    if ms is not None:
        when = datetime.fromtimestamp(ms / 1000, UTC)
    return AmlLocation(
        version=version, transport="https", lat=lat, lon=lon,
        accuracy_m=_float(fields, "location_accuracy", warnings),
        confidence_pct=_int(fields, "location_certainty", warnings),
        method=_METHODS.get(fields.get("location_source", "").upper(), "unknown"), time=when,
        imei=fields.get("device_imei") or None, imsi=fields.get("device_imsi") or None,
        msisdn=fields.get("device_number") or None,
        mcc=fields.get("cell_network_mcc") or None, mnc=fields.get("cell_network_mnc") or None,
        authenticated=authenticated, fields=fields, warnings=warnings)
