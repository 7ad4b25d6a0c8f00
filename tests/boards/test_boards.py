"""Board files: every real board passes; every fixture gets exactly its planted verdict; the
validator's dialect table is the firmware's and each board's capabilities are what its dialect
and GNSS source provide; `urelief boards check` exits accordingly."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from urelief import boards
from urelief.cli import main
from urelief.paths import BOARDS, BUILD_FIRMWARE

FIXTURES = sorted((BOARDS / "fixtures").glob("*.json"))
REAL = boards.board_files()


def test_there_are_real_boards_and_fixtures():
    names = {p.stem for p in REAL}
    assert {"sim", "lilygo-t-sim7080g-s3", "lilygo-t-a7670", "devkitc-sim7080g-ublox"} <= names
    assert len(FIXTURES) >= 20


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_real_board_has_no_errors(path):
    rep = boards.check_file(path)
    assert rep.errors == []


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_real_board_gives_the_firmware_what_it_reads(path):
    b = json.loads(path.read_text())
    pins = b["pins"]
    assert {"button", "vibration", "modem_uart"} <= pins.keys()
    assert pins["button"].get("wake") is True  # every real board wakes on the SOS button
    if b["gnss"]["source"] == "uart":
        assert "gnss_uart" in pins
    # a battery reading from somewhere
    assert "battery_adc" in pins or b.get("power", {}).get("battery") == "pmu"
    if path.stem != "sim":
        assert b["source"]["pinout"], "a real board names where its pin numbers come from"


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture_gets_its_planted_verdict(path):
    b = json.loads(path.read_text())
    want = b["fixture"]
    rep = boards.check_file(path)
    assert rep.verdict == want["verdict"], [str(f) for f in rep.findings]
    msgs = rep.errors if want["verdict"] == "error" else rep.warnings
    assert any(want["expect"] in m for m in msgs), (want["expect"], msgs)


def test_dialect_table_is_the_firmwares(mpy):
    # The firmware's own classes on the VM, against the table the validator derives from source.
    names = json.dumps(list(boards.DIALECTS))
    got = mpy.json("import json\nfrom modem import dialect\n"
                   f"print(json.dumps({{n: list(dialect(n).caps) for n in {names}}}))",
                   path=(BUILD_FIRMWARE,))  # compiled: three dialects' source overflow 96 KB
    assert {n: frozenset(c) for n, c in got.items()} == boards.DIALECT_CAPS
    schema = json.loads((BOARDS / "schema.json").read_text())
    assert set(schema["properties"]["modem"]["properties"]["dialect"]["enum"]) == set(
        boards.DIALECTS)


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_real_board_lists_exactly_its_capabilities(path):
    b = json.loads(path.read_text())
    assert set(b["capabilities"]) == boards.provided_caps(b)


def test_messages_name_pin_role_and_conflict():
    b = json.loads((BOARDS / "fixtures" / "esp32-button-on-flash-pin.json").read_text())
    msg = boards.check_board(b).errors[0]
    assert "GPIO7" in msg and "button" in msg and "flash" in msg


def test_unreadable_file_is_an_error(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    assert boards.check_file(bad).verdict == "error"


def test_cli_exit_codes():
    runner = CliRunner()
    ok = runner.invoke(main, ["boards", "check"])
    assert ok.exit_code == 0, ok.output
    assert "lilygo-t-a7670" in ok.output
    bad = runner.invoke(main, ["boards", "check", str(BOARDS / "fixtures" / "s3-flash-pin.json")])
    assert bad.exit_code == 1
    assert "GPIO30 (modem_pwrkey)" in bad.output
    warn = runner.invoke(main, ["boards", "check", "--strict",
                                str(BOARDS / "fixtures" / "esp32-battery-on-adc2.json")])
    assert warn.exit_code == 1


def test_schema_is_a_valid_json_schema():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(json.loads((BOARDS / "schema.json").read_text()))
