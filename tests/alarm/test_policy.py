"""How an uplink travels and when it is tried again (firmware/alarm/policy.py), under the
MicroPython VM. A driver stands in for the runner's send loop (decide -> send/sent or waiting ->
next_due, woken early when the data link changes), on a virtual millisecond clock, so whole
delivery timelines are checked: UDP first, SMS fallback on time, back-off, never held back; and
the follow-up tracking schedule with the police's TRACKING/CONFIG changes."""

import textwrap

PRELUDE = """
import json
from time import ticks_add, ticks_diff
from alarm.outbox import Entry
from alarm.policy import Policy, UDP, SMS, LINK_UP, LINK_CONNECTING, LINK_DOWN

def packet(counter, mtype=1):
    return bytes([0x10, mtype, 0, 0, 0, 7]) + counter.to_bytes(4, 'big') + bytes(41)

def at(changes, t):
    # the value of a step function [(from_ms, value), ...] at t
    v = None
    for t0, x in changes:
        if t0 <= t:
            v = x
    return v

def drive(pol, e, until, link, sms_ok, acked=None, refuse=(), period=None, max_steps=5000):
    # The runner's send loop for one outbox entry, until `until` ms or its ack at `acked` ms.
    # link/sms_ok: step functions of time; refuse: channels whose sends the modem refuses;
    # period: the ticks_ms period to emulate (ESP32: 2**30), None = this port's own.
    # -> [[t, channel], ...] of the sends the modem took; refused ones as [t, channel + '!']
    now = 0
    sends = []
    steps = 0
    while now <= until and (acked is None or now < acked):
        steps += 1
        if steps > max_steps:
            raise RuntimeError('busy loop at %d ms' % now)
        tk = now if period is None else now % period
        ch = pol.decide(e, tk, at(link, now), at(sms_ok, now))
        if ch is None:
            if e.due is None or ticks_diff(e.due, tk) <= 0:
                pol.waiting(e, tk)
        else:
            ok = ch not in refuse
            pol.sent(e, ch, tk, ok)
            sends.append([now, ch if ok else ch + '!'])
        wait = pol.next_due([e], tk)
        # a change of the data link wakes the loop early (transport.on_change -> kick)
        for t0, _ in link:
            if now < t0 < now + wait:
                wait = t0 - now
        now += wait
    return sends

out = None
"""


def run(mpy, body: str):
    return mpy.json(PRELUDE + textwrap.dedent(body) + "\nprint(json.dumps(out))\n")


def test_udp_first_while_the_link_is_up_and_an_ack_ends_it(mpy):
    out = run(mpy, """
        out = drive(Policy(), Entry(packet(1)), 60000, [(0, LINK_UP)], [(0, True)], acked=500)
    """)
    assert out == [[0, "udp"]]


def test_no_ack_udp_backs_off_and_the_sms_goes_when_due(mpy):
    # No ack ever (the server does not hear the datagrams): UDP retries back off from 3 s,
    # doubling, capped at 120 s; the same packet goes by SMS 15 s after the first try - not
    # when the UDP back-off next happens to wake - and again at most every 120 s.
    out = run(mpy, """
        out = drive(Policy(), Entry(packet(1)), 400000, [(0, LINK_UP)], [(0, True)])
    """)
    udp = [t for t, ch in out if ch == "udp"]
    sms = [t for t, ch in out if ch == "sms"]
    assert udp[:8] == [0, 3000, 9000, 21000, 45000, 93000, 189000, 309000]
    assert sms == [15000, 135000, 255000, 375000]


def test_no_data_coverage_the_sms_goes_at_once_and_is_repeated(mpy):
    out = run(mpy, """
        out = drive(Policy(), Entry(packet(1)), 250000, [(0, LINK_DOWN)], [(0, True)])
    """)
    assert out == [[0, "sms"], [120000, "sms"], [240000, "sms"]]


def test_a_link_still_connecting_falls_back_to_sms_after_the_deadline(mpy):
    # Registered (SMS works) but the data context never comes up.
    out = run(mpy, """
        out = drive(Policy(), Entry(packet(1)), 140000, [(0, LINK_CONNECTING)], [(0, True)])
    """)
    assert out == [[0 + 15000, "sms"], [135000, "sms"]]


def test_out_of_coverage_nothing_is_lost_and_it_goes_the_moment_the_link_is_up(mpy):
    out = run(mpy, """
        out = drive(Policy(), Entry(packet(1)), 41000,
                    [(0, LINK_CONNECTING), (40000, LINK_UP)], [(0, False), (39000, True)])
    """)
    assert [40000, "udp"] in out and all(t >= 39000 for t, _ in out)


def test_a_new_data_link_is_tried_at_once_whatever_the_back_off(mpy):
    # Datagrams vanish for 100 s (the back-off has grown to 96 s); the link drops and comes back
    # at 110 s: the packet goes on the new link at once, not 79 s later.
    out = run(mpy, """
        out = drive(Policy(), Entry(packet(1)), 111000,
                    [(0, LINK_UP), (100000, LINK_CONNECTING), (110000, LINK_UP)], [(0, False)])
    """)
    assert out[-1] == [110000, "udp"], out


def test_a_refused_send_is_retried_soon_not_backed_off(mpy):
    # The modem refuses the datagram (socket gone): the next try follows after retry_ms,
    # without doubling, and refusals are not counted as tries.
    out = run(mpy, """
        e = Entry(packet(1))
        s = drive(Policy(), e, 10000, [(0, LINK_UP)], [(0, False)], refuse=('udp',))
        out = [s, e.tries]
    """)
    assert out == [[[0, "udp!"], [3000, "udp!"], [6000, "udp!"], [9000, "udp!"]], 0]


def test_a_refused_sms_is_tried_again_and_udp_is_not_starved(mpy):
    # The gateway refuses SMS (e.g. no credit): the SMS is tried again after retry_ms, and
    # UDP retries go on beside it on their own schedule.
    out = run(mpy, """
        out = drive(Policy(), Entry(packet(1)), 50000, [(0, LINK_UP)], [(0, True)],
                    refuse=('sms',))
    """)
    udp = [t for t, ch in out if ch == "udp"]
    sms = [t for t, ch in out if ch == "sms!"]
    assert udp == [0, 3000, 9000, 21000, 45000]
    assert sms[:3] == [15000, 18000, 21000]


def test_check_ins_never_go_by_sms(mpy):
    out = run(mpy, """
        out = drive(Policy(), Entry(packet(1, 0x05)), 60000, [(0, LINK_DOWN)], [(0, True)])
    """)
    assert out == []


def test_next_due_is_the_earliest_entry_and_idle_otherwise(mpy):
    out = run(mpy, """
        pol = Policy()
        a, b = Entry(packet(1)), Entry(packet(2))
        out = [pol.next_due([], 0)]
        a.due, b.due = 9000, 4000
        out.append(pol.next_due([a, b], 1000))
        b.due = None
        out.append(pol.next_due([a, b], 1000))
        a.due = b.due = 500
        out.append(pol.next_due([a, b], 1000))
        a.due = b.due = 900000
        out.append(pol.next_due([a, b], 1000))
    """)
    assert out == [60000, 3000, 0, 0, 60000]


def test_tracking_schedule_fast_then_slow_and_slow_on_a_low_battery(mpy):
    out = run(mpy, """
        pol = Policy()
        out = [pol.track_interval_s(s, b) for s, b in
               ((0, 80), (599, 80), (600, 80), (5000, 80), (0, None), (0, 19), (0, 20), (100, 0))]
    """)
    assert out == [60, 60, 600, 600, 60, 600, 60, 600]


def test_a_tracking_downlink_replaces_the_schedule_zero_keeps_a_value(mpy):
    out = run(mpy, """
        pol = Policy()
        pol.tracking(30, 300, 120, 35)
        a = [pol.track_interval_s(s, b) for s, b in ((0, 80), (299, 80), (300, 80), (0, 34))]
        pol.tracking(0, 0, 900, 0)
        b = [pol.track_interval_s(s, b) for s, b in ((0, 80), (300, 80), (0, 34), (0, 40))]
        c = Policy()  # a class default is not changed for other instances
        out = [a, b, c.track_interval_s(0, 80), c.track_interval_s(700, 80)]
    """)
    assert out == [[30, 30, 120, 120], [30, 900, 900, 30], 60, 600]


def test_stand_down_ends_the_polices_tracking_schedule(mpy):
    # "A TRACKING downlink replaces these until stand-down": the next alert starts afresh.
    out = run(mpy, """
        pol = Policy()
        pol.tracking(10, 100, 100, 50)
        pol.stand_down()
        out = [pol.track_interval_s(0, 40), pol.track_interval_s(700, 80)]
    """)
    assert out == [60, 600]


def test_config_downlink_moves_the_sms_deadline_and_the_low_battery_mark(mpy):
    out = run(mpy, """
        pol = Policy()
        pol.configure([(6, 5), (8, 50), (99, 1), (1, 3600)])  # unknown/other keys ignored
        s = drive(pol, Entry(packet(1)), 20000, [(0, LINK_UP)], [(0, True)])
        out = [[t for t, ch in s if ch == 'sms'], pol.track_interval_s(0, 45),
               pol.track_interval_s(0, 55), pol.sms_after_ms]
    """)
    assert out == [[5000], 600, 60, 5000]


def test_an_absurd_sms_deadline_from_the_server_cannot_switch_the_fallback_off(mpy):
    out = run(mpy, """
        pol = Policy()
        pol.configure([(6, 0xFFFFFFFF)])
        s = drive(pol, Entry(packet(1)), 3700000, [(0, LINK_CONNECTING)], [(0, True)])
        out = s[:1]
    """)
    assert out and out[0][1] == "sms" and out[0][0] <= 3600000


def test_esp32_ticks_wrap_never_stops_the_sms_fallback(mpy):
    # ESP32 ticks_ms wrap every 2**30 ms: differences are only valid within ~6.2 days. A packet
    # waiting longer (registered for SMS, the data context never opening, no SMS gateway
    # answering until day 7) must still fall back to SMS - not only after another 6 days.
    out = run(mpy, """
        import alarm.policy as policy
        P = 1 << 30
        def add(t, d):
            return (t + d) % P
        def diff(a, b):
            return (a - b + P // 2) % P - P // 2
        policy.ticks_add = ticks_add = add
        policy.ticks_diff = ticks_diff = diff
        pol = Policy()
        pol.retry_ms = 60000  # look once a minute: a week in 10k steps
        day = 86400000
        out = drive(pol, Entry(packet(1)), 7 * day + 600000, [(0, LINK_CONNECTING)],
                    [(0, False), (7 * day, True)], period=P, max_steps=20000)
    """)
    day = 86_400_000
    assert out and out[0][1] == "sms" and out[0][0] - 7 * day <= 60_000, out
