"""Migrations up and down on SQLite and PostgreSQL; the migrated schema equals the models;
the audit log is append-only in the database itself."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from urelief.registry import audit, migrate
from urelief.registry.db import Database
from urelief.registry.models import Base
from urelief.registry.service import cli_actor


def _tables(url: str) -> set[str]:
    db = Database(url)
    try:
        return set(inspect(db.engine).get_table_names()) - {"alembic_version"}
    finally:
        db.dispose()


def test_upgrade_head_matches_models_then_downgrade_base(empty_db_url):
    migrate.upgrade(empty_db_url)
    assert migrate.current(empty_db_url) == migrate.head()
    assert _tables(empty_db_url) == set(Base.metadata.tables)
    db = Database(empty_db_url)
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.dispose()
    assert diffs == [], "models.py and the migrations disagree; add a migration"

    migrate.downgrade(empty_db_url, "base")
    assert migrate.current(empty_db_url) is None
    assert _tables(empty_db_url) == set()
    migrate.upgrade(empty_db_url)  # and back up again cleanly (triggers, functions recreated)
    assert migrate.current(empty_db_url) == migrate.head()


def test_every_revision_steps_up_and_down(empty_db_url):
    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert revisions[0] == "0001"
    for rev in revisions:
        migrate.upgrade(empty_db_url, rev)
        assert migrate.current(empty_db_url) == rev
    for rev in reversed(revisions[:-1]):
        migrate.downgrade(empty_db_url, rev)
        assert migrate.current(empty_db_url) == rev
    migrate.downgrade(empty_db_url, "base")
    assert _tables(empty_db_url) == set()


def test_data_survives_upgrade_from_first_revision(empty_db_url):
    """Rows written at 0001 are still there after upgrading to head."""
    migrate.upgrade(empty_db_url, "0001")
    db = Database(empty_db_url)
    with db.engine.begin() as c:
        c.execute(text("INSERT INTO schools (code, name, created_at) VALUES ('S', 'School', :t)"),
                  {"t": "2026-01-01 00:00:00"})
    migrate.upgrade(empty_db_url)
    with db.engine.connect() as c:
        assert c.execute(text("SELECT name FROM schools WHERE code = 'S'")).scalar() == "School"
    db.dispose()


@pytest.mark.parametrize("sql", ["UPDATE audit_entries SET action = 'forged'",
                                 "DELETE FROM audit_entries"])
def test_audit_log_is_append_only_in_the_database(registry, sql):
    registry.create_school(cli_actor(), "S", "School")
    with pytest.raises(DBAPIError, match="append-only"), registry.db.engine.begin() as c:
        c.execute(text(sql))
    with registry.db.Session() as s:
        assert audit.verify_chain(s)[0]
