"""Sign-in promises: wrong passwords make the guessing address back off and never lock the
operator out; a login costs the same whether or not the username exists; passwords are hashed
at OWASP's scrypt cost (older hashes redone at login); every token expires; cookie-authenticated
writes from another origin are refused (CSRF); the database file is the owner's alone."""

from __future__ import annotations

import ast
import os
import stat
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text
from urelief.registry import credentials, signin
from urelief.registry.db import Database
from urelief.registry.errors import Invalid, Throttled
from urelief.registry.models import OperatorToken, Role
from urelief.registry.service import cli_actor

GUESSER, DESK = "198.51.100.7", "203.0.113.9"


def test_wrong_passwords_back_off_the_address_not_the_operator(world, registry, monkeypatch):
    monkeypatch.setattr(signin, "LOGIN_BACKOFF_S", 0.3)
    for i in range(signin.LOGIN_FREE_FAILURES):
        assert registry.login("disp", f"guess-{i}", GUESSER) is None
    for _ in range(3):  # refused without a check, and refusals do not renew the back-off
        with pytest.raises(Throttled):
            registry.login("disp", "disp-password-123", GUESSER)
    assert registry.login("disp", "disp-password-123", DESK) is not None  # never locked out
    time.sleep(0.35)
    assert registry.login("disp", "disp-password-123", GUESSER) is not None
    assert signin.login_backoff_s(signin.LOGIN_FREE_FAILURES + 20) == signin.LOGIN_BACKOFF_MAX_S


def _scrypt_costs(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = credentials._scrypt

    def counted(secret, salt, log2_n, r, p):
        calls.append((log2_n, r, p))
        return real(secret, salt, log2_n, r, p)

    monkeypatch.setattr(credentials, "_scrypt", counted)
    return calls


def test_login_does_the_same_work_for_unknown_and_disabled_operators(world, registry, monkeypatch):
    """No username enumeration by timing: the work is one scrypt at the password cost in every
    case (counted, not timed; `make bench` has no business here)."""
    root = cli_actor()
    registry.create_operator(root, "gone", Role.DISPATCHER, password="gone-password-123")
    registry.create_operator(root, "tokenonly", Role.DISPATCHER)  # no password at all
    gone = next(o for o in registry.list_operators(root)["items"] if o["username"] == "gone")
    registry.set_operator_active(root, gone["id"], False)
    calls = _scrypt_costs(monkeypatch)
    work = {}
    for who in ("disp", "nobody-by-this-name", "gone", "tokenonly"):
        calls.clear()
        assert registry.login(who, "wrong-password-1", f"192.0.2.{len(work) + 1}") is None
        work[who] = list(calls)
    want = [(credentials.PASSWORD_LOG2_N, 8, 1)]
    assert work == {w: want for w in work}


def test_passwords_are_hashed_at_owasp_cost_and_old_hashes_are_redone(world, registry,
                                                                     monkeypatch):
    # The module's own figure (fixtures lower it for speed): OWASP Password Storage Cheat Sheet,
    # scrypt N >= 2^17, r = 8, p = 1.
    src = Path(credentials.__file__).read_text()
    consts = {t.id: n.value.value for n in ast.parse(src).body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
    assert consts["PASSWORD_LOG2_N"] >= 17
    assert credentials._R >= 8 and credentials._P == 1
    # A hash stored at a lower cost is redone at today's cost on the next good login.
    monkeypatch.setattr(credentials, "PASSWORD_LOG2_N", 13)
    assert registry.login("disp", "disp-password-123", DESK) is not None
    with registry.db.Session() as s:
        stored = s.scalar(text("SELECT password_hash FROM operators WHERE username = 'disp'"))
    assert stored.startswith("scrypt$13$8$1$")
    assert credentials.verify_secret("disp-password-123", stored)


def test_every_token_expires(world, registry):
    root = cli_actor()
    _, token = registry.create_operator(root, "script", Role.AUDITOR)
    issued = registry.issue_token(root, world.operators["disp"]["id"], "cron")
    with registry.db.Session() as s:
        rows = s.scalars(select(OperatorToken)).all()
    assert rows and all(r.expires_at is not None for r in rows)
    latest = max(r.expires_at for r in rows)
    assert latest.replace(tzinfo=None) - rows[0].created_at.replace(tzinfo=None) <= timedelta(days=366)
    with pytest.raises(Invalid):
        registry.issue_token(root, world.operators["disp"]["id"], "forever", timedelta(days=3650))
    # An expired token is refused.
    assert registry.authenticate(issued) is not None
    with registry.db.session() as s:
        s.execute(text("UPDATE operator_tokens SET expires_at = :t WHERE label = 'cron'"),
                  {"t": "2000-01-01 00:00:00.000000"})
    registry._forget_tokens()
    assert registry.authenticate(issued) is None
    assert registry.authenticate(token) is not None


def test_cookie_writes_from_another_origin_are_refused(world, live_url):
    """A page on another port of the same host is the same *site* (SameSite lets the cookie
    through) but not the same origin: its writes are refused; bearer-token clients, which a
    browser never authenticates on its own, are not affected."""
    with httpx.Client(base_url=live_url) as c:
        r = c.post("/api/auth/login", json={"username": "admin", "password": "admin-password-123"},
                   headers={"Origin": live_url})
        token = r.json()["token"]
        other_port = live_url.rsplit(":", 1)[0] + ":9"
        body = {"code": "X1", "name": "Forged School"}
        for headers in ({"Origin": other_port}, {"Referer": other_port + "/evil.html"}, {},
                        {"Origin": "null"}):
            r = c.post("/api/schools", json=body, headers=headers)
            assert r.status_code == 403 and "CSRF" in r.text, headers
        assert c.post("/api/auth/logout", headers={"Origin": other_port}).status_code == 403
        assert c.get("/api/auth/me").status_code == 200  # reads are fine, and still logged in
        assert c.post("/api/schools", json=body, headers={"Origin": live_url}).status_code == 201
    r = httpx.post(f"{live_url}/api/schools", json={"code": "X2", "name": "By Script"},
                   headers={"Authorization": f"Bearer {token}", "Origin": other_port})
    assert r.status_code == 201


def test_the_database_file_is_the_owners_alone(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "var" / "urelief.db"
        db = Database(f"sqlite:///{path}")
        with db.session() as s:
            s.execute(text("CREATE TABLE t (x)"))
            s.execute(text("INSERT INTO t VALUES (1)"))
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert p.exists() and stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p
        assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
        db.dispose()
        os.chmod(path, 0o644)  # made readable by hand, or by an older version
        Database(f"sqlite:///{path}").dispose()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)
