"""`urelief`: the host command line. Each area registers its own sub-commands."""

import click


@click.group()
@click.version_option(package_name="urelief")
def main() -> None:
    """U-Relief host tools: simulator, provisioning, registry, police server."""


@main.group()
def sim() -> None:
    """Run the real firmware on a real MicroPython VM against emulated hardware."""


def _register() -> None:
    # Each area's commands live beside its code; importing the module attaches them.
    from urelief import boards as _boards  # noqa: F401
    from urelief import demo as _demo  # noqa: F401
    from urelief.protocol import cli as _protocol_cli  # noqa: F401
    from urelief.provisioning import cli as _provisioning_cli  # noqa: F401
    from urelief.registry import cli as _registry_cli  # noqa: F401
    from urelief.server import cli as _server_cli  # noqa: F401
    from urelief.sim import cli as _sim_cli  # noqa: F401
    from urelief.sim import fleet as _fleet  # noqa: F401
    from urelief.sim import replay_nmea as _replay_nmea  # noqa: F401


_register()
