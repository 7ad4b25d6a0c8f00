"""Shared fixtures. `mpy` runs code on the real MicroPython VM with the firmware importable."""

import pytest
from urelief.sim import vm


class Mpy:
    """Run firmware code on MicroPython: `mpy.run(code)` -> stdout, `mpy.json(code)` -> value."""

    def __init__(self, heap_kb: int = vm.DEFAULT_HEAP_KB):
        self.heap_kb = heap_kb

    def run(self, code: str, **kw) -> str:
        kw.setdefault("heap_kb", self.heap_kb)
        return vm.run(code, **kw).stdout

    def json(self, code: str, **kw):
        kw.setdefault("heap_kb", self.heap_kb)
        return vm.run_json(code, **kw)


@pytest.fixture(scope="session")
def mpy() -> Mpy:
    return Mpy()
