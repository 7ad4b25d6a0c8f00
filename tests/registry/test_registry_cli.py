"""`urelief registry …`: set up a database, add a school and operators, import a roster
(a bad one is refused whole, with row numbers), list, verify the audit chain."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from urelief.cli import main
from urelief.registry.db import Database
from urelief.registry.service import Registry

ROSTER_A = (Path(__file__).parent / "data" / "roster_a.csv").read_text(encoding="utf-8")


@pytest.fixture
def run(empty_db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("URELIEF_VAR", str(tmp_path / "var"))
    monkeypatch.delenv("URELIEF_SERVER_KEY", raising=False)
    monkeypatch.delenv("URELIEF_SERVER_KEY_FILE", raising=False)
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(main, ["registry", *args[:1], "--db", empty_db_url, *args[1:]],
                             input=input, catch_exceptions=False)
    return invoke


def test_cli_end_to_end(run, empty_db_url, tmp_path):
    r = run("list", "schools")
    assert r.exit_code != 0 and "urelief registry migrate" in r.output
    assert run("init-db").exit_code == 0
    assert "S-100 Hanbit" in run("add-school", "S-100", "Hanbit").output
    r = run("add-operator", "teacher", "--role", "school_admin", "--school", "S-100")
    assert r.exit_code == 0
    token = r.stdout.strip().splitlines()[-1]
    actor = Registry(Database(empty_db_url)).authenticate(token)
    assert actor is not None and actor.username == "teacher" and actor.school_id == 1
    assert run("add-operator", "nobody", "--role", "school_admin").exit_code == 1

    bad = tmp_path / "bad.csv"
    bad.write_text(ROSTER_A.replace("Lee Hana,3-2,2016", "Lee Hana,3-2,twenty"), encoding="utf-8")
    r = run("import-roster", "S-100", str(bad), "--country", "82")
    assert r.exit_code == 1
    assert "row 3: birth_year: a year like 2015" in r.stderr
    assert "(0 of 0)" in run("list", "subscribers").stderr  # nothing half-imported

    good = tmp_path / "good.csv"
    good.write_text(ROSTER_A, encoding="utf-8")
    assert "would import 3 rows" in run("import-roster", "S-100", str(good), "--dry-run",
                                        "--country", "82").output
    r = run("import-roster", "S-100", str(good), "--country", "82")
    assert r.exit_code == 0 and "3 new" in r.output
    r = run("list", "subscribers", "--school", "S-100")
    assert r.stdout.count("\n") == 3 and "Kim Minji" in r.stdout
    audit = run("list", "audit").stdout
    assert "roster.import" in audit and "cli:" in audit
    r = run("verify-audit")
    assert r.exit_code == 0 and "chain intact" in r.output


def test_cli_retires_a_device_and_withdraws_a_consent(run, empty_db_url, tmp_path, monkeypatch):
    import os

    from urelief.registry.keys import ServerKey
    from urelief.registry.service import cli_actor

    monkeypatch.setenv("URELIEF_SERVER_KEY", "22" * 32)
    assert run("init-db").exit_code == 0
    assert run("add-school", "S-100", "Hanbit").exit_code == 0
    good = tmp_path / "good.csv"
    good.write_text(ROSTER_A, encoding="utf-8")
    assert run("import-roster", "S-100", str(good), "--country", "82").exit_code == 0
    reg = Registry(Database(empty_db_url), ServerKey(bytes.fromhex("22" * 32)))
    pupil = reg.list_subscribers(cli_actor())["items"][0]
    reg.register_device(cli_actor(), 0xAB12, os.urandom(32), subscriber_id=pupil["id"])
    r = run("retire-device", "0x0000ab12")
    assert r.exit_code == 0 and "0x0000ab12 retired" in r.output
    assert reg.get_device(cli_actor(), 0xAB12)["status"] == "retired"
    assert any(c["scope"] == "location" and c["active"]
               for c in reg.list_consents(cli_actor(), pupil["id"])["items"])
    r = run("withdraw-consent", str(pupil["id"]), "location")
    assert r.exit_code == 0 and "1 location consent(s) withdrawn" in r.output
    assert not any(c["scope"] == "location" and c["active"]
                   for c in reg.list_consents(cli_actor(), pupil["id"])["items"])
    assert run("retire-device", "0x9999").exit_code != 0  # no such device: a clear error
    reg.db.dispose()
