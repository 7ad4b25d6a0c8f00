"""/device.json and /board.json checked per field at boot (issue 9), on the MicroPython VM: a bad
value falls back to its default (or is dropped), one config_error event per field, never an
exception; a bad identity field leaves the device unprovisioned (it cannot send), never half-keyed."""

import json

from urelief.sim import events

GOOD = {"device_id": 7, "key_id": 2, "secret": "ab" * 32,
        "server": {"host": "sos.example", "port": 7420}, "sms_number": "+82112"}

LOAD = """
import json, config
config.DEVICE_FILE = config.BOARD_FILE = '/tmp/urelief-cfg-test.json'
with open(config.DEVICE_FILE, 'w') as f:
    f.write(%r)
d = config.%s()
for e in config.errors:
    print(e)
print('RESULT ' + json.dumps([d, config.missing(d) if %r else None]))
"""


def load(mpy, text: str, what: str = "load_device"):
    out = mpy.run(LOAD % (text, what, what == "load_device"))
    result = json.loads(out.split("RESULT ", 1)[1])
    return result[0], result[1], {(e["field"], e["action"]) for e in events.events(out, "config_error")}


def test_good_device_file_is_taken_as_written(mpy):
    d, missing, errors = load(mpy, json.dumps({**GOOD, "cancel": {"presses": 4, "duress_presses": 6}}))
    assert errors == set() and missing == []
    assert d["key_id"] == 2 and d["cancel"] == {"presses": 4, "duress_presses": 6}


def test_bad_fields_fall_back_per_field(mpy):
    bad = {**GOOD, "gesture": {"hold_ms": "3000"}, "checkin_s": 5, "drill": 1,
           "cancel": {"presses": 4, "duress_presses": 4}, "psm": [1], "centre": "112",
           "self_check": {"presses": 1}, "later_field": 3}
    d, missing, errors = load(mpy, json.dumps(bad))
    assert missing == []  # still provisioned: only settings were bad
    assert errors == {("gesture", "default"), ("checkin_s", "default"), ("drill", "dropped"),
                      ("cancel", "dropped"), ("psm", "dropped"), ("centre", "dropped"),
                      ("self_check", "default")}
    assert d["gesture"]["hold_ms"] == 3000 and d["checkin_s"] == 86400
    assert "drill" not in d and "cancel" not in d and d["later_field"] == 3


def test_bad_identity_leaves_the_device_unprovisioned(mpy):
    for field, value in (("key_id", 16), ("secret", "zz" * 32), ("device_id", 0),
                         ("device_id", "7"), ("secret", "ab" * 31)):
        d, missing, errors = load(mpy, json.dumps({**GOOD, field: value}))
        assert field in missing and errors == {(field, "none")}, (field, value)


def test_gesture_rules(mpy):
    for g in ({"hold_ms": 0, "presses": 0}, {"presses": 1}, {"hold_ms": 200},
              {"hold_ms": 3000, "window_ms": 50}, {"count": "yes"}, "hold"):
        _, _, errors = load(mpy, json.dumps({**GOOD, "gesture": g}))
        assert errors == {("gesture", "default")}, g


def test_unreadable_device_file_is_an_error_not_a_crash(mpy):
    _, missing, errors = load(mpy, json.dumps(GOOD)[:30])
    assert errors == {("file", "none")} and "secret" in missing
    _, missing, errors = load(mpy, "[1, 2]")
    assert errors == {("file", "none")} and missing


def test_board_file_bad_pins_dropped_no_button_no_app(mpy):
    board = {"name": "b", "pins": {"button": {"gpio": 1}, "vibration": {"gpio": 10},
                                   "led": {"gpio": 99}, "modem_uart": {"id": 1, "tx": 17, "rx": 18},
                                   "battery_adc": "4"},
             "modem": {"dialect": "nokia"}, "gnss": {"source": "sky"}}
    b, _, errors = load(mpy, json.dumps(board), "load_board")
    assert errors == {("pins.led", "dropped"), ("pins.battery_adc", "dropped"),
                      ("modem", "dropped"), ("gnss", "dropped")}
    assert set(b["pins"]) == {"button", "vibration"}  # no modem: the app says cannot_send
    board["pins"]["button"] = {"gpio": 1, "active": "sideways"}
    b, _, errors = load(mpy, json.dumps(board), "load_board")
    assert b is None and ("pins.button", "none") in errors
    b, _, errors = load(mpy, "{", "load_board")
    assert b is None and errors == {("file", "none")}


def test_a_real_board_file_keeps_what_the_firmware_reads_and_no_prose(mpy):
    """A real board file's description, sources and notes are heap kept for nothing on a chip
    without PSRAM: load_board holds its name, pins, modem, GNSS and power, without any note."""
    from urelief.paths import ROOT

    text = (ROOT / "boards" / "lilygo-t-sim7080g-s3.json").read_text()
    b, _, errors = load(mpy, text, "load_board")
    assert set(b) == {"name", "pins", "modem", "gnss", "power"} and errors == set()
    assert "note" not in json.dumps(b)
    whole = json.loads(text)
    assert b["pins"]["button"] == {k: v for k, v in whole["pins"]["button"].items() if k != "note"}
    assert b["power"]["rails"].keys() == whole["power"]["rails"].keys()


def test_a_pin_claimed_twice_keeps_the_button_and_the_motor(mpy):
    """A safe_mode pin on the SOS button would send a child holding SOS at power-on into safe
    mode (no app, no SOS): the button keeps its pin, the other role is dropped, said per field."""
    board = {"name": "b", "pins": {"button": {"gpio": 1}, "vibration": {"gpio": 10},
                                   "safe_mode": {"gpio": 1}, "modem_pwrkey": {"gpio": 10},
                                   "modem_uart": {"id": 1, "tx": 17, "rx": 17},
                                   "gnss_uart": {"id": 2, "tx": 43, "rx": 44}},
             "modem": {"dialect": "sim7080"}}
    b, _, errors = load(mpy, json.dumps(board), "load_board")
    assert errors == {("pins.safe_mode", "dropped"), ("pins.modem_pwrkey", "dropped"),
                      ("pins.modem_uart", "dropped")}
    assert set(b["pins"]) == {"button", "vibration", "gnss_uart"}
    board["pins"]["vibration"] = {"gpio": 1}
    b, _, errors = load(mpy, json.dumps(board), "load_board")
    assert b is None and ("pins.vibration", "none") in errors
