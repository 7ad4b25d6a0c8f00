"""`urelief`: the host command line. Each area exposes its own click group or command; this
root only adds them (no area imports this module back)."""

import click

from urelief.boards import boards
from urelief.demo import demo_cmd
from urelief.protocol.cli import protocol_group
from urelief.provisioning.cli import provision_group
from urelief.registry.cli import registry
from urelief.server.cli import server_cmd
from urelief.sim.cli import sim
from urelief.sms.cli import sms_group


@click.group()
@click.version_option(package_name="urelief")
def main() -> None:
    """U-Relief host tools: simulator, provisioning, registry, police server."""


for _cmd in (sim, provision_group, registry, server_cmd, protocol_group, sms_group, boards,
             demo_cmd):
    main.add_command(_cmd)
