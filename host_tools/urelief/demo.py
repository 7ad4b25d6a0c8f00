"""`urelief demo`: the terminal's main job on its embedded defaults, end to end.

The real police server (`urelief server`, SQLite in a temp dir) runs on loopback; a virtual
device is provisioned for a pupil (id, secret, /device.json, counter file, registry entry) and
boots the real firmware (build/firmware) on a real MicroPython VM, with the SIM7080 emulator on
its modem UART (UDP to the server over real loopback sockets, SMS through the simulator's SMS
network), a GNSS receiver on its GNSS UART and a Li-ion cell on its battery ADC. The child holds
the button; the timeline goes from the press to the vibration that says the police have it.
The rig itself (`PoliceServer`, `SmsGateway`, `Rig`) lives in `urelief.sim.rig`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click

from urelief.sim import events
from urelief.sim.rig import PoliceServer, Rig, pattern_name

# ------------------------------------------------------------------------------ the demo

def run_demo(echo=click.echo) -> dict:
    wall0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="urelief-demo-") as tmp:
        server = PoliceServer(Path(tmp) / "police").seed().start()
        echo(f"police server up: UDP {server.udp[0]}:{server.udp[1]}, dashboard {server.http}/dashboard/")
        rig = Rig(Path(tmp) / "device", server).start()
        try:
            return _timeline(rig, server, echo, wall0)
        finally:
            rig.stop()
            server.stop()


def _timeline(rig: Rig, server: PoliceServer, echo, wall0: float) -> dict:
    dev = rig.dev
    echo(f"device {rig.cfg.device_id} provisioned for pupil #{server.subscriber_id}, "
         "firmware booting on the virtual board")
    t_ready = rig.wait_ready()
    echo(f"[{t_ready:8.0f} ms] modem registered, data link to the police server up")
    t_hold = rig.hold(3500, after_ms=500)
    t_press = t_hold - rig.cfg.gesture["hold_ms"]
    rig.until(lambda: events.first(dev.output, "ack", level=1) and len(rig.motor) >= 2,
              timeout_ms=20_000)
    rig.dev.run_for(300)
    stored = events.first(dev.output, "stored", kind="sos")
    sent_at = _modem_time(rig, "AT+CASEND")
    ack_at = _modem_time(rig, "+CADATAIND", "tx")
    incs = server.incidents()
    inc = incs[0] if incs else {}
    on = [t for lv, t in rig.motor if lv]
    echo(f"[{t_press:8.0f} ms] the child presses the SOS button and holds it")
    echo(f"[{t_hold:8.0f} ms] held 3 s: SOS gesture recognised")
    if stored:
        echo(f"[{t_hold + stored.int('after_ms'):8.0f} ms] SOS #{stored['counter']} sealed and "
             f"stored in the flash outbox (fix {'yes' if stored.flag('fix') else 'none'}, age "
             f"{stored['fix_age_s']} s, battery {stored['battery_pct']} %, time source "
             f"{stored['time_source']})")
    if sent_at is not None:
        echo(f"[{sent_at:8.0f} ms] sent over UDP (AT+CASEND, LTE-M)")
    if inc:
        echo(f"[{'':>8}   ] server: incident {inc['id']} opened for {inc['child']}, device "
             f"{inc['device_id']}, position {inc['last_lat']:.5f}, {inc['last_lon']:.5f} "
             f"+/- {inc['last_accuracy_m']} m")
    if ack_at is not None:
        echo(f"[{ack_at:8.0f} ms] signed ACK (received) back at the device")
    for t, durs in rig.patterns():
        echo(f"[{t:8.0f} ms] vibration: {pattern_name(durs)} (silent confirmation)")
    wall = time.monotonic() - wall0
    figures = {
        "press_to_stored_ms": (t_hold - t_press) + stored.int("after_ms") if stored else None,
        "gesture_to_stored_ms": stored.int("after_ms") if stored else None,
        "press_to_server_ms": round(sent_at + rig.modem.t.uplink_ms - t_press) if sent_at else None,
        "press_to_ack_ms": round(ack_at - t_press) if ack_at else None,
        "press_to_vibration_ms": round(on[0] - t_press) if on else None,
    }
    echo("figures (device time): press -> stored {press_to_stored_ms} ms (firmware's share after "
         "the 3 s hold: {gesture_to_stored_ms} ms), press -> server {press_to_server_ms} ms, "
         "press -> ack {press_to_ack_ms} ms, press -> vibration {press_to_vibration_ms} ms"
         .format(**figures))
    echo(f"device time {dev.clock.now_ms() / 1000:.1f} s in {wall:.1f} s of wall time; "
         f"peak firmware heap {dev.heap_peak['live']} B live of {dev.heap_kb} KB")
    return {"incident": inc, "patterns": [pattern_name(d) for _, d in rig.patterns()],
            "figures": figures}


def _modem_time(rig: Rig, text: str, direction: str = "rx") -> float | None:
    for t, d, s in rig.modem.log:
        if d == direction and text in s:
            return t
    return None


@click.command("demo")
def demo_cmd() -> None:
    """A child holds SOS on a virtual terminal; the real police server opens the incident."""
    result = run_demo()
    inc = result["incident"]
    if not inc or inc.get("last_lat") is None or "SENT" not in result["patterns"]:
        raise click.ClickException("the SOS did not make it to the police and back")
