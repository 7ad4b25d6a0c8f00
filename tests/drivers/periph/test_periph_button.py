"""The button's gesture recogniser on the real MicroPython VM, fed with realistic edge trains
(contact bounce from the simulator's human model): bounce and bumps never count, holds and
multi-presses do, the boot hold-off and the deep-sleep wake press behave."""

import json
from pathlib import Path

import pytest
from urelief.sim.models.button import Human

HERE = Path(__file__).parent  # mpy_button_runner.py: runs the recogniser, a MicroPython module
HOLD3 = {"hold_ms": 3000}
TRIPLE = {"hold_ms": 3000, "presses": 3, "window_ms": 2000, "count": True}


def recognise(mpy, edges, cfg=TRIPLE, begin=(1, 0, False), end=None, mode="edges", tune=None,
              active=0):
    end = end if end is not None else (edges[-1][0] if edges else 0) + 5000
    spec = {"cfg": cfg, "begin": list(begin), "end": end, "mode": mode, "tune": tune or {},
            "active": active}
    lines = [json.dumps(spec)] + [f"{t:.3f} {lv}" for t, lv in edges]
    out = mpy.using(HERE).json("import mpy_button_runner\n", stdin=("\n".join(lines) + "\n").encode())
    out["kinds"] = [(g[0], g[1]) for g in out["gestures"]]
    return out


@pytest.fixture
def human():
    return Human(active=0, bounce_ms=5, seed=7)


@pytest.mark.parametrize("mode", ["edges", "poll"])
def test_bounce_train_alone_is_nothing(mpy, human, mode):
    edges = []
    for i in range(20):  # 20 chatter bursts of 5 ms, 300 ms apart (a shaken, worn switch)
        edges += human.chatter_edges(2000 + 300 * i, 5)
    out = recognise(mpy, edges, mode=mode)
    assert out["kinds"] == []
    assert out["pressed"] is False


@pytest.mark.parametrize("mode", ["edges", "poll"])
def test_50ms_bumps_never_count(mpy, human, mode):
    edges = []
    for i in range(6):  # six knocks, close enough to look like a multi-press if they counted
        edges += human.bump_edges(2000 + 200 * i, 50)
    out = recognise(mpy, edges, mode=mode)
    assert out["kinds"] == []
    assert out["bumps"] == 6


@pytest.mark.parametrize("mode", ["edges", "poll"])
def test_3s_hold_fires_once_while_still_held(mpy, human, mode):
    edges = human.press_edges(2000, 5000)
    out = recognise(mpy, edges, cfg=HOLD3, mode=mode)
    assert out["kinds"] == [("hold", 1)]
    t = out["gestures"][0][2]
    assert 5000 <= t <= 5000 + 5 + 10  # 3 s after the contact settled, long before release
    assert t < 7000


def test_hold_released_before_anyone_ticked_still_counts(mpy, human):
    # Feed edges only, no ticks in between: the release alone must reveal the 3.2 s hold.
    edges = human.press_edges(2000, 3200)
    out = recognise(mpy, edges, cfg=HOLD3, mode="lazy")
    assert out["kinds"] == [("hold", 1)]


def test_hold_just_short_is_nothing(mpy, human):
    out = recognise(mpy, human.press_edges(2000, 2900), cfg=HOLD3)
    assert out["kinds"] == []


@pytest.mark.parametrize("mode", ["edges", "poll"])
def test_triple_press_fires_presses_once(mpy, human, mode):
    edges = human.multi_press_edges(2000, 3, press_ms=150, gap_ms=250)
    out = recognise(mpy, edges, mode=mode)
    assert out["kinds"] == [("presses", 3)]  # consumed: no trailing COUNT


def test_triple_press_with_bumps_between(mpy, human):
    edges = human.press_edges(2000, 150) + human.bump_edges(2300, 40) \
        + human.press_edges(2500, 150) + human.bump_edges(2750, 30) + human.press_edges(3000, 150)
    out = recognise(mpy, edges)
    assert out["kinds"] == [("presses", 3)]
    assert out["bumps"] == 2


def test_slow_presses_outside_window_only_count(mpy, human):
    edges = human.multi_press_edges(2000, 3, press_ms=150, gap_ms=1200)  # 2.7 s for three
    out = recognise(mpy, edges)
    assert out["kinds"] == [("count", 3)]


def test_sliding_window_forgives_a_slow_first_press(mpy, human):
    # Presses at 2.0, 3.6, 4.1, 4.6 s: the first three span 2.1 s (> window), the last three 1 s.
    edges = human.press_edges(2000, 150) + human.multi_press_edges(3600, 3, 150, 350)
    out = recognise(mpy, edges)
    assert out["kinds"] == [("presses", 3)]


def test_two_presses_answer_a_question_as_count_2(mpy, human):
    edges = human.multi_press_edges(2000, 2)
    out = recognise(mpy, edges)
    assert out["kinds"] == [("count", 2)]
    assert out["gestures"][0][2] >= edges[-1][0] + 1500 - 0.01  # after the quiet gap


def test_no_count_unless_asked_for(mpy, human):
    edges = human.multi_press_edges(2000, 2)
    out = recognise(mpy, edges, cfg={"hold_ms": 3000, "presses": 3})
    assert out["kinds"] == []  # two stray taps reach no one


def test_hold_and_presses_configured_together(mpy, human):
    edges = human.multi_press_edges(2000, 3) + human.press_edges(9000, 3500)
    out = recognise(mpy, edges)
    assert out["kinds"] == [("presses", 3), ("hold", 1)]


def test_long_press_breaks_a_run(mpy, human):
    edges = human.multi_press_edges(2000, 2) + human.press_edges(2900, 1500) \
        + human.press_edges(4600, 150)
    out = recognise(mpy, edges)
    assert ("presses", 3) not in out["kinds"]


def test_held_at_power_on_is_a_hold_from_power_on(mpy, human):
    # Still pressed when power returns (cut mid-hold, or a reset): the hold began at power-on.
    out = recognise(mpy, [(3100.0, 1)], cfg=HOLD3, begin=(0, 0, False), end=9000)
    assert out["kinds"] == [("hold", 1)] and out["gestures"][0][2] == 3000
    short = recognise(mpy, [(2900.0, 1)], cfg=HOLD3, begin=(0, 0, False), end=9000)
    assert short["kinds"] == []  # released before 3 s: no hold
    stuck = recognise(mpy, [(60000.0, 1)], cfg=HOLD3, begin=(0, 0, False), end=90000)
    assert stuck["kinds"] == [("hold", 1)]  # a stuck button: one SOS per boot, not more


def test_press_during_boot_holdoff_counts_from_its_end(mpy, human):
    # Pins settle during the first second after power-on: a glitch there is nothing, and a
    # real press that began then is timed from the end of the hold-off.
    glitch = recognise(mpy, human.bump_edges(100, 300), cfg=HOLD3)
    assert glitch["kinds"] == []
    short = recognise(mpy, human.press_edges(300, 3500), cfg=HOLD3)  # 2.8 s after hold-off
    assert short["kinds"] == []
    long = recognise(mpy, human.press_edges(300, 4200), cfg=HOLD3)
    assert long["kinds"] == [("hold", 1)] and long["gestures"][0][2] == 4000


def test_wake_press_still_held_counts_with_credit(mpy):
    # The press woke the chip; at boot (t=0) it is still down; released at 2.9 s after boot.
    out = recognise(mpy, [(2900.0, 1)], cfg=HOLD3, begin=(0, 0, True))
    assert out["kinds"] == [("hold", 1)]
    assert out["gestures"][0][2] == 2750  # 3000 ms from the estimated press, 250 ms before boot


def test_held_at_a_timer_wake_counts_from_boot(mpy):
    # Out of deep sleep for the daily check-in while the child is already pressing: no
    # hold-off; the hold counts from boot (no credit).
    out = recognise(mpy, [(3100.0, 1)], cfg=HOLD3, begin=(0, 0, False, True))
    assert out["kinds"] == [("hold", 1)]
    assert out["gestures"][0][2] == 3000


def test_wake_tap_is_the_first_of_three(mpy, human):
    # A tap woke the chip and was over before boot: two more presses complete the triple.
    edges = human.multi_press_edges(300, 2)
    out = recognise(mpy, edges, begin=(1, 0, True))
    assert out["kinds"] == [("presses", 3)]


def test_active_high_wiring(mpy):
    h = Human(active=1, seed=3)
    out = recognise(mpy, h.press_edges(2000, 3500), cfg=HOLD3, begin=(0, 0, False), active=1)
    assert out["kinds"] == [("hold", 1)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_poll_and_edges_agree_on_a_random_day(mpy, seed):
    h = Human(seed=seed)
    rng = h.rng
    edges, t = [], 2000.0
    for _ in range(25):
        kind = rng.choice(["bump", "chatter", "press", "triple", "hold"])
        if kind == "bump":
            edges += h.bump_edges(t, rng.uniform(20, 60))
        elif kind == "chatter":
            edges += h.chatter_edges(t, 5)
        elif kind == "press":
            edges += h.press_edges(t, rng.uniform(120, 400))
        elif kind == "triple":
            edges += h.multi_press_edges(t, 3, rng.uniform(120, 200), rng.uniform(150, 350))
        else:
            edges += h.press_edges(t, rng.uniform(3100, 4000))
        t = edges[-1][0] + rng.uniform(1700, 3000)
    a = recognise(mpy, edges, mode="edges")
    b = recognise(mpy, edges, mode="poll")
    assert a["kinds"] == b["kinds"]
    assert all(abs(x[2] - y[2]) <= 20 for x, y in zip(a["gestures"], b["gestures"], strict=True))


@pytest.mark.parametrize("args", ["hold_ms=0, presses=0", "hold_ms=0, presses=1",
                                  "hold_ms=200, presses=0"])
def test_gestures_that_are_not_deliberate_are_refused(mpy, args):
    out = mpy.run(
        "from periph.button import Recogniser\n"
        f"try:\n Recogniser({args})\nexcept ValueError as e:\n print('refused', e)\n"
    )
    assert "refused" in out


def test_recogniser_does_not_allocate_per_edge(mpy):
    out = mpy.json("""
import gc, json
from periph.button import Recogniser
r = Recogniser(hold_ms=3000, presses=3)
r.begin(1, 0)
gc.collect(); gc.disable()
before = gc.mem_alloc()
t = 2000
for i in range(1000):
    r.update(0, t); r.update(1, t + 2); r.update(0, t + 3); r.update(1, t + 60)
    r.tick(t + 100)
    t += 300
grown = gc.mem_alloc() - before
gc.enable()
print(json.dumps([grown, r.bumps]))
""")
    grown, bumps = out
    assert bumps == 1000
    assert grown < 512  # 4000 edges: nothing per edge (only the loop's own objects)
