"""Shared fixtures: `built_firmware`, the firmware tree as `make build` makes it (built once per
session), and `mpy`, the one runner for firmware code on the real MicroPython VM."""

from __future__ import annotations

from pathlib import Path

import pytest
from urelief.build import build
from urelief.paths import BUILD_FIRMWARE, FIRMWARE
from urelief.sim import vm


class Mpy:
    """Run code on MicroPython with firmware importable: `mpy.run(code)` -> stdout,
    `mpy.json(code)` -> its last line decoded. `mpy.using(folder, ...)` puts folders first on
    the VM's path: test helpers written as MicroPython modules (`mpy_*.py`), or the compiled
    firmware (`mpy_bytecode`)."""

    def __init__(self, path: tuple[Path, ...] = (FIRMWARE,), heap_kb: int = vm.DEFAULT_HEAP_KB):
        self.path, self.heap_kb = path, heap_kb

    def using(self, *folders: Path) -> Mpy:
        return Mpy((*folders, *self.path), self.heap_kb)

    def run(self, code: str, **kw) -> str:
        kw.setdefault("heap_kb", self.heap_kb)
        kw.setdefault("path", self.path)
        return vm.run(code, **kw).stdout

    def json(self, code: str, **kw):
        kw.setdefault("heap_kb", self.heap_kb)
        kw.setdefault("path", self.path)
        return vm.run_json(code, **kw)


@pytest.fixture(scope="session")
def built_firmware() -> Path:
    """The real firmware, compiled by mpy-cross exactly as `make build` does (build/firmware,
    which the rig and the fleet deploy from)."""
    build()
    return BUILD_FIRMWARE


@pytest.fixture(scope="session")
def mpy() -> Mpy:
    return Mpy()


@pytest.fixture(scope="session")
def mpy_bytecode(built_firmware) -> Mpy:
    """`mpy` on the firmware as the board runs it: bytecode, which fits the 96 KB heap where
    compiling the larger modules (modem/core.py) from source at import would not."""
    return Mpy((built_firmware,))
