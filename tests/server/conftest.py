"""Fixtures: a real `urelief server` process per test module (see srvkit.py)."""

from __future__ import annotations

import os

import httpx
import pytest
from srvkit import GW, ServerProc, seed
from urelief.bench.server import pg_scratch

PG_URL = os.environ.get("URELIEF_TEST_PG_URL")


def pytest_generate_tests(metafunc):
    """Modules with BOTH_BACKENDS = True run once on SQLite and once on PostgreSQL (when
    URELIEF_TEST_PG_URL names a server; CI starts one)."""
    if "server" in metafunc.fixturenames and getattr(metafunc.module, "BOTH_BACKENDS", False):
        backends = ["sqlite"] + (["postgresql"] if PG_URL else [])
        metafunc.parametrize("backend", backends, indirect=True, scope="module")


@pytest.fixture(scope="module")
def backend(request) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="module")
def server(tmp_path_factory, request, backend):
    work = tmp_path_factory.mktemp("server")
    drop = None
    if backend == "postgresql":
        db_url, drop = pg_scratch(PG_URL)
    else:
        db_url = f"sqlite:///{work / 'urelief.db'}"
    s = seed(db_url)
    env = getattr(request.module, "SERVER_ENV", {})
    proc = ServerProc(work, db_url, env).start()
    proc.seed = s
    yield proc
    proc.stop()
    if drop:
        drop()


@pytest.fixture
def api(server):
    def client(who: str = "disp") -> httpx.Client:
        return httpx.Client(base_url=server.http, timeout=10,
                            headers={"Authorization": f"Bearer {server.seed.tokens[who]}", **GW})
    return client
