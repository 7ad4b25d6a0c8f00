"""How much slower the chip runs the firmware than this host's MicroPython VM, so awake time
can be charged at the chip's speed, not the host's.

The virtual board's device time follows its VM's CPU time (sim/cpuclock.py: not wall time, so
host load does not change it), scaled by `VirtualDevice(cpu_scale=...)`: 1 runs the firmware
at host speed (the tests), `factor(soc)` at the chip's (`urelief sim soak`, the latency bench),
and the energy meter charges a host-speed run the difference (sim/energy.py). Calibration:
- between SoCs, from one published MicroPython benchmark run on both chips with the same
  code (S. Russell, scruss.com, "Parallel MicroPython Benchmarking" results, 2025): ESP32-S3
  at 240 MHz 8.9 s, ESP32 at 160 MHz 15.4 s (MicroPython 1.24-1.25, the clocks the stock images
  run at);
- the host against the ESP32-S3: HOST_OVER_S3, assumed from the clock and issue-width ratio of
  a current x86 core (~4 GHz, ~4 instructions a cycle) to the S3's LX7 (240 MHz, ~1): ~60x raw,
  halved for the VM's memory-bound dispatch. Measure it on a board (`make bench` prints the
  host figure) and replace.
"""

from __future__ import annotations

import os

PUBLISHED_S = {"esp32s3": 8.9, "esp32": 15.4}  # the same benchmark, seconds (scruss.com)
HOST_OVER_S3 = 30.0  # assumed: this host's VM runs MicroPython ~30x an ESP32-S3 at 240 MHz
ENV = "URELIEF_CHIP_FACTOR"  # override (a measured host/chip ratio for the board's SoC)


def factor(soc: str) -> float:
    """Chip CPU seconds per host CPU second for the firmware, on `soc`."""
    if os.environ.get(ENV):
        return float(os.environ[ENV])
    return HOST_OVER_S3 * PUBLISHED_S.get(soc, PUBLISHED_S["esp32"]) / PUBLISHED_S["esp32s3"]
