"""Registry fixtures: a migrated database per test — SQLite always, PostgreSQL too when
`URELIEF_TEST_PG_URL` names a server (a fresh database is created and dropped per test) — and
a real uvicorn server on a free local port for the HTTP tests."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from urelief.registry import credentials, migrate
from urelief.registry.db import Database, normalize_url
from urelief.registry.keys import ServerKey
from urelief.registry.models import Role
from urelief.registry.service import Registry, cli_actor
from urelief.server.api_registry import create_app

PG_ENV = "URELIEF_TEST_PG_URL"
DATA = Path(__file__).parent / "data"  # made-up pupils; any likeness is chance
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get(PG_ENV) else [])


SERVER_KEY = ServerKey(os.urandom(32))  # one per session: template databases hold sealed keys


class Databases:
    """Fresh databases per test, cloned from templates built once per session: SQLite by
    copying the file, PostgreSQL with CREATE DATABASE … TEMPLATE."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.templates: dict[tuple[str, str], tuple[str, object]] = {}
        self.pg_admin = None
        if os.environ.get(PG_ENV):
            self.pg_base = make_url(normalize_url(os.environ[PG_ENV]))
            self.pg_admin = create_engine(self.pg_base, isolation_level="AUTOCOMMIT")
        self.pg_made: list[str] = []

    def empty(self, backend: str, template: str | None = None) -> str:
        name = f"urelief_t_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            path = self.tmp / f"{name}.db"
            if template:
                shutil.copyfile(make_url(template).database, path)
            return f"sqlite:///{path}"
        clause = f' TEMPLATE "{make_url(template).database}"' if template else ""
        with self.pg_admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self.pg_made.append(name)
        return self.pg_base.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        u = make_url(url)
        if u.get_backend_name() == "postgresql":
            with self.pg_admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))

    def clone(self, backend: str, kind: str, build) -> tuple[str, object]:
        """-> (url of a fresh copy of template `kind`, what `build(url)` returned)."""
        if (backend, kind) not in self.templates:
            url = self.empty(backend)
            self.templates[backend, kind] = (url, build(url))
        url, made = self.templates[backend, kind]
        return self.empty(backend, template=url), made

    def close(self) -> None:
        if self.pg_admin is not None:
            for name in self.pg_made:
                with self.pg_admin.connect() as c:
                    c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            self.pg_admin.dispose()


@pytest.fixture(scope="session")
def dbs(tmp_path_factory):
    d = Databases(tmp_path_factory.mktemp("registry-db"))
    yield d
    d.close()


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    """Fixtures make many operators; the stored hash names its own cost, so checks still hold."""
    monkeypatch.setattr(credentials, "PASSWORD_LOG2_N", 12)


@pytest.fixture(params=BACKENDS, ids=lambda b: b)
def backend(request) -> str:
    return request.param


@pytest.fixture
def empty_db_url(backend, dbs):
    """A URL to an empty database on each backend."""
    url = dbs.empty(backend)
    yield url
    dbs.drop(url)


def _checkpointed(db: Database) -> None:
    if db.dialect == "sqlite":
        raw = db.engine.raw_connection()  # outside any transaction (the engine BEGINs IMMEDIATE)
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    db.dispose()


def _build_migrated(url: str) -> None:
    migrate.upgrade(url)
    _checkpointed(Database(url))


def _build_world(url: str) -> World:
    migrate.upgrade(url)
    db = Database(url)
    w = _populate(Registry(db, SERVER_KEY))
    _checkpointed(db)
    return w


@pytest.fixture
def db_url(request, backend, dbs):
    """A database migrated to head: empty, or holding the `world` if the test asks for it."""
    if "world" in request.fixturenames:
        url, _ = dbs.clone(backend, "world", _build_world)
    else:
        url, _ = dbs.clone(backend, "migrated", _build_migrated)
    yield url
    dbs.drop(url)


@pytest.fixture
def registry(db_url):
    db = Database(db_url)
    yield Registry(db, SERVER_KEY)
    db.dispose()


@dataclass
class World:
    """Two schools, one operator of each role (plus the other school's admin), rosters and a
    device in each school. `tokens[name]` authenticates as that operator."""

    registry: Registry
    schools: dict[str, dict] = field(default_factory=dict)
    operators: dict[str, dict] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    pupils: dict[str, dict] = field(default_factory=dict)  # pupil_ref -> subscriber
    devices: dict[str, int] = field(default_factory=dict)  # school code -> device id


def _populate(registry: Registry) -> World:
    w = World(registry)
    root = cli_actor()
    for code, name in (("A", "Hanbit Elementary"), ("B", "Saebyeol Elementary")):
        w.schools[code] = registry.create_school(root, code, name)
    for name, role, school in (("admin", Role.ADMIN, None),
                               ("disp", Role.DISPATCHER, None),
                               ("auditor", Role.AUDITOR, None),
                               ("sa_a", Role.SCHOOL_ADMIN, "A"),
                               ("sa_b", Role.SCHOOL_ADMIN, "B")):
        op, token = registry.create_operator(
            root, name, role, school_id=w.schools[school]["id"] if school else None,
            password=f"{name}-password-123")
        w.operators[name], w.tokens[name] = op, token
    for code, dev in (("A", 0x00A1B2C3), ("B", 0x00B0B0B0)):
        roster = (DATA / f"roster_{code.lower()}.csv").read_text(encoding="utf-8")
        registry.import_roster(root, w.schools[code]["id"], roster, country_code="82")
        subs = registry.list_subscribers(root, school_id=w.schools[code]["id"])["items"]
        for s in subs:
            w.pupils[s["pupil_ref"]] = s
        registry.register_device(root, dev, os.urandom(16), subscriber_id=subs[0]["id"],
                                 board="virtual", firmware_version="0.1.0")
        w.devices[code] = dev
    return w


@pytest.fixture
def world(backend, dbs, registry) -> World:
    """See World. The database behind `registry` was cloned from the world template."""
    _, made = dbs.templates[backend, "world"]
    return dataclasses.replace(made, registry=registry)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_url(registry):
    """The registry API served by uvicorn on a real local TCP port."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(registry), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def http(live_url, world):
    """`http(name)` -> an httpx client authenticated as operator `name` (None: no token)."""
    clients = []

    def make(name: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {world.tokens[name]}"} if name else {}
        c = httpx.Client(base_url=live_url, headers=headers, timeout=10)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()
