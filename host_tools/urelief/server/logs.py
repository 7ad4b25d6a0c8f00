"""Structured logs: one JSON object per line on stderr (`event` plus fields)."""

from __future__ import annotations

import json
import logging
import sys
import time

log = logging.getLogger("urelief.server")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def setup(level: str = "INFO", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("urelief")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.propagate = False


def event(name: str, level: int = logging.INFO, **fields) -> None:
    """`event("packet_rejected", reason="bad_tag", source="udp:127.0.0.1")`."""
    if log.isEnabledFor(level):
        log.log(level, name, extra={"fields": fields})


def now() -> float:
    return time.time()
