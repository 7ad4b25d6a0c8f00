"""End to end: the real firmware on a virtual board (SIM7080 emulator on its modem UART, a GNSS
receiver on its GNSS UART, a Li-ion cell on its battery ADC) against the real police server
(`urelief server` on loopback, SQLite), through urelief.sim.rig's PoliceServer / SmsGateway / Rig."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from urelief.sim.rig import PoliceServer, Rig


@pytest.fixture(scope="module")
def police(tmp_path_factory, built_firmware) -> Iterator[PoliceServer]:
    """One police server per module; every test provisions its own device on it."""
    server = PoliceServer(tmp_path_factory.mktemp("police")).seed().start()
    yield server
    server.stop()


@pytest.fixture
def rig(police, tmp_path) -> Iterator[Callable[..., Rig]]:
    """rig(**kw) -> a provisioned virtual terminal (not started), stopped after the test."""
    made: list[Rig] = []

    def make(**kw) -> Rig:
        r = Rig(tmp_path / f"dev{len(made)}", police, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()

