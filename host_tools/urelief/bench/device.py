"""The virtual board: boot time, virtual-clock speed, heap of the real firmware."""

import tempfile
import textwrap
import time
from pathlib import Path

from urelief.bench import publish
from urelief.sim import events
from urelief.sim.device import VirtualDevice

HOUR_MAIN = """
import asyncio
async def ticker(period_ms, counts, i):
    while True:
        await asyncio.sleep_ms(period_ms)
        counts[i] += 1
async def main():
    counts = [0, 0]
    asyncio.create_task(ticker(1000, counts, 0))
    asyncio.create_task(ticker(100, counts, 1))
    await asyncio.sleep_ms(3600_000)
    print('hour', counts)
asyncio.run(main())
"""


def main() -> None:
    t = time.perf_counter()
    with VirtualDevice() as dev:
        dev.wait_line(events.line("boot"), timeout_ms=10_000)
        boot_wall = time.perf_counter() - t
        dev.run_for(5000)
        publish.figure("real firmware: power-on to app running (wall, incl. flash install)",
                       f"{boot_wall * 1000:.0f} ms")
        print(f"real firmware: power-on to app running {boot_wall * 1000:.0f} ms wall "
              f"(incl. flash image install); peak heap {dev.heap_peak['live']} B live, "
              f"{dev.heap_peak['alloc']} B allocated incl. garbage (budget {dev.heap_kb} KB)")
    with tempfile.TemporaryDirectory() as tmp:
        fw = Path(tmp) / "fw"
        fw.mkdir()
        (fw / "main.py").write_text(textwrap.dedent(HOUR_MAIN))
        with VirtualDevice(firmware=fw) as dev:
            dev.run_for(100)
            t = time.perf_counter()
            dev.run_for(3_600_100)
            wall = time.perf_counter() - t
            line = dev.wait_line("hour", timeout_ms=1000)
            print(f"virtual clock: 1 device hour with 39,600 asyncio wake-ups in {wall:.2f} s wall "
                  f"({3600 / wall:.0f}x real time); {line}")
            publish.figure("virtual clock: 1 device hour, 39,600 asyncio wake-ups",
                           f"{wall:.2f} s wall ({3600 / wall:.0f}x real time)")
