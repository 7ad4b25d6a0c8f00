"""The asyncio button driver on the MicroPython VM with a stand-in `machine`: IRQ edges (with
chatter) reach the recogniser; gestures come out as Events and through the async iterator.
Runs in real time with short gesture settings (about 3 s)."""

from pathlib import Path

from urelief.paths import FIRMWARE

FAKE = Path(__file__).with_name("fake_machine")

# Shared by the scenarios: the button on GPIO1, chatter(to, n) (n edges ending at `to`, all
# within one task step, as an IRQ burst), and a task collecting gestures from the iterator.
SETUP = """
import asyncio, json, machine
from periph.button import Button, Recogniser
Recogniser.holdoff_ms = 100

def make_button():
    return Button({'gpio': 1, 'active': 'low', 'pull': 'up', 'wake': True},
                  {'hold_ms': 600, 'presses': 3, 'window_ms': 1500})

def chatter(to, n=5):
    for i in range(n):
        machine.drive(1, (to + i + 1) % 2)
    machine.drive(1, to)

got = []

async def collect(b):
    async for g in b:
        got.append([g[0], g[1]])
"""

SCENARIO = SETUP + """
WAKE = @WAKE@
if WAKE:
    machine._reset[0], machine._reset[1] = machine.DEEPSLEEP_RESET, machine.EXT0_WAKE
    machine._levels[1] = 0  # still pressed at boot
b = make_button()

async def human():
    if WAKE:
        await asyncio.sleep_ms(500)
        chatter(1)
        await asyncio.sleep_ms(200)
        return
    await asyncio.sleep_ms(200)
    chatter(0); await asyncio.sleep_ms(40); chatter(1)  # a bump
    await asyncio.sleep_ms(300)
    for _ in range(3):
        chatter(0); await asyncio.sleep_ms(120); chatter(1); await asyncio.sleep_ms(200)
    await asyncio.sleep_ms(300)
    chatter(0); await asyncio.sleep_ms(800); chatter(1)  # a hold
    await asyncio.sleep_ms(200)

async def main():
    asyncio.create_task(b.run())
    asyncio.create_task(collect(b))
    await human()
    await asyncio.sleep_ms(50)
    print(json.dumps({'got': got, 'hold': b.hold.is_set(), 'presses': b.presses.is_set(),
                      'bumps': b.rec.bumps, 'dropped': b.dropped}))

asyncio.run(main())
"""


def test_driver_irq_edges_to_gestures(mpy):
    out = mpy.json(SCENARIO.replace("@WAKE@", "False"), path=(FAKE, FIRMWARE))
    assert out["got"] == [["presses", 3], ["hold", 1]]
    assert out["hold"] and out["presses"]
    assert out["bumps"] == 1
    assert out["dropped"] == 0


def test_driver_counts_the_press_that_woke_the_chip(mpy):
    # Woken by the button, still held at boot, released 500 ms later: with the 250 ms wake
    # credit that is 750 ms >= hold_ms 600.
    out = mpy.json(SCENARIO.replace("@WAKE@", "True"), path=(FAKE, FIRMWARE))
    assert out["got"] == [["hold", 1]]


OVERFLOW = SETUP + """
b = make_button()

async def main():
    asyncio.create_task(b.run())
    asyncio.create_task(collect(b))
    await asyncio.sleep_ms(200)
    chatter(0, 41); await asyncio.sleep_ms(800); chatter(1, 40)   # a hold
    await asyncio.sleep_ms(300)
    for _ in range(3):
        chatter(0, 41); await asyncio.sleep_ms(120); chatter(1, 40); await asyncio.sleep_ms(200)
    await asyncio.sleep_ms(300)
    machine.drive(1, 0); chatter(1, 40)  # one edge queued, then chatter opens the contact:
    await asyncio.sleep_ms(1000)         # the ring keeps an even count, its last edge "pressed"
    print(json.dumps({'got': got, 'dropped': b.dropped, 'pressed': b.rec.pressed}))

asyncio.run(main())
"""


def test_driver_survives_chatter_that_overflows_its_edge_ring(mpy):
    out = mpy.json(OVERFLOW, path=(FAKE, FIRMWARE))
    assert out["dropped"] > 0  # the ring did overflow
    assert out["got"] == [["hold", 1], ["presses", 3]]
    assert out["pressed"] is False


def test_arm_wake_is_refused_while_the_button_is_down(mpy):
    out = mpy.json("""
import json, machine, esp32
from periph.button import Button
b = Button({'gpio': 1, 'active': 'low', 'pull': 'up', 'wake': True}, {'hold_ms': 3000})
up = b.arm_wake()
machine.drive(1, 0)                       # held (or stuck) when the app wants to sleep
down = b.arm_wake()
print(json.dumps([up, down, esp32.ext0]))
""", path=(FAKE, FIRMWARE))
    assert out == [True, False, [[1, False]]]  # armed once, wake on low
