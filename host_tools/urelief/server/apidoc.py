"""The OpenAPI document as the server really answers: FastAPI describes every 422 as its own
validation error (`detail`: a list of {loc, msg, type}), but the registry and webhooks answer
422 with `detail` as one sentence (and the roster import adds `errors`, one per bad row)."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Path, Query
from fastapi.openapi.utils import get_openapi
from pydantic import Field

# A row id in a path: a positive signed 64-bit integer (SQLite's INTEGER, PostgreSQL's BIGINT);
# anything else is a 422 before it reaches the database (2**63 overflowed the driver: a 500).
ROW_ID_MAX = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]
IdField = Annotated[int, Field(ge=1, le=ROW_ID_MAX)]  # a row id in a request body
IdQuery = Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)]  # an optional row id filter


def install(app: FastAPI) -> None:
    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes)
            err = doc.get("components", {}).get("schemas", {}).get("HTTPValidationError")
            if err is not None:
                listed = err["properties"]["detail"]
                err["properties"]["detail"] = {"title": "Detail", "anyOf": [
                    {"type": "string"}, {k: v for k, v in listed.items() if k != "title"}]}
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
