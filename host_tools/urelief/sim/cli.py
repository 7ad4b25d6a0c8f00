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
@click.option("--police", is_flag=True,
              help="the whole board (modem emulator, GNSS, battery, cell and SMS network) provisioned "
                   "to a police server started here, with a control port for `urelief sim press` etc.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="with --police: where the server's database and logs live [default: a temp dir]")
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
def device_cmd(police: bool, workdir: Path | None, board: str, flash: Path | None, clock: str,
               heap_kb: int | None, firmware: Path | None, battery_mv: float, download: bool) -> None:
    """Power on one virtual board and print its USB serial port (for mpremote or esptool)."""
    from urelief.sim.device import BOOT_STRAP_GPIO, VirtualDevice

    if police:
        return _wired_device(board, workdir)

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
    try:
        _wait_for_stop()
    finally:
        dev.stop()
        click.echo(f"powered off; peak heap: {dev.heap_peak['live']} B live, "
                   f"{dev.heap_peak['alloc']} B allocated", err=True)


def _wait_for_stop() -> None:
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass


def _wired_device(board: str, workdir: Path | None) -> None:
    """A provisioned terminal on the whole emulated board, a police server, a control port."""
    import tempfile

    from urelief.build import build
    from urelief.sim.control import ControlServer
    from urelief.sim.rig import PoliceServer, Rig

    build()
    tmp = None if workdir else tempfile.TemporaryDirectory(prefix="urelief-device-")
    root = Path(workdir or tmp.name)
    server = PoliceServer(root / "police").seed().start()
    rig = ctl = None
    try:
        rig = Rig(root / "device", server, board=board, clock="real").start()
        ctl = ControlServer(rig).start()
        click.echo(ctl.port)
        click.echo(f"virtual terminal {rig.cfg.device_id} ({rig.dev.board['name']}, SIM {rig.msisdn}) "
                   f"running; control port {ctl.port}: urelief sim press {ctl.port} --hold 3\n"
                   f"police dashboard {server.http}/dashboard/ (token {server.token}); "
                   f"logs in {root}; Ctrl-C powers it off", err=True)
        _wait_for_stop()
    finally:
        if ctl:
            ctl.stop()
        if rig:
            rig.save_logs(root / "device" / "logs")
            rig.stop()
        server.stop()
        if tmp:
            tmp.cleanup()


def _control(port: int, cmd: dict) -> None:
    import json

    from urelief.sim.control import send

    try:
        answer = send(port, cmd)
    except OSError as e:
        raise click.ClickException(f"no virtual terminal on control port {port}: {e}") from e
    click.echo(json.dumps(answer))
    if not answer.get("ok"):
        raise SystemExit(1)


@sim.command("press")
@click.argument("port", type=int)
@click.option("--hold", "hold_s", type=float, default=3.5, show_default=True, help="seconds held")
def press_cmd(port: int, hold_s: float) -> None:
    """The child presses and holds the button of the terminal on control port PORT."""
    _control(port, {"op": "press", "hold_s": hold_s})


@sim.command("tap")
@click.argument("port", type=int)
@click.argument("n", type=int, default=1)
def tap_cmd(port: int, n: int) -> None:
    """The child taps the button N times (an answer: 1 yes, 2 no)."""
    _control(port, {"op": "tap", "n": n})


@sim.command("move")
@click.argument("port", type=int)
@click.argument("lat", type=float)
@click.argument("lon", type=float)
def move_cmd(port: int, lat: float, lon: float) -> None:
    """The child is now at LAT LON (degrees)."""
    _control(port, {"op": "move", "lat": lat, "lon": lon})


@sim.command("coverage")
@click.argument("port", type=int)
@click.argument("mode", type=click.Choice(["data", "sms-only", "none"]))
def coverage_cmd(port: int, mode: str) -> None:
    """The cell coverage where the child is: data, sms-only or none."""
    _control(port, {"op": "coverage", "mode": mode})


@sim.command("fault")
@click.argument("port", type=int)
@click.argument("kind", type=click.Choice(["modem-reboot", "modem-hang", "power-cut"]))
def fault_cmd(port: int, kind: str) -> None:
    """Inject a fault now."""
    _control(port, {"op": "fault", "kind": kind})


@sim.command("state")
@click.argument("port", type=int)
def state_cmd(port: int) -> None:
    """The terminal's device time, boots, position and last console events."""
    _control(port, {"op": "state"})
