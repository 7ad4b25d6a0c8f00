"""The virtual board's preload libraries (C, built with the system compiler on first use into
build/sim/): `cpuclock.c`, the chip's CPU-time clock, and `romflash.c`, its memory-mapped ROMFS
partition."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

from urelief.paths import ROOT

HERE = Path(__file__).parent
OUT = ROOT / "build" / "sim"


class PreloadBuildError(RuntimeError):
    pass


_building = threading.Lock()  # a fleet boots its boards from threads: one build, not N racing


def library(name: str) -> Path:
    """build/sim/liburelief_<name>.so from sim/<name>.c, (re)built when the source is newer."""
    with _building:
        return _build(name)


def _build(name: str) -> Path:
    source = HERE / f"{name}.c"
    lib = OUT / f"liburelief_{name}.so"
    if lib.exists() and lib.stat().st_mtime >= source.stat().st_mtime:
        return lib
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise PreloadBuildError(f"no C compiler (cc) for the virtual board's {source.name}: "
                                "apt-get install gcc")
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = lib.with_name(f"{lib.name}.{os.getpid()}.tmp")
    proc = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-Wall", "-o", str(tmp), str(source),
                           "-ldl"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise PreloadBuildError(f"building {source.name} failed:\n{proc.stderr}")
    os.replace(tmp, lib)  # atomic: boards starting meanwhile see the old or the new one
    return lib
