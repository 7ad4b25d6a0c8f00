"""`urelief demo`: the terminal's main job on its embedded defaults, end to end in the simulator.

A virtual board (the `sim` board: ESP32-S3, SIM7080G-class modem, UART GNSS) boots the real
firmware from build/firmware on a real MicroPython VM; a child knocks the button by accident,
then holds it for 3.5 s; the firmware recognises the gesture and confirms it silently on the
vibration motor. Everything runs on the virtual clock.
"""

from __future__ import annotations

import time

import click

from urelief.cli import main as cli
from urelief.sim.device import VirtualDevice
from urelief.sim.models.button import HumanButton


def run_demo(echo=click.echo) -> dict:
    dev = VirtualDevice(board="sim", clock="virtual")
    pins = dev.board["pins"]
    adc = pins["battery_adc"]
    dev.adc(adc["gpio"]).set_mv(3900 / adc["divider"])  # a Li-ion cell at ~70 %
    motor: list[tuple[int, float]] = []
    dev.pin(pins["vibration"]["gpio"]).on_change(lambda lvl, t: motor.append((lvl, t)))
    wall0 = time.monotonic()
    with dev:
        boot = dev.wait_line("urelief: boot", timeout_ms=10_000)
        echo(f"[{dev.clock.now_ms():8.0f} ms] {boot}")
        child = HumanButton(dev, pins["button"]["gpio"])
        t0 = dev.clock.now_ms()
        child.bump(50, after_ms=1000)
        echo(f"[{t0 + 1000:8.0f} ms] the button is knocked for 50 ms (pocket bump)")
        child.press(3500, after_ms=3000)
        echo(f"[{t0 + 3000:8.0f} ms] the child holds the button for 3.5 s")
        dev.run_for(9000)
        gestures = [ln for ln in dev.output.splitlines() if "gesture" in ln]
        for ln in gestures:
            echo(f"[{'':>8}   ] {ln.strip()}")
        for level, t in motor:
            if level:
                echo(f"[{t:8.0f} ms] vibration motor on (silent confirmation)")
        wall = time.monotonic() - wall0
        echo(f"device time {dev.clock.now_ms() / 1000:.1f} s in {wall:.1f} s of wall time; "
             f"peak firmware heap {dev.heap_peak['live']} B live of {dev.heap_kb} KB")
    return {"gestures": gestures, "motor_on": [t for lvl, t in motor if lvl]}


@cli.command("demo")
def demo_cmd() -> None:
    """Boot the real firmware on a virtual board and raise an SOS gesture."""
    result = run_demo()
    if len(result["gestures"]) != 1 or not result["motor_on"]:
        raise click.ClickException("the SOS gesture was not recognised and confirmed")
