"""Haptic patterns on the MicroPython VM: distinct by touch, non-blocking, covert by default,
motor never left running."""


import pytest

NAMES = ["sent", "seen", "dispatched", "question", "low_battery", "cancel_ack", "cannot_send",
         "self_check_ok", "self_check_not_ok"]

# A fake pin factory and a virtual sleep: the player runs instantly, every pin write is logged
# with the virtual time it happened at.
HARNESS = """
import asyncio, json
from periph import haptics
log = []
clock = [0]
class P:
    def __init__(self, gpio): self.gpio = gpio
    def value(self, v=None):
        if v is not None: log.append((self.gpio, v, clock[0]))
async def vsleep(ms):
    clock[0] += ms
    await asyncio.sleep_ms(0)
def make(light=False, led=True):
    return haptics.Haptics({'gpio': 10, 'active': 'high'},
                           {'gpio': 2, 'active': 'low'} if led else None,
                           light=light, sleep_ms=vsleep, pin=lambda g, a: P(g))
async def drain(h):
    while h.busy:
        await asyncio.sleep_ms(0)
"""


def timeline(pattern, t0=0, active=1):
    """[(t_ms, level)] edges one pattern should give at the pin (active: the motor-on level)."""
    out, t = [], t0
    for i, d in enumerate(pattern):
        out.append((t, active if i % 2 == 0 else 1 - active))
        t += d
    return [*out, (t, 1 - active)]


def run(mpy, body):
    return mpy.json(HARNESS + body)


def signature(pattern):
    """What a hand feels: pulse lengths as short (S) / long (L)."""
    pulses = pattern[0::2]
    assert all(p >= 100 for p in pulses), "pulse too short to feel through cloth"
    assert all(p <= 250 or p >= 500 for p in pulses), "pulse neither clearly short nor long"
    return "".join("S" if p <= 250 else "L" for p in pulses)


def test_all_patterns_present_and_distinct_by_touch(mpy):
    pats = mpy.json("from periph import haptics\nimport json\nprint(json.dumps(haptics.PATTERNS))")
    assert set(NAMES) <= set(pats)
    sigs = {name: signature(pats[name]) for name in NAMES}
    assert len(set(sigs.values())) == len(NAMES), sigs
    for name in NAMES:
        p = pats[name]
        assert len(p) % 2 == 1  # starts and ends with the motor on
        assert all(gap >= 100 for gap in p[1::2])  # gaps long enough to feel the break


def test_play_is_non_blocking_and_plays_the_exact_timeline(mpy):
    out = run(mpy, """
async def main():
    h = make()
    h.play('seen')
    started = len([e for e in log if e[0] == 10])  # nothing played before we yield
    await drain(h)
    print(json.dumps({'started': started, 'log': [e for e in log if e[0] == 10],
                      'pattern': haptics.PATTERNS['seen']}))
asyncio.run(main())
""")
    assert out["started"] == 1  # only the constructor's "motor off"
    motor = [[lv, t] for _, lv, t in out["log"][1:]]
    expect = [[lv, t] for t, lv in timeline(out["pattern"])]
    assert motor[: len(expect)] == expect
    assert motor[-1][0] == 0


def test_covert_by_default_led_stays_dark(mpy):
    out = run(mpy, """
async def main():
    h = make(light=False)
    for n in ('sent', 'dispatched', 'question'):
        h.play(n)
    await drain(h)
    print(json.dumps([e for e in log if e[0] == 2]))
asyncio.run(main())
""")
    assert out == [[2, 1, 0]]  # active-low LED: driven off once at start, never lit


def test_light_when_configured_mirrors_the_motor(mpy):
    out = run(mpy, """
async def main():
    h = make(light=True)
    h.play('sent')
    await drain(h)
    print(json.dumps([e for e in log if e[0] == 2]))
asyncio.run(main())
""")
    levels = [lv for _, lv, _ in out]
    assert 0 in levels  # lit (active-low) at some point
    assert levels[-1] == 1  # and dark at the end


def test_stop_mid_pattern_turns_the_motor_off(mpy):
    out = run(mpy, """
async def main():
    h = make()
    h.play('dispatched')
    await asyncio.sleep_ms(0); await asyncio.sleep_ms(0)
    h.stop()
    await asyncio.sleep_ms(0)
    print(json.dumps({'busy': h.busy, 'last': [e for e in log if e[0] == 10][-1][1]}))
asyncio.run(main())
""")
    assert out == {"busy": False, "last": 0}


def test_queue_is_bounded_and_keeps_the_newest(mpy):
    out = run(mpy, """
async def main():
    h = make()
    for i in range(7):
        h.play('sent')
    h.play('dispatched')
    await drain(h)
    print(json.dumps({'played': h.played, 'dropped': h.dropped}))
asyncio.run(main())
""")
    assert out == {"played": 4, "dropped": 4}


@pytest.mark.parametrize("name", NAMES)
def test_pattern_starts_on_and_ends_off_on_an_active_low_motor(mpy, name):
    log = run(mpy, f"""
async def main():
    h = haptics.Haptics({{'gpio': 10, 'active': 'low'}}, None, sleep_ms=vsleep,
                        pin=lambda g, a: P(g))
    h.play({name!r})
    await drain(h)
    print(json.dumps([[v, t] for _, v, t in log[1:]]))  # after the constructor's "off"
asyncio.run(main())
""")
    out = [[t, v] for v, t in log]
    assert out[0] == [0, 0]  # active-low motor driver: on = 0
    assert out[-1][1] == 1
