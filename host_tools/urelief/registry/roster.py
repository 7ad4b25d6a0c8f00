"""Roster CSV: a school's pupils, their guardians and the consent form, one pupil per row.

Columns (header row required, order free, UTF-8 with or without BOM):
  pupil_ref*, full_name*, class_name, birth_year, responder_notes,
  guardian1_name*, guardian1_phone*, guardian1_relation, guardian1_notify (sms|call|none),
  guardian2_… and guardian3_… likewise (optional),
  consent_given_by*, consent_date* (YYYY-MM-DD), consent_scopes (";"-separated, default
  "registry;location")
`parse` checks every row and returns all errors (row = line number, header = 1); `apply` writes
rows known to be valid. Re-importing the same file changes nothing (pupils match on pupil_ref).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from urelief.registry.models import Consent, Guardian, NotifyPref, Subscriber

MAX_ROWS = 20_000
MAX_GUARDIANS = 3
CONSENT_SCOPES = frozenset({"registry", "location", "guardian_sms", "silent_call"})
DEFAULT_SCOPES = "registry;location"
_GUARDIAN_COLS = ("name", "phone", "relation", "notify")
COLUMNS = (
    ["pupil_ref", "full_name", "class_name", "birth_year", "responder_notes"]
    + [f"guardian{i}_{c}" for i in range(1, MAX_GUARDIANS + 1) for c in _GUARDIAN_COLS]
    + ["consent_given_by", "consent_date", "consent_scopes"]
)
REQUIRED_COLUMNS = ("pupil_ref", "full_name", "guardian1_name", "guardian1_phone",
                    "consent_given_by", "consent_date")
_PHONE_PUNCT = str.maketrans("", "", " -().")


def normalize_phone(raw: str, country_code: str = "") -> str:
    """-> E.164 ("+821012345678"). National numbers ("010-1234-5678") need `country_code`."""
    p = raw.strip().translate(_PHONE_PUNCT)
    if p.startswith("00"):
        p = "+" + p[2:]
    elif p.startswith("0") and country_code:
        p = "+" + country_code.lstrip("+") + p[1:]
    if not p.startswith("+"):
        raise ValueError("use the international form +<country><number>")
    digits = p[1:]
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        raise ValueError("8 to 15 digits after +")
    return p


def parse_date(raw: str) -> datetime:
    try:
        d = datetime.strptime(raw.strip()[:10], "%Y-%m-%d")
    except ValueError:
        raise ValueError("date as YYYY-MM-DD") from None
    return d.replace(tzinfo=UTC)


def _text(data: dict, key: str, limit: int, errors: list, row: int | None,
          required: bool = False) -> str | None:
    v = data.get(key)
    if v is None:
        if required:
            errors.append(_err(row, key, "required"))
        return None
    v = str(v).strip()
    if required and not v:
        errors.append(_err(row, key, "required"))
    elif len(v) > limit:
        errors.append(_err(row, key, f"longer than {limit} characters"))
    return v


def _err(row: int | None, field: str, message: str) -> dict[str, Any]:
    return {"field": field, "message": message} if row is None else {
        "row": row, "field": field, "message": message}


def subscriber_fields(data: dict, errors: list, *, partial: bool, row: int | None = None,
                      prefix: str = "") -> dict:
    """Validated Subscriber columns from `data`; problems appended to `errors`."""
    out: dict[str, Any] = {}
    for key, limit, required in (("pupil_ref", 64, True), ("full_name", 200, True),
                                 ("class_name", 32, False), ("responder_notes", 2000, False)):
        if partial and key not in data:
            continue
        v = _text(data, prefix + key, limit, errors, row, required=required)
        if v is not None:
            out[key] = v
    if not partial or "birth_year" in data:
        raw = data.get(prefix + "birth_year")
        if raw in (None, ""):
            out["birth_year"] = None
        else:
            try:
                year = int(str(raw).strip())
                if not 1900 <= year <= datetime.now(UTC).year:
                    raise ValueError
                out["birth_year"] = year
            except ValueError:
                errors.append(_err(row, "birth_year", "a year like 2015"))
    return out


def guardian_fields(data: dict, errors: list, *, priority: int, row: int | None = None,
                    prefix: str = "", country_code: str = "") -> dict:
    out: dict[str, Any] = {"priority": priority}
    out["name"] = _text(data, prefix + "name", 200, errors, row, required=True)
    phone = _text(data, prefix + "phone", 32, errors, row, required=True)
    if phone:
        try:
            out["phone"] = normalize_phone(phone, country_code)
        except ValueError as e:
            errors.append(_err(row, prefix + "phone", str(e)))
    out["relation"] = _text(data, prefix + "relation", 32, errors, row) or ""
    notify = (data.get(prefix + "notify") or "sms").strip().lower()
    try:
        out["notify"] = NotifyPref(notify)
    except ValueError:
        errors.append(_err(row, prefix + "notify", "one of sms, call, none"))
    return out


def parse(csv_text: str, country_code: str = "") -> tuple[list[dict], list[dict]]:
    """-> (valid rows, errors). Any error means the caller must import nothing."""
    errors: list[dict] = []
    reader = csv.DictReader(io.StringIO(csv_text.lstrip("\ufeff"), newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        return [], [_err(1, "", "empty file: a header row is required")]
    reader.fieldnames = header
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    for h in unknown:
        errors.append(_err(1, h, "unknown column"))
    for c in missing:
        errors.append(_err(1, c, "required column missing"))
    if errors:
        return [], errors

    rows: list[dict] = []
    seen: dict[str, int] = {}
    for rec in reader:
        line = reader.line_num
        if None in rec:
            errors.append(_err(line, "", "more fields than the header"))
            continue
        if not any((v or "").strip() for v in rec.values()):
            continue  # blank line
        if len(rows) >= MAX_ROWS:
            errors.append(_err(line, "", f"more than {MAX_ROWS} rows: split the file"))
            break
        row_errors: list[dict] = []
        sub = subscriber_fields(rec, row_errors, partial=False, row=line)
        guardians = []
        for i in range(1, MAX_GUARDIANS + 1):
            p = f"guardian{i}_"
            if i > 1 and not any((rec.get(p + c) or "").strip() for c in _GUARDIAN_COLS):
                continue
            guardians.append(guardian_fields(rec, row_errors, priority=i, row=line, prefix=p,
                                             country_code=country_code))
        consent = _consent(rec, row_errors, line)
        ref = sub.get("pupil_ref")
        if ref:
            if ref in seen:
                row_errors.append(_err(line, "pupil_ref", f"duplicate of row {seen[ref]}"))
            else:
                seen[ref] = line
        errors.extend(row_errors)
        if not row_errors:
            rows.append({"line": line, "subscriber": sub, "guardians": guardians,
                         "consent": consent})
    if not rows and not errors:
        errors.append(_err(1, "", "no pupils in the file"))
    return rows, errors


def _consent(rec: dict, errors: list, line: int) -> dict:
    given_by = _text(rec, "consent_given_by", 200, errors, line, required=True)
    given_at = None
    raw = (rec.get("consent_date") or "").strip()
    if not raw:
        errors.append(_err(line, "consent_date", "required"))
    else:
        try:
            given_at = parse_date(raw)
        except ValueError as e:
            errors.append(_err(line, "consent_date", str(e)))
        else:
            if given_at > datetime.now(UTC):
                errors.append(_err(line, "consent_date", "in the future"))
    scopes = [s.strip() for s in (rec.get("consent_scopes") or DEFAULT_SCOPES).split(";")]
    scopes = [s for s in scopes if s]
    bad = [s for s in scopes if s not in CONSENT_SCOPES]
    if bad or not scopes:
        errors.append(_err(line, "consent_scopes",
                           f"unknown scope {bad}; use {sorted(CONSENT_SCOPES)}"))
    return {"given_by": given_by, "given_at": given_at, "scopes": scopes}


def apply(s: Session, school_id: int, rows: list[dict], recorded_by: int | None) -> dict:
    """Write validated rows in the caller's transaction. -> counts."""
    existing = {
        sub.pupil_ref: sub
        for sub in s.scalars(
            select(Subscriber)
            .where(Subscriber.school_id == school_id)
            .options(selectinload(Subscriber.guardians), selectinload(Subscriber.consents))
        )
    }
    created = updated = unchanged = 0
    for row in rows:
        fields = row["subscriber"]
        sub = existing.get(fields["pupil_ref"])
        if sub is None:
            s.add(Subscriber(school_id=school_id, **fields,
                             guardians=[Guardian(**g) for g in row["guardians"]],
                             consents=_new_consents(row["consent"], set(), recorded_by)))
            created += 1
            continue
        changed = _set_fields(sub, fields)
        changed |= _replace_guardians(sub, row["guardians"])
        # The same form (signer, date) withdrawn since is not given again by re-importing the
        # file (a batch re-run does): a new consent is a new form with its own date.
        added = _new_consents(row["consent"], {(c.scope, c.given_by, c.given_at)
                                               for c in sub.consents}, recorded_by)
        sub.consents.extend(added)
        changed |= bool(added)
        updated += changed
        unchanged += not changed
    s.flush()
    return {"rows": len(rows), "created": created, "updated": updated, "unchanged": unchanged}


def _set_fields(obj: Any, fields: dict) -> bool:
    changed = False
    for k, v in fields.items():
        if getattr(obj, k) != v:
            setattr(obj, k, v)
            changed = True
    return changed


def _replace_guardians(sub: Subscriber, guardians: list[dict]) -> bool:
    current = [(g.name, g.phone, g.relation, g.notify, g.priority) for g in sub.guardians]
    wanted = [(g["name"], g["phone"], g["relation"], g["notify"], g["priority"]) for g in guardians]
    if current == wanted:
        return False
    sub.guardians[:] = [Guardian(**g) for g in guardians]  # old ones go (delete-orphan)
    return True


def _new_consents(consent: dict, have: set, recorded_by: int | None) -> list[Consent]:
    return [Consent(scope=scope, given_by=consent["given_by"], given_at=consent["given_at"],
                    recorded_by=recorded_by, evidence="roster import")
            for scope in consent["scopes"]
            if (scope, consent["given_by"], consent["given_at"]) not in have]
