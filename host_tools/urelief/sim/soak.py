"""`urelief sim soak`: the real firmware for D device-days on a virtual board against the real
police server, its energy measured part by part (sim/energy.py): daily check-ins, a few alerts
if asked (held, delivered, resolved by the dispatcher), mAh/day, awake fraction, the top
consumers and standby days on the cell. `--save` keeps the result in hw/power/<board>.json,
where `urelief boards power` takes its measured duty cycle from."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import click

from urelief import power
from urelief.paths import BOARDS
from urelief.power import MEASURED
from urelief.provisioning import identity
from urelief.sim import chipspeed
from urelief.sim.device import board_heap_kb
from urelief.sim.energy import EnergyMeter
from urelief.sim.rig import GATEWAY_NUMBER, SERVER_NAME, PoliceServer, Rig

CHUNK_MS = 3_600_000.0  # device time per run_for step (a stuck board shows within one)


# As a terminal is handed out: deep sleep between uses, the modem in PSM where it has it (3GPP
# T3412 a day, T3324 10 s: reachable for 10 s after each uplink), one check-in a day.
PSM = {"tau_s": 86400, "active_s": 10}
CHECKIN_S = 86400


def deployed(board: str) -> identity.DeviceConfig:
    """The device files a soaked terminal runs with."""
    return identity.new_device(server=(SERVER_NAME, 7420), sms_number=GATEWAY_NUMBER, psm=PSM,
                               sleep=True, checkin_s=CHECKIN_S)


def soak(board: str, days: float, alerts: int = 0, capacity_mah: float = 1500,
         chip_factor: float | None = None, workdir: Path | None = None,
         progress=lambda msg: None) -> dict:
    """Run the soak; -> the energy report plus what the police side saw."""
    tmp = tempfile.TemporaryDirectory(prefix="urelief-soak-") if workdir is None else None
    work = Path(tmp.name if tmp else workdir)
    server = PoliceServer(work / "police").seed().start()
    rig = None
    try:
        factor = chip_factor if chip_factor is not None else chipspeed.factor(
            json.loads((BOARDS / f"{board}.json").read_text()).get("soc", "esp32"))
        cfg = deployed(board)
        server.provision(cfg, board=board)
        rig = Rig(work / "dev", server, board=board, cpu_scale=factor, cfg=cfg,
                  heap_kb=board_heap_kb(json.loads((BOARDS / f"{board}.json").read_text())))
        cell = _cell_of(rig)
        pins = rig.dev.board["pins"]
        meter = EnergyMeter(rig.dev, power.PARTS[rig.dev.board["name"]], modem=rig.modem,
                            gnss=rig.gnss, motor_gpio=pins["vibration"]["gpio"], cell=cell,
                            chip_factor=factor)
        rig.start()
        meter.start()
        total_ms = days * 86_400_000
        alert_at = [total_ms * (i + 0.5) / alerts for i in range(alerts)]
        presses: list[dict] = []
        t0_wall = time.monotonic()
        while rig.dev.clock.now_ms() < total_ms:
            now = rig.dev.clock.now_ms()
            if alert_at and now >= alert_at[0]:
                alert_at.pop(0)
                presses.append(_alert(rig, server))
                continue
            step = min(CHUNK_MS, total_ms - now, (alert_at[0] - now) if alert_at else CHUNK_MS)
            rig.dev.run_for(max(step, 1.0), timeout_s=300)
            progress(f"day {rig.dev.clock.now_ms() / 86_400_000:.2f}")
        meter.stop()
        rep = meter.report(capacity_mah)
        rep.update(board=rig.dev.board["name"], soc=rig.dev.soc, boots=rig.dev.boots,
                   wall_s=round(time.monotonic() - t0_wall, 1), alerts=presses,
                   checkins=_checkins(rig),
                   cell_soc_end=round(cell.soc, 4) if cell is not None else None)
        return rep
    finally:
        if rig is not None:
            rig.stop()
        server.stop()
        if tmp is not None:
            tmp.cleanup()


def _cell_of(rig: Rig):
    """The cell the board runs from, drained by the meter instead of a fixed load."""
    if rig.battery is not None:
        rig.battery.load_ma = 0.0
        rig.battery.stop()
        rig.battery.start(every_ms=60_000)  # the ADC follows the cell; no 1 s timer all night
        return rig.battery.cell
    if rig.pmu is not None and getattr(rig.pmu, "cell", None) is not None:
        rig.pmu.load_ma = 0.0
        return rig.pmu.cell
    return None


def _alert(rig: Rig, server: PoliceServer) -> dict:
    """The child holds 3.5 s; the police get the SOS, then resolve the incident."""
    before = {i["id"] for i in server.incidents()}
    t_press = rig.dev.clock.now_ms() + 100
    rig.hold(3500)
    new: list[dict] = []

    def opened() -> bool:
        new[:] = [i for i in server.incidents() if i["id"] not in before]
        return bool(new)

    got = rig.until(opened, timeout_ms=120_000, timeout_s=120)
    out = {"at_s": round(t_press / 1000, 1), "incident": got}
    if got:
        out["press_to_server_ms"] = round(rig.dev.clock.now_ms() - t_press)
        server.act(new[0]["id"], "resolve")
    return out


def _checkins(rig: Rig) -> dict:
    """Check-ins the firmware stored, and those the server acknowledged (its signed ACK)."""
    from urelief.sim import events
    out = rig.dev.output
    stored = [e.int("counter") for e in events.events(out, "stored", kind="check_in")]
    acked = {e.int("counter") for e in events.events(out, "ack")}
    return {"stored": len(stored), "acked": sum(c in acked for c in stored)}


def format_report(rep: dict) -> str:
    lines = [f"{rep['board']} ({rep['soc']}): {rep['days']:g} device-days, {rep['boots']} boots, "
             f"{rep['wall_s']} s wall",
             f"  {rep['mah_per_day']:.3f} mAh/day (+ {rep['self_discharge_mah_per_day']:.2f} "
             f"self-discharge); awake {rep['awake_s_per_day']:.1f} s/day "
             f"(fraction {rep['awake_fraction']:.5f}, CPU at chip factor {rep['chip_factor']})",
             f"  standby {rep['standby_days']} days on {rep['capacity_mah']:g} mAh "
             f"({rep['usable']:.0%} usable)", "  top consumers:"]
    for c in rep["consumers"][:6]:
        lines.append(f"    {c['mah_per_day']:8.3f} mAh/day {c['share']:6.1%}  {c['part']} "
                     f"{c['state']} ({c['s_per_day']:.1f} s/day at {c['ma']:g} mA) "
                     f"[{c['kind']}]")
    ci = rep["checkins"]
    lines.append(f"  check-ins: {ci['stored']} stored, {ci['acked']} acknowledged by the server")
    for a in rep["alerts"]:
        lines.append(f"  alert at {a['at_s']} s: " + (
            f"press -> server {a['press_to_server_ms']} ms" if a["incident"] else "NO INCIDENT"))
    return "\n".join(lines)


@click.command("soak")
@click.option("--board", default="sim", show_default=True, help="board name in boards/")
@click.option("--days", default=1.0, show_default=True, help="device-days to run")
@click.option("--alerts", default=0, show_default=True, help="alerts held over the soak")
@click.option("--capacity", default=1500.0, show_default=True, help="cell capacity, mAh")
@click.option("--chip-factor", type=float, help="host/chip CPU speed ratio "
              "[default: urelief.sim.chipspeed for the board's SoC]")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.option("--save", is_flag=True, help="keep it in hw/power/<board>.json (boards power)")
def soak_cmd(board: str, days: float, alerts: int, capacity: float, chip_factor: float | None,
             as_json: bool, save: bool) -> None:
    """Run the real firmware for DAYS device-days and measure its energy per part."""
    if board not in power.PARTS:
        raise click.BadParameter(f"no part currents for {board!r} (have: {sorted(power.PARTS)})")
    rep = soak(board, days, alerts, capacity, chip_factor,
               progress=lambda m: click.echo(m, err=True) if not as_json else None)
    if save:
        MEASURED.mkdir(parents=True, exist_ok=True)
        (MEASURED / f"{board}.json").write_text(json.dumps(rep, indent=1) + "\n")
    click.echo(json.dumps(rep, indent=1) if as_json else format_report(rep))
