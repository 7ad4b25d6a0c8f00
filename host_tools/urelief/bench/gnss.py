"""GNSS parser figures on the MicroPython VM (96 KB heap): sentences per second and heap bytes
allocated per sentence, for the bare parser and for parser + epoch assembler, per log.

The unix VM on a PC runs roughly 20-50x faster than an ESP32 at 240 MHz. Allocation figures hold
on the ESP32 too (same bytecode and object model), except that its small ints are 31-bit: a
longitude beyond 107.4° in 1e-7° units is then a long int (one small allocation per sentence)."""

from __future__ import annotations

from pathlib import Path

from urelief.paths import TESTS
from urelief.sim import vm

LOGS = ("neo-m8n.log", "telit-pls83-w.log", "mt3339.log")

# gc is run before each batch and switched off during it, so mem_alloc's rise is what the batch
# allocated. Batches are small enough never to fill the heap.
_BENCH = """
import gc, json, time
from gnss.nmea import Nmea
from gnss.epoch import Epoch
lines = []
with open(%r, "rb") as fh:
    for raw in fh:
        if raw[:1] == b"$":
            lines.append(raw)
p = Nmea()
e = Epoch()
def batch(assemble):
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    t0 = time.ticks_us()
    for line in lines:
        if p.feed(line) and assemble:
            e.add(p)
    us = time.ticks_diff(time.ticks_us(), t0)
    a1 = gc.mem_alloc()
    gc.enable()
    return us, a1 - a0
out = {"sentences": len(lines)}
for name, assemble in (("parse", False), ("parse+epoch", True)):
    best = None
    alloc = 0
    for _ in range(5):
        us, b = batch(assemble)
        best = us if best is None else min(best, us)
        alloc = b
    out[name] = [len(lines) * 1000000 // best, alloc / len(lines)]
print(json.dumps(out))
"""


def measure(log: Path) -> dict:
    return vm.run_json(_BENCH % str(log))


def main() -> None:
    data = TESTS / "data" / "gpsd"
    print(f"MicroPython unix VM, heap {vm.DEFAULT_HEAP_KB} KB; best of 5 passes over each log")
    print(f"{'log':22} {'n':>4} {'parse/s':>9} {'B/sent':>7} {'+epoch/s':>9} {'B/sent':>7}")
    for name in LOGS:
        r = measure(data / name)
        (ps, pa), (es, ea) = r["parse"], r["parse+epoch"]
        print(f"{name:22} {r['sentences']:4d} {ps:9d} {pa:7.1f} {es:9d} {ea:7.1f}")
