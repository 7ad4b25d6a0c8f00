"""Schema migrations (Alembic) without an alembic.ini: `upgrade(url)`, `downgrade(url, "base")`.

The CLI form is `urelief registry migrate [--to REV]` / `downgrade --to REV`. There is no
alembic.ini on purpose: one way in keeps the URL handling (psycopg, SQLite pragmas) in db.py.
New revisions: `alembic.command.revision(alembic_config(url), message, autogenerate=True)`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from urelief.registry.db import make_engine, normalize_url

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def _with_connection(url: str, fn) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            fn(cfg)
            conn.commit()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    _with_connection(url, lambda cfg: command.upgrade(cfg, revision))


def downgrade(url: str, revision: str = "base") -> None:
    _with_connection(url, lambda cfg: command.downgrade(cfg, revision))


def current(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head
