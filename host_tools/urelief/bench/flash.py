"""The unprotected window: from the hold gesture to its SOS whole on flash, at the flash chip's
typical and maximum program/erase times (Winbond W25Q32JV datasheet: page program tPP 0.4 /
3 ms, 4 KiB sector erase tSE 45 / 400 ms; the virtual flash in sim/shims/_vboot.py), with the
firmware's CPU time at the ESP32-S3's speed (sim/chipspeed.py). A power cut inside the window
loses the press; after it, the SOS is sent whatever happens to the power."""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

from urelief.bench import publish
from urelief.sim import chipspeed, events
from urelief.sim.rig import PoliceServer, Rig

PRESSES = 8  # per timing: the first SOS (a new alert) and repeats within it


def window_ms(timing: str, work: Path, police: PoliceServer) -> list[int]:
    os.environ["URELIEF_FLASH_TIMING"] = timing
    try:
        r = Rig(work / timing, police, cpu_scale=chipspeed.factor("esp32s3")).start()
        r.wait_ready()
        for _ in range(PRESSES):
            r.hold(3500)
            n = events.count(r.dev.output, "stored", kind="sos")
            r.until(lambda n=n: events.count(r.dev.output, "stored", kind="sos") > n,
                    timeout_ms=10_000)
            r.dev.run_for(4000)
        got = [e.int("after_ms") for e in r.console("stored", kind="sos")]
        r.stop()
        return [g for g in got if g is not None]
    finally:
        os.environ.pop("URELIEF_FLASH_TIMING", None)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        police = PoliceServer(work / "police").seed().start()
        try:
            for timing in ("typ", "max"):
                ms = window_ms(timing, work, police)
                if not ms:
                    print(f"flash {timing}: no SOS stored")
                    continue
                print(f"unprotected window, flash {timing}: gesture -> SOS on flash "
                      f"median {statistics.median(ms):.0f} ms, max {max(ms)} ms "
                      f"over {len(ms)} SOS ({ms})")
                publish.figure(f"unprotected window, gesture -> SOS on flash, W25Q32JV {timing} timings",
                               f"median {statistics.median(ms):.0f} ms, max {max(ms)} ms ({len(ms)} SOS)",
                               versus="W25Q32JV datasheet tPP/tSE " + ("typical" if timing == "typ" else "maximum"),
                               doc=publish.RELIABILITY)
        finally:
            police.stop()


if __name__ == "__main__":
    main()
