"""The board process's clock (`cpuclock.c`): built with the system C compiler on first use into
build/sim/, preloaded into every virtual-clock VM. The host reads the same CPU clock of the
board process, so both ends agree on how much device time a running board has used."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from urelief.paths import ROOT

SOURCE = Path(__file__).with_name("cpuclock.c")
LIBRARY = ROOT / "build" / "sim" / "liburelief_cpuclock.so"


class ClockBuildError(RuntimeError):
    pass


_building = threading.Lock()  # a fleet boots its boards from threads: one build, not N racing


def library() -> Path:
    """The preload library, (re)built when the source is newer."""
    with _building:
        return _library()


def _library() -> Path:
    if LIBRARY.exists() and LIBRARY.stat().st_mtime >= SOURCE.stat().st_mtime:
        return LIBRARY
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise ClockBuildError("no C compiler (cc) for the virtual board's clock: "
                              "apt-get install gcc")
    LIBRARY.parent.mkdir(parents=True, exist_ok=True)
    tmp = LIBRARY.with_name(f"{LIBRARY.name}.{os.getpid()}.tmp")
    proc = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-Wall", "-o", str(tmp), str(SOURCE),
                           "-ldl"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ClockBuildError(f"building {SOURCE.name} failed:\n{proc.stderr}")
    os.replace(tmp, LIBRARY)  # atomic: boards starting meanwhile see the old or the new one
    return LIBRARY


def process_cpu_s(pid: int) -> float:
    """CPU seconds process pid has had (Linux: its CPU-time clock, readable by its owner)."""
    return time.clock_gettime(((~pid) << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
