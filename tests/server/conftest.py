"""Fixtures: a real `urelief server` process per test module (see srvkit.py)."""

from __future__ import annotations

import os

import httpx
import pytest
from srvkit import ServerProc, seed


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    work = tmp_path_factory.mktemp("server")
    db_url = os.environ.get("URELIEF_TEST_DB_URL") or f"sqlite:///{work / 'urelief.db'}"
    s = seed(db_url)
    env = getattr(request.module, "SERVER_ENV", {})
    proc = ServerProc(work, db_url, env).start()
    proc.seed = s
    yield proc
    proc.stop()


@pytest.fixture
def api(server):
    def client(who: str = "disp") -> httpx.Client:
        return httpx.Client(base_url=server.http, timeout=10,
                            headers={"Authorization": f"Bearer {server.seed.tokens[who]}"})
    return client
