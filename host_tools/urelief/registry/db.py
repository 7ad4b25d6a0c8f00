"""Engine and sessions from a URL. SQLite (WAL, synchronous=FULL) is the embedded default;
PostgreSQL through psycopg 3 (`postgresql://…` is mapped to `postgresql+psycopg://…`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

ENV_URL = "URELIEF_DB_URL"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def default_url() -> str:
    """`$URELIEF_DB_URL`, else SQLite at `$URELIEF_VAR/urelief.db` (`var/` by default), the
    same place `urelief server` uses (server.config.default_db_url)."""
    if os.environ.get(ENV_URL):
        return os.environ[ENV_URL]
    return "sqlite:///" + str((Path(os.environ.get("URELIEF_VAR", "var")) / "urelief.db").resolve())


def normalize_url(url: str) -> str:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def private_sqlite_file(path: Path) -> None:
    """The database holds pupils, guardians' numbers and sealed device keys: its directory,
    when we make it, and the file are the owner's alone (0700 / 0600). SQLite gives its -wal
    and -shm files the database file's mode; an existing file others can read is tightened."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))  # an empty file is an empty database
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        try:
            if p.stat().st_mode & 0o077:
                p.chmod(0o600)
        except FileNotFoundError:
            pass


class DatabaseInUse(RuntimeError):
    """Another server process holds this SQLite database."""


def hold_single_server(url: str):
    """One server per SQLite file: its in-memory replay windows and downlink blocks assume no
    other server writes the device rows (two servers need PostgreSQL, docs/server.md). Holds an
    exclusive flock on `<file>.server-lock` for the life of the process (released by the
    kernel on any exit, kill -9 included) and returns the open file; None for other databases.
    Raises DatabaseInUse when another process holds it."""
    import fcntl

    u = make_url(url)
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:"):
        return None
    path = Path(u.database).resolve()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(f"{path}.server-lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DatabaseInUse(f"another urelief server is running on {path} (one server per "
                            "SQLite file; run two on PostgreSQL)") from None
    return fd


def _sqlite_pragmas(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy own transactions (pysqlite's implicit BEGIN is off) …
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")  # FULL: fsync each commit (durable ack)
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # … and takes the write lock up front: a deferred transaction upgrading to a writer can
        # fail with SQLITE_BUSY at once under WAL; IMMEDIATE waits its turn (busy_timeout).
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | None = None, *, synchronous: str = "FULL", echo: bool = False) -> Engine:
    url = normalize_url(url or default_url())
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        memory = u.database in (None, "", ":memory:")
        kw: dict = {"connect_args": {"check_same_thread": False}}
        if memory:
            kw["poolclass"] = StaticPool  # one shared connection, else each gets its own empty db
        elif u.database:
            private_sqlite_file(Path(u.database))
        engine = create_engine(url, echo=echo, **kw)
        _sqlite_pragmas(engine, synchronous.upper())
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


class Database:
    """An engine plus its session factory. `with db.session() as s:` commits on success."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None, **kw):
        self.engine = engine or make_engine(url, **kw)
        self.url = self.engine.url.render_as_string(hide_password=False)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.Session() as s, s.begin():
            yield s

    def dispose(self) -> None:
        self.engine.dispose()
