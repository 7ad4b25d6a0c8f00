"""`urelief sim …` commands."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from urelief.sim import vm
from urelief.sim.fleet import fleet_cmd
from urelief.sim.replay_nmea import replay_nmea
from urelief.sim.soak import soak_cmd


@click.group()
def sim() -> None:
    """Run the real firmware on a real MicroPython VM against emulated hardware."""


sim.add_command(fleet_cmd)
sim.add_command(replay_nmea)
sim.add_command(soak_cmd)


@sim.command("device")
@click.option("--board", default="sim", show_default=True, help="board name in boards/ or a .json path")
@click.option("--flash", type=click.Path(dir_okay=False, path_type=Path),
              help="flash image file (kept across runs; made from the firmware tree if missing)")
@click.option("--clock", type=click.Choice(["real", "virtual"]), default="real", show_default=True)
@click.option("--heap-kb", type=int, default=None,
              help=f"firmware heap budget [default: {vm.DEFAULT_HEAP_KB} KB, 512 KB with PSRAM]")
@click.option("--firmware", type=click.Path(file_okay=False, path_type=Path),
              help="deployed tree for a new flash image [default: build/firmware]")
@click.option("--battery-mv", default=3900.0, show_default=True, help="Li-ion cell voltage")
@click.option("--download", is_flag=True,
              help="hold BOOT (GPIO0) low at power-on: ROM download mode, for esptool "
                   "(--before no-reset --after no-reset)")
def device_cmd(board: str, flash: Path | None, clock: str, heap_kb: int | None, firmware: Path | None,
               battery_mv: float, download: bool) -> None:
    """Power on one virtual board and print its USB serial port (for mpremote or esptool)."""
    from urelief.sim.device import BOOT_STRAP_GPIO, VirtualDevice

    dev = VirtualDevice(board=board, flash=flash, clock=clock, heap_kb=heap_kb, firmware=firmware,
                        run_ahead=True)
    adc = dev.board["pins"].get("battery_adc")
    if adc:
        dev.adc(adc["gpio"]).set_mv(battery_mv / adc.get("divider", 1.0))
    port = dev.console.open_usb()
    if download:
        dev.pin(BOOT_STRAP_GPIO).drive(0)
    dev.start()
    click.echo(port, nl=True)
    click.echo(f"virtual board '{dev.board['name']}' on {port} (flash {dev.flash}, {clock} clock"
               f"{'; ROM download mode' if download else ''}); Ctrl-C here powers it off", err=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        dev.stop()
        click.echo(f"powered off; peak heap: {dev.heap_peak['live']} B live, "
                   f"{dev.heap_peak['alloc']} B allocated", err=True)
