"""REST API for the registry: auth, schools, operators, subscribers, guardians, consents,
devices, roster import and the audit log. All under /api, documented in the app's OpenAPI.

Every route needs a bearer token (except login); the service layer checks roles and school
scope and writes the audit entry. Errors: 401 (no/bad token), 403 (role or school), 404,
409 (duplicate), 422 (validation: `{"detail": …, "errors": [{row?, field, message}]}`).
Lists take `offset` and `limit` (≤ 500) and answer `{items, total, offset, limit}`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from urelief.registry.auth import (
    TOKEN_COOKIE,
    CurrentOperator,
    RegistryDep,
    client_addr,
    request_token,
)
from urelief.registry.errors import Invalid, RegistryError, Throttled
from urelief.registry.keys import ServerKeyError
from urelief.registry.models import DeviceStatus, NotifyPref, Role
from urelief.registry.service import Registry
from urelief.registry.signin import API_TOKEN_TTL
from urelief.server.apidoc import IdField, IdQuery, RowId

MAX_ROSTER_BYTES = 8 * 1024 * 1024
router = APIRouter(prefix="/api", tags=["registry"])

Offset = Annotated[int, Query(ge=0, le=2**63 - 1, description="rows to skip")]
Limit = Annotated[int, Query(ge=1, le=500, description="rows per page (max 500)")]


# -- bodies ------------------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginIn(_In):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class SchoolIn(_In):
    code: str = Field(min_length=1, max_length=32, examples=["B100012345"])
    name: str = Field(min_length=1, max_length=200)
    address: str | None = Field(None, max_length=300)


class OperatorIn(_In):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    role: Role
    school_id: IdField | None = Field(None, description="required for school_admin")
    password: str | None = Field(None, min_length=10, max_length=200)
    display_name: str = Field("", max_length=200)


class OperatorPatch(_In):
    active: bool


class TokenIn(_In):
    label: str = Field("", max_length=100)
    ttl_hours: int | None = Field(None, ge=1, le=24 * 366,
                                  description="lifetime; default 90 days, at most 366")


class GuardianIn(_In):
    name: str = Field(min_length=1, max_length=200)
    phone: str = Field(min_length=3, max_length=32, examples=["+821012345678"])
    relation: str = Field("", max_length=32)
    notify: NotifyPref = NotifyPref.SMS


class GuardianPatch(_In):
    name: str | None = Field(None, min_length=1, max_length=200)
    phone: str | None = Field(None, min_length=3, max_length=32)
    relation: str | None = Field(None, max_length=32)
    notify: NotifyPref | None = None


class SubscriberIn(_In):
    school_id: IdField
    pupil_ref: str = Field(min_length=1, max_length=64)
    full_name: str = Field(min_length=1, max_length=200)
    class_name: str = Field("", max_length=32)
    birth_year: int | None = Field(None, ge=1900, le=2100)
    responder_notes: str = Field("", max_length=2000)
    guardians: list[GuardianIn] = Field(default_factory=list, max_length=3)


class SubscriberPatch(_In):
    full_name: str | None = Field(None, min_length=1, max_length=200)
    class_name: str | None = Field(None, max_length=32)
    birth_year: int | None = Field(None, ge=1900, le=2100)
    responder_notes: str | None = Field(None, max_length=2000)
    active: bool | None = None


class ConsentIn(_In):
    given_by: str = Field(min_length=1, max_length=200)
    scope: str = Field(examples=["location"])
    given_at: date | datetime | None = None
    guardian_id: IdField | None = None
    evidence: str = Field("", max_length=300)


class DeviceIn(_In):
    device_id: int | str = Field(description="u32, decimal or 0x-hex", examples=["0x00a1b2c3"])
    key_hex: str = Field(min_length=32, max_length=128, pattern=r"^(?:[0-9a-fA-F]{2})+$",
                         description="the device key, hex (stored sealed, never returned)")
    key_id: int = Field(1, ge=0, le=15)
    school_id: IdField | None = None
    subscriber_id: IdField | None = None
    board: str = Field("", max_length=64)
    firmware_version: str = Field("", max_length=32)
    replace: bool = Field(False, description="re-key an existing device (re-provisioning)")


class DevicePatch(_In):
    status: DeviceStatus | None = None
    subscriber_id: IdField | None = None
    board: str | None = Field(None, max_length=64)
    firmware_version: str | None = Field(None, max_length=32)


# -- responses (documentation; the service returns plain dicts) -------------------------------


class Page(BaseModel):
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


class LoginOut(BaseModel):
    token: str
    operator: dict[str, Any]


class OperatorCreated(BaseModel):
    operator: dict[str, Any]
    token: str = Field(description="shown once; only its scrypt hash is stored")


class RosterResult(BaseModel):
    rows: int
    created: int
    updated: int
    unchanged: int
    dry_run: bool


# -- routes ------------------------------------------------------------------------------------


@router.post("/auth/login", response_model=LoginOut, tags=["auth"])
def login(body: LoginIn, request: Request, response: Response, registry: RegistryDep):
    """Password → a 12-hour token, also set as an HttpOnly cookie for the dashboard."""
    got = registry.login(body.username, body.password, client_addr(request))
    if got is None:
        return JSONResponse({"detail": "wrong username or password"}, status.HTTP_401_UNAUTHORIZED)
    token, operator = got
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", max_age=12 * 3600)
    return {"token": token, "operator": operator}


@router.post("/auth/logout", status_code=204, tags=["auth"])
def logout(request: Request, response: Response, who: CurrentOperator, registry: RegistryDep):
    registry.logout(who, request_token(request))
    response.delete_cookie(TOKEN_COOKIE)


@router.get("/auth/me", tags=["auth"])
def me(who: CurrentOperator) -> dict:
    return {"operator_id": who.operator_id, "username": who.username, "role": str(who.role),
            "school_id": who.school_id}


@router.get("/schools", response_model=Page)
def list_schools(who: CurrentOperator, registry: RegistryDep, offset: Offset = 0,
                 limit: Limit = 100):
    return registry.list_schools(who, offset, limit)


@router.post("/schools", status_code=201)
def create_school(body: SchoolIn, who: CurrentOperator, registry: RegistryDep) -> dict:
    return registry.create_school(who, body.code, body.name, body.address)


@router.post("/schools/{school_id}/roster", response_model=RosterResult,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string"}}}}})
async def import_roster(school_id: RowId, request: Request, who: CurrentOperator,
                        registry: RegistryDep, dry_run: bool = False, country_code: str = ""):
    """Roster CSV as the request body (`Content-Type: text/csv`, UTF-8). All rows or none:
    any bad row → 422 with every error `{row, field, message}`, and nothing is written.
    Columns: see `urelief.registry.roster`."""
    raw = await request.body()
    if len(raw) > MAX_ROSTER_BYTES:
        raise Invalid("roster too large", [{"field": "body", "message": "at most 8 MiB"}])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Invalid("roster is not UTF-8", [{"field": "body", "message": str(e)}]) from None
    return await run_in_threadpool(registry.import_roster, who, school_id, text,
                                   dry_run=dry_run, country_code=country_code)


@router.get("/operators", response_model=Page)
def list_operators(who: CurrentOperator, registry: RegistryDep, offset: Offset = 0,
                   limit: Limit = 100):
    return registry.list_operators(who, offset, limit)


@router.post("/operators", status_code=201, response_model=OperatorCreated)
def create_operator(body: OperatorIn, who: CurrentOperator, registry: RegistryDep):
    op, token = registry.create_operator(
        who, body.username, body.role, school_id=body.school_id, password=body.password,
        display_name=body.display_name)
    return {"operator": op, "token": token}


@router.patch("/operators/{operator_id}")
def update_operator(operator_id: RowId, body: OperatorPatch, who: CurrentOperator,
                    registry: RegistryDep) -> dict:
    return registry.set_operator_active(who, operator_id, body.active)


@router.post("/operators/{operator_id}/tokens", status_code=201)
def issue_token(operator_id: RowId, body: TokenIn, who: CurrentOperator,
                registry: RegistryDep) -> dict:
    ttl = timedelta(hours=body.ttl_hours) if body.ttl_hours else API_TOKEN_TTL
    return {"token": registry.issue_token(who, operator_id, body.label, ttl)}


@router.get("/subscribers", response_model=Page)
def list_subscribers(who: CurrentOperator, registry: RegistryDep,
                     school_id: IdQuery = None, class_name: str | None = None,
                     q: Annotated[str | None, Query(max_length=100)] = None,
                     offset: Offset = 0, limit: Limit = 100):
    return registry.list_subscribers(who, school_id=school_id, class_name=class_name, q=q,
                                     offset=offset, limit=limit)


@router.post("/subscribers", status_code=201)
def create_subscriber(body: SubscriberIn, who: CurrentOperator, registry: RegistryDep) -> dict:
    return registry.create_subscriber(who, body.model_dump())


@router.get("/subscribers/{subscriber_id}")
def get_subscriber(subscriber_id: RowId, who: CurrentOperator, registry: RegistryDep) -> dict:
    """The subscriber card: child, school, guardians with phone numbers, consents, devices."""
    return registry.get_subscriber(who, subscriber_id)


@router.patch("/subscribers/{subscriber_id}")
def update_subscriber(subscriber_id: RowId, body: SubscriberPatch, who: CurrentOperator,
                      registry: RegistryDep) -> dict:
    return registry.update_subscriber(who, subscriber_id, body.model_dump(exclude_unset=True))


@router.get("/subscribers/{subscriber_id}/guardians", response_model=Page)
def list_guardians(subscriber_id: RowId, who: CurrentOperator, registry: RegistryDep):
    return registry.list_guardians(who, subscriber_id)


@router.post("/subscribers/{subscriber_id}/guardians", status_code=201)
def add_guardian(subscriber_id: RowId, body: GuardianIn, who: CurrentOperator,
                 registry: RegistryDep) -> dict:
    return registry.add_guardian(who, subscriber_id, body.model_dump())


@router.patch("/guardians/{guardian_id}")
def update_guardian(guardian_id: RowId, body: GuardianPatch, who: CurrentOperator,
                    registry: RegistryDep) -> dict:
    return registry.update_guardian(who, guardian_id, body.model_dump(exclude_unset=True))


@router.delete("/guardians/{guardian_id}", status_code=204)
def delete_guardian(guardian_id: RowId, who: CurrentOperator, registry: RegistryDep) -> None:
    registry.delete_guardian(who, guardian_id)


@router.get("/subscribers/{subscriber_id}/consents", response_model=Page)
def list_consents(subscriber_id: RowId, who: CurrentOperator, registry: RegistryDep):
    return registry.list_consents(who, subscriber_id)


@router.post("/subscribers/{subscriber_id}/consents", status_code=201)
def record_consent(subscriber_id: RowId, body: ConsentIn, who: CurrentOperator,
                   registry: RegistryDep) -> dict:
    return registry.record_consent(who, subscriber_id, body.model_dump())


@router.post("/consents/{consent_id}/withdraw")
def withdraw_consent(consent_id: RowId, who: CurrentOperator, registry: RegistryDep) -> dict:
    return registry.withdraw_consent(who, consent_id)


@router.get("/devices", response_model=Page)
def list_devices(who: CurrentOperator, registry: RegistryDep, school_id: IdQuery = None,
                 status_: Annotated[DeviceStatus | None, Query(alias="status")] = None,
                 offset: Offset = 0, limit: Limit = 100):
    return registry.list_devices(who, school_id=school_id,
                                 status=status_.value if status_ else None,
                                 offset=offset, limit=limit)


@router.post("/devices", status_code=201)
def register_device(body: DeviceIn, who: CurrentOperator, registry: RegistryDep) -> dict:
    return registry.register_device(
        who, body.device_id, bytes.fromhex(body.key_hex), school_id=body.school_id,
        subscriber_id=body.subscriber_id, key_id=body.key_id, board=body.board,
        firmware_version=body.firmware_version, replace=body.replace)


@router.get("/devices/{device_id}")
def get_device(device_id: str, who: CurrentOperator, registry: RegistryDep) -> dict:
    """`device_id`: decimal or 0x-hex. Key material is never returned."""
    return registry.get_device(who, device_id)


@router.patch("/devices/{device_id}")
def update_device(device_id: str, body: DevicePatch, who: CurrentOperator,
                  registry: RegistryDep) -> dict:
    return registry.update_device(who, device_id, body.model_dump(exclude_unset=True))


@router.get("/audit", response_model=Page, tags=["audit"])
def list_audit(who: CurrentOperator, registry: RegistryDep, operator_id: IdQuery = None,
               action: str | None = None, object_type: str | None = None,
               object_id: str | None = None, since: datetime | None = None,
               offset: Offset = 0, limit: Limit = 100):
    """Newest first. Auditors and admins only; reading it is itself audited."""
    return registry.list_audit(who, operator_id=operator_id, action=action,
                               object_type=object_type, object_id=object_id, since=since,
                               offset=offset, limit=limit)


@router.get("/audit/verify", tags=["audit"])
def verify_audit(who: CurrentOperator, registry: RegistryDep) -> dict:
    """Recompute the hash chain over the whole log."""
    return registry.verify_audit(who)


# -- wiring ------------------------------------------------------------------------------------


async def registry_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RegistryError)
    body: dict[str, Any] = {"detail": str(exc)}
    if isinstance(exc, Invalid):
        body["errors"] = exc.errors
    headers = {"Retry-After": "60"} if isinstance(exc, Throttled) else None
    return JSONResponse(body, exc.status, headers=headers)


async def server_key_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status.HTTP_503_SERVICE_UNAVAILABLE)


def install(app: FastAPI, registry: Registry) -> None:
    """Put `registry` on the app and mount the routes and error handlers."""
    app.state.registry = registry
    app.include_router(router)
    app.add_exception_handler(RegistryError, registry_error_handler)
    app.add_exception_handler(ServerKeyError, server_key_error_handler)


def create_app(registry: Registry) -> FastAPI:
    """A registry-only app (tests, `urelief registry serve`); the full server mounts the same."""
    app = FastAPI(title="U-Relief registry", version="1")
    install(app, registry)
    return app

