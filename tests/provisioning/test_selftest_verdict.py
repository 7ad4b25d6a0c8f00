"""The host's verdict on a self-test report; the label's check code; firmware/selftest.py on the
real MicroPython VM."""

import json

from urelief.provisioning.flow import boot_problem, judge
from urelief.provisioning.label import check_code

BOARD = {"name": "sim", "gnss": {"source": "uart"}}
GOOD = {"config": {"board": "sim", "device_id": 7, "key_id": 2, "missing": []},
        "counter": {"next": 1}, "battery": {"mv": 3940, "pct": 78, "charging": None},
        "modem": {"answered": True, "powered_on": False, "model": "SIM7080"},
        "gnss": {"source": "uart", "bytes": 71, "nmea": True},
        "vibration": {"on": True, "off": True, "ms": 400}}


def _with(**parts) -> dict:
    return {**GOOD, **parts}


def test_a_good_report_passes():
    assert judge(GOOD, BOARD, 7, 2) == []


def test_each_fault_is_named():
    cases = {
        "modem: no answer to AT": _with(modem={"answered": False, "powered_on": True}),
        "gnss: no NMEA on the receiver's UART (0 bytes)": _with(
            gnss={"source": "uart", "bytes": 0, "nmea": False}),
        "battery: 120 mV is no charged cell": _with(battery={"mv": 120, "pct": 0}),
        "vibration: the motor pin does not follow": _with(
            vibration={"on": True, "off": False, "ms": 400}),
        "config: the board says device 8 key 2, expected 7 key 2": _with(
            config={**GOOD["config"], "device_id": 8}),
        "config: device.json lacks secret": _with(config={**GOOD["config"], "missing": ["secret"]}),
        "counter: ProtoError('counter', 'corrupt /ctr')": _with(
            counter={"error": "ProtoError('counter', 'corrupt /ctr')"}),
        "battery: not reported": {k: v for k, v in GOOD.items() if k != "battery"},
    }
    for expected, report in cases.items():
        found = judge(report, BOARD, 7, 2)
        assert len(found) == 1 and found[0].startswith(expected), (expected, found)


def test_modem_gnss_board_needs_the_engine():
    board = {"name": "sim", "gnss": {"source": "modem"}}
    ok = _with(gnss={"source": "modem", "present": True})
    assert judge(ok, board, 7, 2) == []
    bad = _with(gnss={"source": "modem", "present": False, "error": "AtError('AT+CGNSPWR=0')"})
    assert judge(bad, board, 7, 2) == ["gnss: AtError('AT+CGNSPWR=0')"]


def test_check_code_is_short_stable_and_tied_to_the_key_generation():
    a = check_code(0x1234ABCD, 1, "a1b2c3d4e5f6", "P-001")
    assert len(a) == 7 and a[3] == "-" and a == check_code(0x1234ABCD, 1, "a1b2c3d4e5f6", "P-001")
    assert a != check_code(0x1234ABCD, 2, "a1b2c3d4e5f6", "P-001")
    assert a != check_code(0x1234ABCD, 1, "a1b2c3d4e5f7", "P-001")


def test_selftest_on_the_vm_says_what_is_missing(mpy):
    # The plain VM holds no provisioned files at /: the report says so, in its one JSON line.
    out = mpy.run("import selftest\nselftest.main()\n")
    line = [ln for ln in out.splitlines() if ln.startswith("SELFTEST ")][-1]
    report = json.loads(line[len("SELFTEST "):])
    assert "no board file /board.json" in report["config"]["error"]
    assert judge(report, BOARD, 7, 2) == [f"config: {report['config']['error']}", *(
        f"{k}: not reported" for k in ("counter", "modem", "gnss", "battery", "vibration"))]


def test_boot_problems_are_told_in_one_line():
    crash = ("urelief: boot board=sim reset=soft_reset\nTraceback (most recent call last):\n"
             '  File "main.py", line 6, in <module>\nMemoryError: memory allocation failed\n')
    assert boot_problem(crash) == "crashed at boot: MemoryError: memory allocation failed"
    assert boot_problem("urelief: boot board=sim\nurelief: cannot_send reason=not_provisioned "
                        "missing=secret\n") == "cannot_send reason=not_provisioned missing=secret"
    assert boot_problem("urelief: boot board=sim\nurelief: modem_ready model=sim7080\n") is None
