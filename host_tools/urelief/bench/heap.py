"""Peak live heap of the real firmware through an SOS (boot, link up, hold, ack), deployed as
.mpy files on littlefs (a stock image) and as a ROMFS image (an image built with ROMFS), and
whether a plain ESP32 without PSRAM (96 KB for the firmware) boots and sends from each.
Heap is the 64-bit unix VM's: pointers and object headers are twice an ESP32's 32-bit ones,
so the chip needs roughly 0.5-0.6 of these figures (the goal is 64 KB on the chip's terms)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from urelief.sim import events
from urelief.sim.device import board_heap_kb
from urelief.sim.rig import PoliceServer, Rig

PLAIN_ESP32 = "devkitc-sim7080g-ublox"  # ESP32-WROOM-32E, no PSRAM


def sos_heap(work: Path, police: PoliceServer, deploy: str, board: str = "sim",
             heap_kb: int = 256) -> tuple[bool, int, str]:
    """-> (SOS acked, peak live heap B, what went wrong)."""
    r = Rig(work / f"{board}-{deploy}-{heap_kb}", police, board=board, deploy=deploy,
            heap_kb=heap_kb).start()
    try:
        r.wait_ready(timeout_ms=90_000)
        r.hold(3500)
        ok = r.until(lambda: events.count(r.dev.output, "ack") > 0, timeout_ms=20_000)
        r.dev.run_for(3000)
        return ok, r.dev.heap_peak["live"], ""
    except Exception as e:  # a board that runs out of heap never brings its link up
        tail = [ln for ln in r.dev.output.splitlines() if "Error" in ln][-1:]
        return False, r.dev.heap_peak["live"], (tail[0] if tail else str(e)[:120])
    finally:
        r.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        police = PoliceServer(work / "police").seed().start()
        try:
            peak = {}
            for deploy in ("files", "romfs"):
                ok, peak[deploy], why = sos_heap(work, police, deploy)
                print(f"heap, SOS scenario, firmware as {deploy}: peak live {peak[deploy] / 1024:.0f} KB "
                      f"(64-bit VM; SOS acked: {ok}{'; ' + why if why else ''})")
            print(f"heap: ROMFS saves {(1 - peak['romfs'] / peak['files']) * 100:.0f} % "
                  f"of the peak live heap")
            plain_kb = board_heap_kb({"psram": "none"})
            for deploy in ("files", "romfs"):
                ok, live, why = sos_heap(work, police, deploy, PLAIN_ESP32, plain_kb)
                print(f"plain ESP32 without PSRAM ({plain_kb} KB heap), firmware as {deploy}: "
                      f"{'boots and sends an SOS' if ok else 'does not run: ' + why}")
        finally:
            police.stop()


if __name__ == "__main__":
    main()
