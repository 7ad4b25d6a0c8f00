"""Fixtures for the virtual board: small firmware trees written by a test, and real devices."""

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from urelief.sim.device import VirtualDevice


@pytest.fixture
def tree(tmp_path: Path) -> Callable[..., Path]:
    """tree(main='...', **files) -> a deployed firmware dir holding those files."""

    def make(**files: str) -> Path:
        root = tmp_path / "fw"
        root.mkdir(exist_ok=True)
        for name, src in files.items():
            p = root / name.replace("__", "/").replace("_py", ".py")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(textwrap.dedent(src))
        return root

    return make


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Callable[..., VirtualDevice]]:
    """device(firmware=..., **kw) -> a started VirtualDevice, stopped after the test."""
    made: list[VirtualDevice] = []

    def make(**kw) -> VirtualDevice:
        kw.setdefault("flash", tmp_path / "flash.img")
        dev = VirtualDevice(**kw)
        made.append(dev)
        return dev.start()

    yield make
    for dev in made:
        dev.stop()
