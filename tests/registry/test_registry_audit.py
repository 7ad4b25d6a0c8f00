"""The audit log: every action and every data access leaves an entry naming who, what, where
from and with what outcome; the hash chain exposes edits made behind the database's back."""

import pytest
from sqlalchemy import select, text
from urelief.registry import audit
from urelief.registry.models import AuditEntry
from urelief.registry.service import cli_actor


def _entries(registry, **where) -> list[AuditEntry]:
    with registry.db.Session() as s:
        stmt = select(AuditEntry).order_by(AuditEntry.id)
        for k, v in where.items():
            stmt = stmt.where(getattr(AuditEntry, k) == v)
        return list(s.scalars(stmt))


def test_reads_and_actions_are_audited_over_http(world, http, registry):
    a = http("sa_a")
    pupil = world.pupils["A-001"]
    before = len(_entries(registry))

    assert a.get(f"/api/subscribers/{pupil['id']}").status_code == 200
    assert a.get("/api/subscribers", params={"limit": 2}).status_code == 200
    assert a.patch(f"/api/subscribers/{pupil['id']}", json={"class_name": "3-3"}).status_code == 200
    r = a.post(f"/api/subscribers/{pupil['id']}/consents",
               json={"given_by": "Kim Sora", "scope": "silent_call", "given_at": "2026-04-01"})
    assert r.status_code == 201
    assert a.post(f"/api/consents/{r.json()['id']}/withdraw").json()["active"] is False

    new = _entries(registry)[before:]
    assert [e.action for e in new] == ["subscriber.read", "subscriber.list", "subscriber.update",
                                       "consent.record", "consent.withdraw"]
    for e in new:
        assert (e.username, e.role, e.remote_addr) == ("sa_a", "school_admin", "127.0.0.1")
        assert e.operator_id == world.operators["sa_a"]["id"]
        assert e.outcome == "ok" and e.school_id == world.schools["A"]["id"]
    read, listed, update = new[0], new[1], new[2]
    assert read.object_type == "subscriber" and read.object_id == str(pupil["id"])
    assert len(listed.detail["ids"]) == 2  # which children's records were shown
    assert update.detail == {"fields": ["class_name"]}


def test_audit_api_pages_newest_first_and_records_its_own_reading(world, http, registry):
    aud = http("auditor")
    first = aud.get("/api/audit", params={"limit": 3}).json()
    assert first["limit"] == 3 and len(first["items"]) == 3 and first["total"] > 3
    ids = [e["id"] for e in first["items"]]
    assert ids == sorted(ids, reverse=True)
    assert "audit.read" not in {e["action"] for e in first["items"]}
    # The first read is now the newest entry, so offset 4 continues where the first page ended.
    second = aud.get("/api/audit", params={"limit": 3, "offset": 4}).json()
    assert second["items"][0]["id"] == ids[-1] - 1
    assert aud.get("/api/audit", params={"limit": 1}).json()["items"][0]["action"] == "audit.read"
    reads = _entries(registry, action="audit.read")
    assert len(reads) == 3 and reads[-1].username == "auditor"
    only = aud.get("/api/audit", params={"action": "roster.import"}).json()
    assert only["total"] == 2 and {e["action"] for e in only["items"]} == {"roster.import"}
    assert aud.get("/api/audit/verify").json()["intact"] is True


def test_refused_and_invalid_requests_are_audited(world, http, registry):
    d = http("disp")
    d.patch(f"/api/subscribers/{world.pupils['A-001']['id']}", json={"class_name": "x"})
    a = http("sa_a")
    r = a.post(f"/api/schools/{world.schools['A']['id']}/roster",
               content="pupil_ref,full_name\nZ-1,\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 422
    denied = _entries(registry, username="disp", outcome="denied")
    assert [e.action for e in denied] == ["subscriber.update"]
    assert "may not change" in denied[0].detail["reason"]
    invalid = _entries(registry, username="sa_a", outcome="invalid")
    assert [e.action for e in invalid] == ["roster.import"]


def test_chain_detects_an_edit_made_behind_the_triggers(world, registry):
    with registry.db.Session() as s:
        ok, checked, bad = audit.verify_chain(s)
    assert ok and checked == len(_entries(registry)) and bad is None
    victim = _entries(registry, action="operator.create")[1]
    with registry.db.engine.begin() as c:
        # Someone with database superuser rights removes the guard and rewrites history.
        if registry.db.dialect == "sqlite":
            c.execute(text("DROP TRIGGER audit_entries_no_update"))
        else:
            c.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only"))
        c.execute(text("UPDATE audit_entries SET username = 'someone-else' WHERE id = :i"),
                  {"i": victim.id})
    with registry.db.Session() as s:
        assert audit.verify_chain(s) == (False, victim.id - 1, victim.id)
    assert registry.verify_audit(cli_actor())["first_bad_id"] == victim.id


def test_orm_refuses_to_change_audit_rows(registry):
    registry.create_school(cli_actor(), "S", "School")
    with registry.db.Session() as s:
        e = s.scalars(select(AuditEntry)).first()
        e.action = "forged"
        with pytest.raises(PermissionError):
            s.flush()


def test_chain_stays_intact_under_concurrent_writers(world, registry):
    """Four threads changing the roster at once: every change audited, one unbroken chain."""
    from concurrent.futures import ThreadPoolExecutor

    root = cli_actor()
    pupils = [p["id"] for p in world.pupils.values()]
    before = len(_entries(registry))

    def work(i: int) -> None:
        registry.update_subscriber(root, pupils[i % len(pupils)], {"class_name": f"c{i}"})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(40)))
    assert len(_entries(registry, action="subscriber.update")) == 40
    assert len(_entries(registry)) == before + 40
    with registry.db.Session() as s:
        assert audit.verify_chain(s)[0]
