"""The provisioning log: one row per pupil with the state of their device, and every step taken.

A re-run reads it to skip pupils whose device is done and to recognise its own half-made
devices. SQLite from the standard library, synchronous=FULL: a row written before a step
survives a crash or a pulled plug. No key material is ever written here.

status of a pupil: started -> copied (files verified on the board) -> registered -> done;
failed (a step failed; `error` says which and why) and selftest_failed (the board answered but
a part did not) are both "not provisioned".
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

DONE = "done"
STATUSES = ("started", "copied", "registered", DONE, "failed", "selftest_failed")
_FIELDS = ("pupil_ref", "full_name", "class_name", "school", "device_id", "key_id",
           "board_uid", "board", "status", "error", "selftest", "check_code", "firmware",
           "label")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pupils (
    subscriber_id INTEGER PRIMARY KEY,
    pupil_ref TEXT, full_name TEXT, class_name TEXT, school TEXT,
    device_id INTEGER, key_id INTEGER, board_uid TEXT, board TEXT,
    status TEXT NOT NULL, error TEXT, selftest TEXT, check_code TEXT, firmware TEXT,
    label TEXT, updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pupils_device ON pupils (device_id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, subscriber_id INTEGER, device_id INTEGER,
    step TEXT NOT NULL, detail TEXT
);
"""


class ProvisionLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _row(self, sql: str, *args) -> dict | None:
        with self._lock:
            r = self._db.execute(sql, args).fetchone()
        if r is None:
            return None
        out = dict(r)
        out["selftest"] = json.loads(out["selftest"]) if out["selftest"] else None
        return out

    def get(self, subscriber_id: int) -> dict | None:
        return self._row("SELECT * FROM pupils WHERE subscriber_id = ?", subscriber_id)

    def by_device(self, device_id: int) -> dict | None:
        """The pupil row that last claimed this device id."""
        return self._row("SELECT * FROM pupils WHERE device_id = ? ORDER BY updated_at DESC "
                         "LIMIT 1", device_id)

    def done_uids(self) -> set[str]:
        with self._lock:
            rows = self._db.execute("SELECT board_uid FROM pupils WHERE status = ?", (DONE,))
            return {r[0] for r in rows if r[0]}

    def rows(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM pupils ORDER BY subscriber_id").fetchall()
        return [dict(r) for r in rows]

    def set(self, subscriber_id: int, **fields) -> None:
        bad = set(fields) - set(_FIELDS)
        if bad:
            raise ValueError(f"unknown log fields {sorted(bad)}")
        if fields.get("status", "started") not in STATUSES:
            raise ValueError(f"bad status {fields['status']!r}")
        if isinstance(fields.get("selftest"), dict):
            fields["selftest"] = json.dumps(fields["selftest"])
        cols = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        update = ", ".join(f"{k} = excluded.{k}" for k in fields)
        with self._lock:
            self._db.execute(
                f"INSERT INTO pupils (subscriber_id, {cols}, updated_at) VALUES (?, {marks}, ?) "
                f"ON CONFLICT (subscriber_id) DO UPDATE SET {update}, updated_at = excluded.updated_at",
                (subscriber_id, *fields.values(), time.time()))

    def event(self, subscriber_id: int | None, device_id: int | None, step: str,
              **detail) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO events (at, subscriber_id, device_id, step, detail) VALUES (?, ?, ?, ?, ?)",
                (time.time(), subscriber_id, device_id, step, json.dumps(detail, default=str)))

    def events(self, subscriber_id: int) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM events WHERE subscriber_id = ? ORDER BY id",
                                    (subscriber_id,)).fetchall()
        return [dict(r) | {"detail": json.loads(r["detail"] or "{}")} for r in rows]
