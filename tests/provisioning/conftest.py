"""Provisioning fixtures: a migrated registry with a school (`police`), virtual boards plugged into
USB port paths (`bench`, see urelief.provisioning.virtual), the CLI against them, and checks
made independently of the tool (files read back with mpremote, packets verified by the server's
own key store)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from urelief.provisioning.virtual import Bench, Police


@pytest.fixture
def police(tmp_path) -> Iterator[Police]:
    p = Police(tmp_path)
    yield p
    p.registry.db.dispose()


@pytest.fixture
def bench(tmp_path, built_firmware) -> Iterator[Bench]:
    b = Bench(tmp_path)
    yield b
    b.close()


SERVER = "sos.urelief.test:7420"
GATEWAY = "+82112"


@pytest.fixture
def provision_cli(police, tmp_path, built_firmware):
    """provision_cli("device", "--port", …) -> click Result of `urelief provision …` run against
    the police registry, with this test's labels directory and provisioning log."""
    from click.testing import CliRunner
    from urelief.cli import main

    def run(*args: str):
        common = ["--board", "sim", "--db", police.url, "--server", SERVER, "--sms", GATEWAY,
                  "--labels", str(tmp_path / "labels"), "--log", str(tmp_path / "provisioning.db"),
                  "--firmware", str(built_firmware), "--selftest-timeout", "20"]
        cmd = ["provision", *args] + (common if args[0] != "status" else
                                      ["--log", str(tmp_path / "provisioning.db")])
        return CliRunner().invoke(main, cmd, env={"URELIEF_SERVER_KEY": police.key_hex},
                                  catch_exceptions=False)

    return run
