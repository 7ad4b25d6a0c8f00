"""`urelief server` that cannot start says why in one line (exit 1), not a traceback: a port
in use, an address that is not this machine's or does not resolve, a database that is down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from srvkit import SERVER_KEY

URELIEF = str(Path(sys.executable).parent / "urelief")


def _start(tmp_path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "URELIEF_SERVER_KEY": SERVER_KEY, "URELIEF_VAR": str(tmp_path)}
    return subprocess.run([URELIEF, "server", "--db", f"sqlite:///{tmp_path / 'u.db'}",
                           "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0", *args],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)


@pytest.fixture
def taken():
    tcp, udp = socket.socket(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    udp.bind(("127.0.0.1", 0))
    yield tcp.getsockname()[1], udp.getsockname()[1]
    tcp.close()
    udp.close()


@pytest.mark.parametrize("args, says", [
    (("--http", "127.0.0.1:{tcp}"), "cannot listen on HTTP 127.0.0.1:{tcp}: Address already in use"),
    (("--udp", "127.0.0.1:{udp}"), "cannot listen on UDP 127.0.0.1:{udp}: Address already in use"),
    (("--http", "192.0.2.1:8420"), "cannot listen on HTTP 192.0.2.1:8420: Cannot assign"),
    (("--http", "no-such-host.invalid:8420"), "cannot listen on HTTP no-such-host.invalid:8420"),
    (("--http", "127.0.0.1:http"), "bad address or setting"),
    (("--db", "postgresql://u:secret@127.0.0.1:1/x"), "database unreachable (postgresql+psycopg://u:***@127.0.0.1:1/x)"),
])
def test_a_server_that_cannot_start_says_why_in_one_line(tmp_path, taken, args, says):
    tcp, udp = taken
    r = _start(tmp_path, *(a.format(tcp=tcp, udp=udp) for a in args))
    assert r.returncode == 1, r.stderr[-2000:]
    err = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(err) == 1 and says.format(tcp=tcp, udp=udp) in err[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "secret" not in r.stderr


def test_the_server_refuses_a_schema_it_was_not_written_for(tmp_path):
    from urelief.registry import migrate

    r = _start(tmp_path)  # an empty database: nothing migrated
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert (f"database schema is empty, this server needs {migrate.head()}: run "
            "`urelief registry migrate` first") in r.stderr
    migrate.upgrade(f"sqlite:///{tmp_path / 'u.db'}", "0005")  # one release behind
    r = _start(tmp_path)
    assert r.returncode == 1 and "database schema is 0005" in r.stderr, r.stderr[-2000:]
    assert migrate.current(f"sqlite:///{tmp_path / 'u.db'}").startswith("0005")  # untouched
