"""The board process's clock (`cpuclock.c`): built with the system C compiler on first use into
build/sim/, preloaded into every virtual-clock VM. The host reads the same CPU clock of the
board process, so both ends agree on how much device time a running board has used."""

from __future__ import annotations

import time

from urelief.sim import preload


def library():
    """The preload library (build/sim/liburelief_cpuclock.so)."""
    return preload.library("cpuclock")


def process_cpu_s(pid: int) -> float:
    """CPU seconds process pid has had (Linux: its CPU-time clock, readable by its owner)."""
    return time.clock_gettime(((~pid) << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
