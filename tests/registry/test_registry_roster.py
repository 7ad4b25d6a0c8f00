"""Roster CSV import: every row's errors reported at once with its line number, and nothing
imported unless every row is good; re-import is idempotent; updates replace guardians."""

import pytest
from sqlalchemy import func, select
from urelief.registry import roster
from urelief.registry.errors import Invalid
from urelief.registry.models import Consent, Guardian, Subscriber
from urelief.registry.service import cli_actor

HEADER = "pupil_ref,full_name,class_name,birth_year,guardian1_name,guardian1_phone,guardian1_notify,consent_given_by,consent_date\n"
GOOD = HEADER + "\n".join(f"C-{i:03d},Pupil {i},2-1,2017,Parent {i},+8210{i:08d},sms,Parent {i},2026-03-02"
                          for i in range(1, 301)) + "\n"


def _counts(registry) -> tuple[int, int, int]:
    with registry.db.Session() as s:
        return (s.scalar(select(func.count(Subscriber.id))),
                s.scalar(select(func.count(Guardian.id))),
                s.scalar(select(func.count(Consent.id))))


def _post(client, school_id, body: str | bytes, **params):
    return client.post(f"/api/schools/{school_id}/roster", content=body, params=params,
                       headers={"Content-Type": "text/csv"})


def test_bad_rows_are_all_reported_and_nothing_is_imported(world, http, registry):
    a = http("sa_a")
    school = world.schools["A"]["id"]
    before = _counts(registry)
    lines = GOOD.splitlines()
    lines[5] = "C-005,,2-1,2017,Parent,+821000000005,sms,Parent,2026-03-02"  # no name
    lines[40] = "C-040,Pupil 40,2-1,20x7,Parent,12345,pager,Parent,2026-13-02"  # 4 errors
    lines[299] = lines[2]  # duplicate pupil ref
    body = "\n".join(lines) + "\n"
    r = _post(a, school, body)
    assert r.status_code == 422
    out = r.json()
    assert "nothing imported" in out["detail"]
    got = {(e["row"], e["field"]) for e in out["errors"]}
    assert got == {(6, "full_name"), (41, "birth_year"), (41, "guardian1_phone"),
                   (41, "guardian1_notify"), (41, "consent_date"), (300, "pupil_ref")}
    dup = next(e for e in out["errors"] if e["row"] == 300)
    assert dup["message"] == "duplicate of row 3"
    # 296 good rows, yet not one of them was written.
    assert _counts(registry) == before


def test_good_roster_imports_then_reimport_changes_nothing(world, http, registry):
    a = http("sa_a")
    school = world.schools["A"]["id"]
    before = _counts(registry)
    dry = _post(a, school, GOOD, dry_run="true").json()
    assert dry == {"rows": 300, "created": 300, "updated": 0, "unchanged": 0, "dry_run": True}
    assert _counts(registry) == before
    r = _post(a, school, GOOD)
    assert r.status_code == 200 and r.json()["created"] == 300
    assert _counts(registry) == (before[0] + 300, before[1] + 300, before[2] + 600)
    again = _post(a, school, GOOD).json()
    assert again == {"rows": 300, "created": 0, "updated": 0, "unchanged": 300, "dry_run": False}
    assert _counts(registry) == (before[0] + 300, before[1] + 300, before[2] + 600)
    listed = a.get("/api/subscribers", params={"class_name": "2-1", "limit": 500}).json()
    assert listed["total"] == 300


def test_reimport_updates_fields_and_replaces_guardians(world, registry):
    root = cli_actor()
    school = world.schools["A"]["id"]
    csv_text = ("pupil_ref,full_name,class_name,guardian1_name,guardian1_phone,"
                "guardian1_relation,consent_given_by,consent_date\n"
                "A-001,Kim Minji,4-2,Kim Sora,+821012345678,mother,Kim Sora,2026-03-02\n")
    out = registry.import_roster(root, school, csv_text)
    assert (out["updated"], out["created"]) == (1, 0)
    card = registry.get_subscriber(root, world.pupils["A-001"]["id"])
    assert card["class_name"] == "4-2"
    assert [(g["name"], g["phone"]) for g in card["guardians"]] == [("Kim Sora", "+821012345678")]


def test_header_problems_are_reported_before_rows(registry, world):
    with pytest.raises(Invalid) as e:
        registry.import_roster(cli_actor(), world.schools["A"]["id"],
                               "pupil_ref,fullname,guardian1_name\nA,B,C\n")
    fields = {(x["row"], x["field"], x["message"]) for x in e.value.errors}
    assert (1, "fullname", "unknown column") in fields
    assert (1, "full_name", "required column missing") in fields
    assert (1, "consent_date", "required column missing") in fields


def test_roster_must_be_utf8(world, http):
    r = _post(http("sa_a"), world.schools["A"]["id"], "pupil_ref,full_name\n김,민\n".encode("cp949"))
    assert r.status_code == 422 and "UTF-8" in r.json()["detail"]


def test_excel_bom_and_korean_text_and_national_numbers(registry, world):
    text = "\ufeff" + HEADER + "K-1,김민지,1-1,2019,김소라,010-9876-5432,call,김소라,2026-03-02\n"
    registry.import_roster(cli_actor(), world.schools["B"]["id"], text, country_code="82")
    subs = registry.list_subscribers(cli_actor(), q="김민")["items"]
    assert [s["full_name"] for s in subs] == ["김민지"]
    card = registry.get_subscriber(cli_actor(), subs[0]["id"])
    assert card["guardians"][0]["phone"] == "+821098765432"
    assert card["guardians"][0]["notify"] == "call"


@pytest.mark.parametrize("raw,cc,want", [
    ("+82 10-1234-5678", "", "+821012345678"),
    ("0082 10 1234 5678", "", "+821012345678"),
    ("010-1234-5678", "82", "+821012345678"),
    ("(030) 1234567", "49", "+49301234567"),
])
def test_phone_normalisation(raw, cc, want):
    assert roster.normalize_phone(raw, cc) == want


@pytest.mark.parametrize("raw", ["010-1234-5678", "+82-10-12ab", "+1234", "+1234567890123456"])
def test_phone_rejects(raw):
    with pytest.raises(ValueError):
        roster.normalize_phone(raw)


def test_database_failure_midway_leaves_nothing(world, registry, monkeypatch):
    """Even an error after some rows were written (here: the 150th insert fails) rolls the
    whole import back."""
    real_apply = roster.apply

    def failing_apply(s, school_id, rows, recorded_by):
        real_apply(s, school_id, rows[:149], recorded_by)
        raise RuntimeError("disk full")

    monkeypatch.setattr(roster, "apply", failing_apply)
    before = _counts(registry)
    with pytest.raises(RuntimeError):
        registry.import_roster(cli_actor(), world.schools["A"]["id"], GOOD)
    assert _counts(registry) == before
