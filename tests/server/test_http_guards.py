"""The server's HTTP edge against hostile clients: oversized bodies refused before they are
read, machine webhooks closed unless authenticated (or opened on purpose, loudly), and a client
address that a forged X-Forwarded-For cannot change unless it comes from a trusted proxy."""

from __future__ import annotations

import json
import select
import socket

import httpx
import pytest
from srvkit import GW, ServerProc, seed

MIB = 1024 * 1024
AML_BODY = "v=1&device_number=%2B447700900003&location_latitude=51.5&location_longitude=-0.1"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def rss_mib(proc: ServerProc) -> float:
    """Resident memory of the server process and its children (the writer), MiB."""
    pids = [proc.proc.pid]
    try:
        pids += [int(p) for p in open(f"/proc/{proc.proc.pid}/task/{proc.proc.pid}/children")
                 .read().split()]
    except OSError:
        pass
    total = 0
    for pid in pids:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def start(tmp_path, name: str, env: dict | None = None, args: tuple[str, ...] = ()) -> ServerProc:
    work = tmp_path / name
    work.mkdir()
    db_url = f"sqlite:///{work / 'urelief.db'}"
    s = seed(db_url)
    proc = ServerProc(work, db_url, env)
    proc.args = (*proc.args, *args)
    proc.start()
    proc.seed = s
    return proc


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """A server as the tests' fixture runs it: gateway token set, no trusted proxy."""
    proc = start(tmp_path_factory.mktemp("guard"), "srv")
    yield proc
    proc.stop()


def _raw(server: ServerProc, head: str, piece: bytes, total: int) -> tuple[bytes, int]:
    """Send `head`, then `piece` again and again (up to `total` bytes) until the server answers,
    closes or stops reading. -> (its answer, body bytes we got to send)."""
    host, port = server.http.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(head.encode())
    sent = 0
    try:
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], 5)
            if readable or not writable:
                break  # an answer (or a close), or the server stopped reading
            sock.sendall(piece)
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    answer = b""
    try:
        while b"\r\n\r\n" not in answer:
            got = sock.recv(65536)
            if not got:
                break
            answer += got
    except (ConnectionResetError, TimeoutError):
        pass
    sock.close()
    return answer, sent


def test_a_300_mib_post_is_refused_before_it_is_read(guarded):
    before = rss_mib(guarded)
    size = 300 * MIB
    chunk = b"x" * (256 * 1024)
    head = ("POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n")
    answer, sent = _raw(guarded, head, chunk, size)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 16 * MIB  # answered at the headers; what we got in sat in socket buffers
    # No Content-Length: a chunked body is cut off once it passes the limit.
    head = ("POST /sms/inbound HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    piece = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    answer, sent = _raw(guarded, head, piece, size)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 32 * MIB
    assert rss_mib(guarded) - before < 40  # the issue saw +1,474 MiB for one such POST
    assert httpx.get(guarded.http + "/healthz").json()["ok"]


def test_webhooks_need_the_gateway_token(guarded):
    r = httpx.post(guarded.http + "/sms/inbound", json={"from": "+821012345678", "text": "hi"})
    assert r.status_code == 401
    r = httpx.post(guarded.http + "/sms/status", json={"ref": "x", "status": "delivered"})
    assert r.status_code == 401
    r = httpx.post(guarded.http + "/aml", content=AML_BODY, headers=FORM)
    assert r.status_code == 401 and r.json()["detail"]["reason"] == "bad_token"
    r = httpx.post(guarded.http + "/aml", content=AML_BODY, headers={**FORM, **GW})
    assert r.status_code == 200 and r.json()["status"] == "accepted"


def _events(proc: ServerProc) -> list[dict]:
    return [json.loads(line) for line in proc.log_tail(1_000_000).splitlines()
            if line.startswith("{")]


def test_unconfigured_webhooks_are_off_unless_opened_on_purpose(tmp_path):
    """No gateway token and no AML key: /sms/* and /aml refuse (503) and the server says so at
    start; --open-webhooks runs them unauthenticated, and the server says that too."""
    closed = start(tmp_path, "closed", {"URELIEF_GATEWAY_TOKEN": ""})
    try:
        for path, kw in (("/sms/inbound", {"json": {"from": "+8210", "text": "hi"}}),
                         ("/sms/status", {"json": {"ref": "x", "status": "sent"}}),
                         ("/aml", {"content": AML_BODY, "headers": FORM})):
            r = httpx.post(closed.http + path, **kw)
            assert r.status_code == 503, (path, r.text)
            assert "URELIEF_GATEWAY_TOKEN" in r.text and "--open-webhooks" in r.text
        off = [e for e in _events(closed) if e["event"] == "webhooks_off"]
        assert off and off[0]["webhooks"] == ["aml", "sms"] and off[0]["level"] == "warning"
    finally:
        closed.stop()
    opened = start(tmp_path, "open", {"URELIEF_GATEWAY_TOKEN": ""}, ("--open-webhooks",))
    try:
        r = httpx.post(opened.http + "/aml", content=AML_BODY, headers=FORM)
        assert r.status_code == 200
        assert any(e["event"] == "webhooks_open" for e in _events(opened))
    finally:
        opened.stop()


def _login_addr(server: ServerProc, forwarded: str) -> str:
    """The address the server audits for a failed login sent with this X-Forwarded-For."""
    r = httpx.post(server.http + "/api/auth/login", json={"username": "disp", "password": "wrong"},
                   headers={"X-Forwarded-For": forwarded})
    assert r.status_code == 401
    audit = httpx.get(server.http + "/api/audit", params={"action": "auth.login", "limit": 1},
                      headers={"Authorization": f"Bearer {server.seed.tokens['boss']}"}).json()
    return audit["items"][0]["remote_addr"]


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(guarded, tmp_path):
    """Loopback is not a proxy by default: a forged header leaves the address (and so every
    per-address limit) alone. Behind a configured proxy, its header is the client."""
    assert _login_addr(guarded, "203.0.113.7") == "127.0.0.1"
    proxied = start(tmp_path, "proxied", {"URELIEF_TRUSTED_PROXIES": "127.0.0.1"})
    try:
        assert _login_addr(proxied, "203.0.113.7") == "203.0.113.7"
    finally:
        proxied.stop()
