"""`mpy_modem`: the MicroPython VM with the firmware as bytecode, as on the board (compiling
modem/core.py from source at import would not fit the 96 KB heap; bytecode does), and this
folder's MicroPython helpers (`mpy_*.py`) importable."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mpy_modem(mpy_bytecode):
    return mpy_bytecode.using(Path(__file__).parent)
