"""gnss/plan.py on the MicroPython VM: when the modem's own GNSS may take the radio. An SOS is
never held back by a window; a fix follows it; refreshes are bounded and battery-aware."""

PLAN = """
import json
from gnss.plan import Plan, SOS_NONE, SOS_UNSENT, SOS_UNACKED
out = []
def P(x): out.append(x)
"""


def run(mpy, body: str):
    return mpy.json(PLAN + body + "\nprint(json.dumps(out))")


def test_boot_takes_a_fix_then_refreshes_every_15_min_or_hourly_on_low_battery(mpy):
    got = run(mpy, """
p = Plan()
P(p.wait_ms(0, False, SOS_NONE, 0, None))         # nothing known: at once
p.opened(False); p.closed(50000)
P(p.wait_ms(60000, False, SOS_NONE, 0, 10000, 80))  # 15 min after the last window
P(p.wait_ms(60000, False, SOS_NONE, 0, 10000, 10))  # low battery: hourly
P(p.window_ms(False))
""")
    assert got == [0, 900_000 - 10_000, 3_600_000 - 10_000, 60_000]


def test_refreshes_without_a_fix_back_off_to_four_hours(mpy):
    got = run(mpy, """
p = Plan()
for k in range(6):
    p.closed(0, False)
    P(p.wait_ms(0, False, SOS_NONE, 0, None, 80) // 1000)
p.closed(0, True)
P(p.wait_ms(0, False, SOS_NONE, 0, None, 80) // 1000)
""")
    assert got == [1800, 3600, 7200, 14400, 14400, 14400, 900]


def test_sim7080_never_opens_a_window_before_the_sos_is_out(mpy):
    got = run(mpy, """
p = Plan(False)
p.opened(False); p.closed(0)
P(p.wait_ms(1000, True, SOS_UNSENT, 0, 90000) > 0)   # the SOS first
P(p.wait_ms(1000, True, SOS_UNACKED, 500, 90000))     # sent, no ack yet: grace for the SMS
P(p.wait_ms(1000, True, SOS_UNACKED, 20000, 90000))   # grace over: window
P(p.wait_ms(1000, True, SOS_NONE, 0, 90000))          # acked: window at once
P(p.wait_ms(1000, True, SOS_NONE, 0, 4000))           # fix fresh: none needed yet
""")
    assert got == [True, 19_500, 0, 0, 6_000]


def test_a_window_closes_at_once_for_an_sos_at_its_fix_or_its_end(mpy):
    got = run(mpy, """
p = Plan(False)
P(p.stop(5000, 0, False, SOS_UNSENT, False))   # idle refresh, the child presses: close
P(p.stop(5000, 0, True, SOS_NONE, True))       # the fix: LTE back for the POSITION
P(p.stop(5000, 0, True, SOS_NONE, False))
P(p.stop(90000, 0, True, SOS_NONE, False))     # bounded
P(p.stop(60000, 0, False, SOS_NONE, False))
P(p.stop(34000, 0, True, SOS_UNACKED, False))  # no ack yet: a cold start's worth, no more
P(p.stop(35000, 0, True, SOS_UNACKED, False))
P([p.good(4.5), p.good(150), p.good(None)])
""")
    assert got == ["sos waiting", "fix", None, "time up", "time up", None, "sos unacked",
                   [True, False, False]]


def test_in_an_alert_lte_gets_a_gap_between_windows(mpy):
    got = run(mpy, """
p = Plan(False)
P(p.wait_ms(0, True, SOS_NONE, 0, None))
p.opened(True); p.closed(30000)
P(p.wait_ms(40000, True, SOS_NONE, 0, 20000))   # 60 s of LTE after the window
P(p.wait_ms(95000, True, SOS_NONE, 0, 20000))
P(p.wait_ms(95000, False, SOS_NONE, 0, 20000))  # stood down: back to the idle rhythm
""")
    assert got == [0, 50_000, 0, 900_000 - 65_000]


def test_a_modem_with_gnss_beside_lte_polls_through_the_alert(mpy):
    got = run(mpy, """
p = Plan(True)
P(p.wait_ms(0, True, SOS_UNSENT, 0, None))      # nothing to hold back: at once
p.opened(True)
P(p.stop(5000, 0, True, SOS_UNSENT, True))      # keeps polling: no RF to give back
P(p.stop(90000, 0, True, SOS_NONE, True))
p.closed(90000)
P(p.wait_ms(90001, True, SOS_NONE, 0, 500))     # and on again at once
""")
    assert got == [0, None, "time up", 0]
