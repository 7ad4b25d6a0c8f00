"""The report block every uplink carries (firmware/alarm/report.py) under the MicroPython VM,
filled from a GNSS fix, the serving cell, the battery and the best time source, sealed by the
firmware's codec and then opened by the server's own implementation (urelief.protocol, CPython):
what the police read must be what the device knew - a fix never withheld, its age, a trusted
flag only for a fresh good fix - and the bytes identical to the server's encoding of it."""

import calendar
import textwrap

from urelief import protocol as p

SECRET = bytes(range(32, 64))
DEVICE = 777
T_FIX = 98_000  # ticks_ms of the fix
SEOUL = (375_665_000, 1_269_780_000)  # 1e-7 degree
NOON = calendar.timegm((2026, 11, 23, 12, 0, 0))

PRELUDE = f"""
import json
from alarm import report
from gnss.fix import Fix
from proto.packet import Codec, TIME_GNSS, TIME_NETWORK, TIME_RTC
from proto.seal import Seal
codec = Codec(Seal({SECRET!r}, {DEVICE}, 0))

def fix(mode=3, hdop_c=90, t_ms={T_FIX}, moving=True, lat=True):
    f = Fix()
    f.mode = mode
    f.lat_e7, f.lon_e7 = {SEOUL[0]}, {SEOUL[1]}
    if not lat:
        f.lat_e7 = f.lon_e7 = None
    f.hdop_c = hdop_c
    f.sats_used = 9
    f.t_ms = t_ms
    f.date, f.time_ms = 20261123, 43200123
    if moving:
        f.speed_mms, f.course_cdeg = 1500, 27050
    return f

def gnss_clock():
    c = report.UtcClock()
    c.set(report.unix_s(20261123, 43200123), 123, TIME_GNSS, {T_FIX})
    return c

def cell(plmn='45005'):
    c = report.Cell()
    c.plmn, c.tac, c.ci, c.rat, c.signal_dbm = plmn, 0x1234, 0x1A2B3C4, 4, -95
    return c

def sos(counter, at, **kw):
    r = report.fill(at, **kw)
    return [bytes(codec.sos(counter, r, 1)).hex(), r.trusted]

out = {{}}
"""

FULL = dict(
    time_s=NOON + 2, time_source=p.TimeSource.GNSS, fix=True, lat_e7=SEOUL[0], lon_e7=SEOUL[1],
    accuracy_m=5, fix_age_s=2, sats=9, trusted=True, moving=True, speed_cm_s=150,
    course_deg=270, cell=True, mcc="450", mnc="05", tac=0x1234, cell_id=0x1A2B3C4,
    rat=p.Rat.LTE_M, signal_dbm=-95, battery_pct=78, charging=True, drill=False)
NO_FIX = dict(fix=False, lat_e7=None, lon_e7=None, accuracy_m=None, fix_age_s=None, sats=None,
              trusted=False)
STILL = dict(moving=False, speed_cm_s=None, course_deg=None)

CASES = {
    # name: (MicroPython call, the report the server must read)
    "fresh fix": ("sos(1, 100000, fix=fix(), clock=gnss_clock(), battery_pct=78, charging=True,"
                  " cell=cell())", FULL),
    "lost fix: last known with its age": (
        "sos(2, 193000, fix=fix(), clock=gnss_clock(), battery_pct=78, charging=True,"
        " cell=cell())", {**FULL, "time_s": NOON + 95, "fix_age_s": 95, "trusted": False}),
    "fresh but 125 m": (
        "sos(3, 98000, fix=fix(hdop_c=2500), clock=gnss_clock(), battery_pct=78,"
        " charging=True, cell=cell())",
        {**FULL, "time_s": NOON, "accuracy_m": 125, "fix_age_s": 0, "trusted": False}),
    "2D fix 10 s old is trusted": (
        "sos(4, 108999, fix=fix(mode=2, moving=False), battery_pct=5)",
        {**FULL, **STILL, "time_s": None, "time_source": p.TimeSource.NONE, "fix_age_s": 10,
         "cell": False, "mcc": None, "mnc": None, "tac": None, "cell_id": None,
         "rat": p.Rat.UNKNOWN, "signal_dbm": None, "battery_pct": 5, "charging": False}),
    "11 s old is not": (
        "sos(5, 109000, fix=fix(moving=False), battery_pct=5, cell=cell())",
        {**FULL, **STILL, "time_s": None, "time_source": p.TimeSource.NONE, "fix_age_s": 11,
         "trusted": False, "battery_pct": 5, "charging": False}),
    "no fix ever, no time": (
        "sos(6, 5000, battery_pct=60, cell=cell(), drill=True)",
        {**FULL, **NO_FIX, **STILL, "time_s": None, "time_source": p.TimeSource.NONE,
         "battery_pct": 60, "charging": False, "drill": True}),
    "a receiver without a solution": (
        "sos(7, 100000, fix=fix(mode=1, lat=False), clock=gnss_clock(), cell=cell())",
        {**FULL, **NO_FIX, **STILL, "battery_pct": None, "charging": False}),
    "a fix never stamped has no age": (
        "sos(8, 100000, fix=fix(t_ms=None, moving=False), clock=gnss_clock(), cell=cell('4500'))",
        {**FULL, **STILL, "fix_age_s": None, "trusted": False, "cell": False, "mcc": None,
         "mnc": None, "tac": None, "cell_id": None, "rat": p.Rat.UNKNOWN, "signal_dbm": None,
         "battery_pct": None, "charging": False}),
    "a fix stamped after the event is 0 s old": (
        "sos(9, 97500, fix=fix(), clock=gnss_clock(), battery_pct=78, charging=True,"
        " cell=cell())", {**FULL, "time_s": NOON - 1, "fix_age_s": 0}),
    "11 hours old goes in minutes": (
        "sos(10, 98000 + 40000000, fix=fix(), clock=gnss_clock(), battery_pct=78,"
        " charging=True, cell=cell())",
        {**FULL, "time_s": NOON + 40000, "fix_age_s": 666 * 60, "trusted": False}),
}


def test_the_server_reads_what_the_device_knew(mpy):
    names = list(CASES)
    body = "".join(f"out[{n!r}] = {CASES[n][0]}\n" for n in names)
    got = mpy.json(PRELUDE + body + "print(json.dumps(out))\n")
    ks = p.MemoryKeyStore()
    ks.add(DEVICE, 0, SECRET)
    for n in names:
        pkt_hex, trusted = got[n]
        pkt = bytes.fromhex(pkt_hex)
        assert len(pkt) == 10 + 32 + 1 + 8, n  # header, the 32-byte report, trigger, tag
        res = p.decode_uplink(pkt, ks, p.MemoryReplayWindow())
        assert res.ok and not res.warnings, (n, res)
        want = p.Report(**CASES[n][1])
        assert res.message.report == want, n
        assert trusted == want.trusted, n
        # byte for byte what the server's own encoder makes of that report
        server = p.encode_uplink(p.Sos(report=want, trigger=p.Trigger.HOLD), device_id=DEVICE,
                                 key_id=0, secret=SECRET, counter=res.counter)
        assert server == pkt, n


def test_utc_clock_keeps_the_best_source(mpy):
    out = mpy.json(PRELUDE + textwrap.dedent("""
        c = report.UtcClock()
        res = [c.at(5000)]
        res.append(c.set(1000, 0, TIME_RTC, 0))
        res.append(c.at(5000))
        res.append(c.set(2000, 500, TIME_NETWORK, 1000))  # 2000.5 s at 1000 ticks
        res.append(c.at(1499))
        res.append(c.at(1500))
        res.append(c.set(9, 0, TIME_RTC, 0))  # worse: refused
        res.append(c.set(3000, 0, TIME_GNSS, 2000))
        res.append(c.set(5, 0, TIME_NETWORK, 0))  # worse than GNSS: refused
        res.append(c.at(62000))
        print(json.dumps(res))
    """))
    assert out == [[None, 0], True, [1005, 1], True, [2000, 2], [2001, 2], False, True, False,
                   [3060, 3]]


def test_calendar_matches_cpython(mpy):
    dates = [(1970, 1, 1), (1999, 12, 31), (2000, 2, 29), (2000, 3, 1), (2024, 2, 29),
             (2026, 11, 23), (2038, 1, 19), (2100, 2, 28), (2100, 3, 1), (2106, 2, 7)]
    times = [0, 43_200_123, 86_399_999]
    got = mpy.json(PRELUDE + f"""
print(json.dumps([report.unix_s(y * 10000 + m * 100 + d, t) for y, m, d in {dates!r}
                  for t in {times!r}]))
""")
    want = [calendar.timegm((y, m, d, 0, 0, 0)) + t // 1000 for y, m, d in dates for t in times]
    assert got == want


def test_rat_from_the_modems_access_technology(mpy):
    got = mpy.json(PRELUDE + """
print(json.dumps([report.rat_of(a) for a in (None, 0, 1, 3, 8, 2, 4, 6, 7, 9, 10, 11, 12, 13)]
                 + [report.rat_of(7, True), report.rat_of(9, True)]))
""")
    R = p.Rat
    # 27.007 +COPS/+CEREG <AcT>: 10 is "E-UTRA connected to a 5GCN", an LTE cell, not NR
    assert got == [R.UNKNOWN, R.GSM, R.GSM, R.GSM, R.GSM, R.UMTS, R.UMTS, R.UMTS, R.LTE,
                   R.NB_IOT, R.LTE, R.NR, R.NR, R.NR, R.LTE_M, R.NB_IOT]


def test_odd_driver_values_still_make_a_sealed_sos(mpy):
    # A fuel gauge or modem reporting floats must not stop the SOS being sealed and stored.
    got = mpy.json(PRELUDE + """
c = cell()
c.signal_dbm, c.tac, c.rat = -80.6, None, None
print(json.dumps(sos(11, 100000, fix=fix(), battery_pct=55.7, charging=None, cell=c)))
""")
    ks = p.MemoryKeyStore()
    ks.add(DEVICE, 0, SECRET)
    res = p.decode_uplink(bytes.fromhex(got[0]), ks, p.MemoryReplayWindow())
    assert res.ok, res
    r = res.message.report
    assert (r.battery_pct, r.signal_dbm, r.tac, r.rat, r.charging) == (55, -80, 0, p.Rat.UNKNOWN,
                                                                        False)
