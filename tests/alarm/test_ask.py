"""A dispatcher's question on the terminal (firmware/alarm/ask.py, under the MicroPython VM):
answered by the child's presses, "no answer" (0) once its timeout passes and only then, one
question at a time, a resent question not put to the child twice."""

import textwrap

PRELUDE = """
import json, time
from alarm.ask import Ask, YES_NO, PRESS_N
out = []
"""


def run(mpy, body: str):
    return mpy.json(PRELUDE + textwrap.dedent(body) + "\nprint(json.dumps(out))\n")


def test_answered_by_presses_once(mpy):
    out = run(mpy, """
        a = Ask()
        out.append(a.start(7, YES_NO, 2, 60, 1000))
        out.append(a.start(7, YES_NO, 2, 60, 1500))  # the same question resent: not new
        out.append(a.open)
        out.append(a.answer(0))  # no presses is no answer
        out.append(a.answer(2))
        out.append([a.open, a.answer(1)])  # answered: later presses answer nothing
    """)
    assert out == [True, False, True, None, [7, 2], [False, None]]


def test_times_out_with_no_answer_only_when_due(mpy):
    out = run(mpy, """
        a = Ask()
        a.start(3, PRESS_N, 4, 10, 5000)
        out.append(a.remaining_ms(5000))
        out.append(a.expire(3, 14999))  # not yet due
        out.append(a.expire(3, 15000))
        out.append([a.open, a.remaining_ms(16000)])
    """)
    assert out == [10000, None, [3, 0], [False, None]]


def test_a_new_question_replaces_an_open_one(mpy):
    out = run(mpy, """
        a = Ask()
        a.start(1, YES_NO, 2, 60, 0)
        a.start(2, PRESS_N, 5, 60, 100)
        out.append(a.expire(1, 100000))  # the old one's timer finds it replaced
        out.append(a.answer(300))  # capped to the reply's one byte
    """)
    assert out == [None, [2, 255]]


def test_deadline_survives_the_tick_wrap(mpy):
    out = run(mpy, """
        a = Ask()
        near = time.ticks_add(0, -2000)  # 2 s before ticks_ms wraps round
        a.start(9, YES_NO, 2, 10, near)
        out.append(a.remaining_ms(time.ticks_add(near, 4000)))
        out.append(a.expire(9, time.ticks_add(near, 10000)))
    """)
    assert out == [6000, [9, 0]]
