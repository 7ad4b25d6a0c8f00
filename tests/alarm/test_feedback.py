"""The alarm's state machine (firmware/alarm/feedback.py) under the MicroPython VM: idle -> raised ->
sent -> seen -> dispatched -> stood down, each step felt once; acks of an older alert ignored;
a repeat press is the same alert; a cancel and a duress cancel feel the same but only the true
one ends the alert (the duress one keeps it live, silently); the police's stand-down."""

import textwrap

PRELUDE = """
import json
from alarm.feedback import Alarm
out = []
def step(a, what):
    # record (what returned, the state) after one event
    out.append([what, a.name])
"""


def run(mpy, body: str):
    return mpy.json(PRELUDE + textwrap.dedent(body) + "\nprint(json.dumps(out))\n")


def test_an_alert_climbs_the_levels_each_felt_once_then_stands_down(mpy):
    out = run(mpy, """
        a = Alarm()
        out.append([a.name, a.active])
        step(a, a.raise_(5, 1000))
        step(a, a.on_ack(5, 1))
        step(a, a.on_ack(5, 1))  # the SMS copy's ack: nothing new
        step(a, a.on_ack(6, 2))  # the follow-up position's ack, seen by a dispatcher
        step(a, a.on_ack(6, 2))
        step(a, a.on_ack(7, 3))
        step(a, a.on_ack(8, 2))  # a lower level never steps back nor is felt
        step(a, a.stand_down(1, 5))
        out.append([a.active, a.reason, a.on_ack(9, 3), a.name])
    """)
    assert out == [
        ["idle", False], [True, "raised"],
        ["sent", "sent"], [None, "sent"],
        ["seen", "seen"], [None, "seen"],
        ["dispatched", "dispatched"], [None, "dispatched"],
        [True, "stood_down"], [False, 1, None, "stood_down"],
    ]


def test_a_skipped_level_is_not_felt_afterwards(mpy):
    out = run(mpy, """
        a = Alarm()
        a.raise_(1, 0)
        step(a, a.on_ack(1, 3))  # the UDP ack was lost; the dispatcher acted fast
        step(a, a.on_ack(1, 1))
        step(a, a.on_ack(1, 2))
        step(a, a.on_ack(1, 9))  # an unknown higher level counts as dispatched
        step(a, a.on_ack(1, 0))
    """)
    assert out == [["dispatched", "dispatched"], [None, "dispatched"], [None, "dispatched"],
                   [None, "dispatched"], [None, "dispatched"]]


def test_acks_from_before_the_alert_are_ignored(mpy):
    out = run(mpy, """
        a = Alarm()
        step(a, a.on_ack(3, 1))  # idle: an ack (e.g. a check-in's) feels nothing
        a.raise_(5, 0)
        a.on_ack(5, 3)
        a.stand_down(1, 0)
        step(a, a.raise_(9, 100))  # a new alert
        step(a, a.on_ack(5, 3))  # the old alert's SOS, acked late (a resent copy)
        step(a, a.on_ack(7, 2))  # the old alert's position
        step(a, a.on_ack(10, 1))  # this alert's position: the SOS may not be there yet
        step(a, a.on_ack(9, 1))  # this alert's own SOS: the server has it
        out.append([a.first, a.sos, a.level])
    """)
    assert out == [[None, "idle"], [True, "raised"], [None, "raised"], [None, "raised"],
                   [None, "raised"], ["sent", "sent"], [9, 9, 1]]


def test_a_repeat_press_is_the_same_alert(mpy):
    out = run(mpy, """
        a = Alarm()
        a.raise_(4, 1000, drill=True)
        a.on_ack(4, 2)
        step(a, a.raise_(6, 9000))  # pressed again: a newer SOS of the same alert
        step(a, a.on_ack(6, 1))  # its ack feels nothing: the child already felt SEEN
        step(a, a.on_ack(6, 3))
        out.append([a.first, a.sos, a.raised_at, a.drill])
    """)
    assert out == [[False, "seen"], [None, "seen"], ["dispatched", "dispatched"],
                   [4, 6, 1000, True]]


def test_a_true_cancel_ends_the_alert(mpy):
    out = run(mpy, """
        a = Alarm()
        step(a, a.cancel(False))  # nothing to cancel
        a.raise_(2, 0)
        a.on_ack(2, 1)
        step(a, a.cancel(False))
        out.append([a.active, a.reason, a.duress, a.on_ack(3, 2)])
        step(a, a.raise_(8, 500))  # the next press is a new alert, felt again
        step(a, a.on_ack(8, 1))
    """)
    assert out == [[None, "idle"], ["cancel_ack", "stood_down"], [False, 4, False, None],
                   [True, "raised"], ["sent", "sent"]]


def test_a_duress_cancel_feels_the_same_but_the_alert_stays_live_and_silent(mpy):
    out = run(mpy, """
        true, duress = Alarm(), Alarm()
        for a in (true, duress):
            a.raise_(2, 0)
            a.on_ack(2, 1)
        out.append([true.cancel(False), duress.cancel(True)])  # identical to the touch
        a = duress
        out.append([a.active, a.duress, a.name])
        step(a, a.on_ack(3, 2))  # the police go on: nothing felt that the abuser could notice
        step(a, a.on_ack(3, 3))
        step(a, a.raise_(5, 100))  # pressed again: still the same, silent alert
        step(a, a.on_ack(5, 3))
        step(a, a.stand_down(1, 0))  # only the police end it
    """)
    assert out == [["cancel_ack", "cancel_ack"], [True, True, "sent"],
                   [None, "seen"], [None, "dispatched"], [False, "dispatched"],
                   [None, "dispatched"], [True, "stood_down"]]


def test_stand_down_applies_to_this_alert_only(mpy):
    out = run(mpy, """
        a = Alarm()
        step(a, a.stand_down(1, 0))  # idle: nothing to end
        a.raise_(10, 0)
        a.raise_(12, 50)
        step(a, a.stand_down(2, 7))  # for an older alert (its SOS before this one's first)
        step(a, a.stand_down(3, 12))  # names this alert's repeat SOS
        out.append(a.reason)
        a.raise_(20, 100)
        step(a, a.stand_down(2, 0))  # 0: whatever alert is live
        out.append(a.reason)
    """)
    assert out == [[False, "idle"], [False, "raised"], [True, "stood_down"], 3,
                   [True, "stood_down"], 2]


def test_sent_only_once_an_ack_names_this_alerts_own_sos(mpy):
    # The SOS (#5) was lost; the follow-up position #6 got through and was acked, even at a
    # higher level: the police may have no incident, so nothing is felt and no level counts.
    # A repeat press's SOS (#8) confirms the alert as much as the first; from then on the
    # positions' acks carry the level.
    out = run(mpy, """
        a = Alarm()
        a.raise_(5, 0)
        step(a, a.on_ack(6, 1))
        step(a, a.on_ack(6, 2))
        step(a, a.raise_(8, 100))  # a repeat press: a newer SOS of the same alert
        step(a, a.on_ack(7, 3))
        step(a, a.on_ack(8, 1))
        step(a, a.on_ack(9, 2))
        b = Alarm()
        b.raise_(20, 0)
        for c in range(21, 40):
            b.raise_(c, 1)  # many repeats: the first SOS is still one of the alert's
        out.append([b.on_ack(20, 1), len(b.sos_counters)])
    """)
    assert out == [[None, "raised"], [None, "raised"], [False, "raised"], [None, "raised"],
                   ["sent", "sent"], ["seen", "seen"], ["sent", 8]]
