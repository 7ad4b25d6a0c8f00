"""A dispatcher's session on the real server: the live stream ends when the session does
(logout), a cross-origin page cannot act with the session's cookie, and the database files
the server writes are the owner's alone."""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path

import httpx
from srvkit import PASSWORD


def _login(server) -> httpx.Client:
    c = httpx.Client(base_url=server.http, timeout=10, headers={"Origin": server.http})
    r = c.post("/api/auth/login", json={"username": "disp", "password": PASSWORD})
    assert r.status_code == 200, r.text
    c.token = r.json()["token"]
    return c


def test_the_live_stream_ends_with_the_session(server):
    c = _login(server)
    lines: list[str] = []
    ended = threading.Event()

    def watch() -> None:
        with c.stream("GET", "/api/live", timeout=httpx.Timeout(10, read=60)) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                lines.append(line)
        ended.set()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while "event: hello" not in lines and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "event: hello" in lines
    time.sleep(3)  # past a check or two: a live session's stream stays open
    assert not ended.is_set()
    bearer = {"Authorization": f"Bearer {c.token}"}
    assert httpx.post(server.http + "/api/auth/logout", headers=bearer).status_code == 204
    assert ended.wait(10), "the stream outlived its session"
    assert "event: session_ended" in lines
    assert c.get("/api/live").status_code == 401  # and it cannot be reopened
    c.close()


def test_a_page_on_another_port_cannot_act_with_the_cookie(server):
    c = _login(server)
    evil = server.http.rsplit(":", 1)[0] + ":8081"  # same site, another origin
    r = c.post("/api/incidents/1/close", json={"reason": "false_alarm"}, headers={"Origin": evil})
    assert r.status_code == 403 and "CSRF" in r.text
    assert c.get("/api/auth/me").status_code == 200
    c.close()


def test_database_files_are_private(server):
    db = Path(server.db_url.removeprefix("sqlite:///"))
    files = [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
    assert db in files
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p
