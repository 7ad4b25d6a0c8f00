"""`urelief sim fleet`: many virtual terminals at once against the real police server, each
with its own fault, and a report of what became of every child's alert.

Every device is a `urelief.sim.rig.Rig` (the real firmware on its own MicroPython VM, the SIM7080
emulator, a GNSS receiver, a Li-ion cell) with its own identity and key, registered to the demo
school's pupil; all of them talk to one `urelief server` on loopback (one incident per device). Each runs one scenario in its own thread: boot, the fault, a 3 s
hold, then wait for the police's ACK to be felt. The report says, per device, whether the
incident opened, by which transport, and the press -> vibration time in device milliseconds.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import click

from urelief.sim import events
from urelief.sim.rig import PoliceServer, Rig

FAULTS = ("none", "no-data", "modem-hang", "power-cut", "no-fix")
ACK_WAIT_MS = 120_000  # device time an alert has to be acknowledged in


def _no_data(rig) -> None:
    rig.modem.faults.errors["AT+CNACT="] = ["ERROR"] * 1000  # the network refuses a data context


def _ready(rig, fault: str) -> None:
    if fault == "no-data":
        rig.dev.wait_line(events.line("link", state="down"), timeout_ms=90_000)
    else:
        rig.wait_ready(timeout_ms=90_000)


def run_one(rig, fault: str) -> dict:
    """One device's scenario; -> its row of the report (never raises)."""
    dev = rig.dev
    row: dict = {"device_id": rig.cfg.device_id, "fault": fault, "delivered": False}
    wall0 = time.monotonic()
    try:
        if fault == "no-data":
            _no_data(rig)
        rig.start()
        _ready(rig, fault)
        if fault == "modem-hang":
            rig.modem.faults.no_answer = True  # stalls until the firmware power-cycles it
        t_hold = rig.hold(3500, after_ms=200)
        t_press = t_hold - rig.cfg.gesture["hold_ms"]
        if fault == "power-cut":
            rig.until(lambda: events.first(dev.output, "stored", kind="sos"), timeout_ms=10_000)
            dev.clock.post(rig.modem.power_off)
            dev.power_cycle()
        delivered = rig.until(lambda: events.first(events.since(dev.output, "boot"), "ack", level=1)
                              and any(lv for lv, _ in rig.motor), timeout_ms=ACK_WAIT_MS)
        on = [t for lv, t in rig.motor if lv and t >= t_press]
        row.update(delivered=bool(delivered and on), reason=None if delivered and on else
                   why_not(rig, t_press),
                   transport=("sms" if events.first(dev.output, "sent", channel="sms") else
                              "udp" if events.first(dev.output, "sent", channel="udp") else None),
                   press_to_vibration_ms=round(on[0] - t_press) if on else None,
                   boots=dev.boots, heap_peak_b=dev.heap_peak["live"])
    except Exception as e:  # a device that fails is a finding, not the end of the run
        row["error"] = f"{type(e).__name__}: {e}"[:2000]
        row["trace"] = traceback.format_exc()[-2000:]
    row["wall_s"] = round(time.monotonic() - wall0, 2)
    return row


def why_not(rig, t_press: float) -> str:
    """What the device's console and motor say became of an alert that was not confirmed."""
    out = rig.dev.output
    if not events.first(out, "stored", kind="sos"):
        gestures = [e.fields.get("kind") for e in events.events(out, "gesture")]
        return f"no SOS stored (gestures seen: {gestures or 'none'}; the hold was not recognised)"
    sent = sorted({e.fields.get("channel") for e in events.events(out, "sent")} - {None})
    if not sent:
        return "SOS stored but never sent (no transport took it)"
    if not events.first(events.since(out, "boot"), "ack", level=1):
        return f"sent over {'+'.join(sent)} but no ACK came back"
    return f"ACK received but no vibration felt after the press at {t_press:.0f} ms"


def save_failures(rep: dict, rigs: list, server, dest: Path) -> Path | None:
    """The logs of every device that failed (console, AT, SMS) and the server's, under dest/."""
    failed = [i for i, r in enumerate(rep["rows"]) if not r["delivered"]]
    if not failed:
        return None
    for i in failed:
        rigs[i].save_logs(dest / f"dev{i:03d}")
        (dest / f"dev{i:03d}" / "row.json").write_text(json.dumps(rep["rows"][i], indent=1))
    if server.proc is not None and server.proc.log_path.exists():
        shutil.copy(server.proc.log_path, dest / "server.log")
    return dest


def run_fleet(n: int, faults: list[str], workdir: Path, echo: Callable[[str], None] = click.echo,
              rig_kw: dict | None = None, seed: int = 1, logs: Path | None = None) -> dict:
    """n devices (faults assigned round-robin) against one police server. -> the report; the
    logs of failing devices are saved under `logs` (default workdir/failed)."""
    wall0 = time.monotonic()
    server = PoliceServer(workdir / "police").seed().start()
    rigs: list = []
    try:
        for i in range(n):
            fault = faults[i % len(faults)]
            kw = dict(rig_kw or {})
            if fault == "no-fix":
                kw["gnss_ttff_ms"] = None
            rigs.append((Rig(workdir / f"dev{i:03d}", server, seed=seed * 1000 + i, **kw), fault))
        echo(f"{n} virtual terminals provisioned; police server UDP {server.udp[1]}, "
             f"dashboard {server.http}/dashboard/")
        rows: list[dict | None] = [None] * n

        def worker(i: int) -> None:
            rows[i] = run_one(*rigs[i])
            r = rows[i]
            echo(f"  device {i:3d} {r['fault']:<10} " + (
                f"delivered over {r['transport']}, felt {r['press_to_vibration_ms']} ms after the press"
                if r["delivered"] else f"NOT DELIVERED: {(r.get('error') or r.get('reason'))[:200]}"))

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        incidents = {i["device_id"]: i for i in server.incidents()}
        done = [r for r in rows if r is not None]
        for r in done:
            inc = incidents.get(r["device_id"])
            r["incident"] = inc and {"id": inc["id"], "child": inc["child"], "status": inc["status"],
                                     "has_position": inc["last_lat"] is not None}
        rep = summarise(done, time.monotonic() - wall0)
        saved = save_failures(rep, [rg for rg, _ in rigs], server, Path(logs or workdir / "failed"))
        rep.update(seed=seed, logs=str(saved) if saved else None)
    finally:
        for rig, _ in rigs:
            try:
                rig.stop()
            except Exception:
                pass
        server.stop()
    return rep


def summarise(rows: list[dict], wall_s: float) -> dict:
    by_fault: dict[str, dict] = {}
    for r in rows:
        f = by_fault.setdefault(r["fault"], {"devices": 0, "delivered": 0, "incidents": 0,
                                             "press_to_vibration_ms": []})
        f["devices"] += 1
        f["delivered"] += r["delivered"]
        f["incidents"] += bool(r.get("incident"))
        if r.get("press_to_vibration_ms") is not None:
            f["press_to_vibration_ms"].append(r["press_to_vibration_ms"])
    for f in by_fault.values():
        v = f.pop("press_to_vibration_ms")
        f["press_to_vibration_ms_median"] = statistics.median(v) if v else None
        f["press_to_vibration_ms_max"] = max(v) if v else None
    return {"devices": len(rows), "delivered": sum(r["delivered"] for r in rows),
            "incidents": sum(bool(r.get("incident")) for r in rows), "wall_s": round(wall_s, 1),
            "by_fault": by_fault, "rows": rows}


@click.command("fleet")
@click.option("--devices", "-n", default=8, show_default=True, help="virtual terminals")
@click.option("--faults", default=",".join(FAULTS), show_default=True,
              help=f"comma-separated, assigned round-robin; of: {', '.join(FAULTS)}")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="write the JSON report here")
@click.option("--seed", default=1, show_default=True, help="the children's hands (contact bounce); "
              "the same seed replays the same run")
@click.option("--logs", type=click.Path(file_okay=False, path_type=Path), default=Path("fleet-logs"),
              show_default=True, help="where failing devices' console, AT, SMS and server logs go")
def fleet_cmd(devices: int, faults: str, report: Path | None, seed: int, logs: Path) -> None:
    """Many terminals at once, each with a fault; every alert must reach the police and back."""
    from urelief.build import build

    wanted = [f.strip() for f in faults.split(",") if f.strip()]
    bad = [f for f in wanted if f not in FAULTS]
    if bad or not wanted:
        raise click.BadParameter(f"unknown fault(s) {bad}; choose from {', '.join(FAULTS)}",
                                 param_hint="--faults")
    build()
    with tempfile.TemporaryDirectory(prefix="urelief-fleet-") as tmp:
        click.echo(f"seed {seed}")
        rep = run_fleet(devices, wanted, Path(tmp), seed=seed, logs=logs)
    for fault, f in rep["by_fault"].items():
        click.echo(f"{fault:<10} {f['delivered']}/{f['devices']} delivered, {f['incidents']} incidents, "
                   f"press -> vibration median {f['press_to_vibration_ms_median']} ms, "
                   f"max {f['press_to_vibration_ms_max']} ms (device time)")
    click.echo(f"{rep['delivered']}/{rep['devices']} alerts delivered and confirmed in "
               f"{rep['wall_s']} s of wall time")
    if report:
        report.write_text(json.dumps(rep, indent=1))
        click.echo(f"report: {report}")
    if rep["logs"]:
        click.echo(f"failing devices' logs: {rep['logs']} (replay: urelief sim fleet -n {devices} "
                   f"--faults {faults} --seed {seed})")
    if rep["delivered"] != rep["devices"]:
        raise SystemExit(1)
