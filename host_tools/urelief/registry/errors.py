"""Service errors; the API maps them to HTTP (403, 404, 409, 422, 429)."""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    status = 400


class Denied(RegistryError):
    """The actor's role or school does not allow this. Always audited."""

    status = 403

    def __init__(self, message: str, *, school_id: int | None = None):
        super().__init__(message)
        self.school_id = school_id


class NotFound(RegistryError):
    status = 404


class Conflict(RegistryError):
    """Would break a uniqueness rule (school code, username, device id, pupil number)."""

    status = 409


class Throttled(RegistryError):
    """Too many attempts (failed logins); try again later."""

    status = 429


class Invalid(RegistryError):
    """Input failed validation; `errors` lists each problem: {row?, field, message}."""

    status = 422

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.errors = errors or []
