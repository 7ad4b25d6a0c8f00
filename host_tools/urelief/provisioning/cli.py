"""`urelief provision …`: a school provisions terminals over USB (see docs/provisioning.md).

  urelief provision device --port /dev/ttyACM0 --pupil "Kim Minji/4-2" --board <board> \\
      --server sos.example.org:7420 --sms +82112
  urelief provision batch --roster class-4-2.csv --school D1 --port '/dev/ttyACM*' --board …
  urelief provision status
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from urelief.paths import BUILD_FIRMWARE


@click.group("provision")
def provision_group() -> None:
    """Provision terminals over USB: firmware, keys, registration, self-test, label."""


def _server(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter("HOST:PORT, e.g. sos.example.org:7420", param_hint="--server")
    return host, int(port)


def _var() -> Path:
    return Path(os.environ.get("URELIEF_VAR", "var"))


def _common(f):
    opts = [
        click.option("--board", required=True, help="board name in boards/ (or a .json path)"),
        click.option("--db", "db_url", envvar="URELIEF_DB_URL", default=None,
                     help="registry database URL (default: $URELIEF_DB_URL, else var/urelief.db)"),
        click.option("--server", default=None, help="police UDP ingest HOST:PORT the device sends to"),
        click.option("--sms", "sms_number", default=None, help="police SMS gateway number (E.164)"),
        click.option("--centre", "centre", default=None, metavar="NUMBER",
                     help="the police centre's voice line (E.164) a silent call dials"),
        click.option("--cancel", "cancel", default=None, metavar="N/M",
                     help="the child's secret cancel: N presses cancel, M presses look the same "
                          "but keep the alert live (duress); default: no cancel on the device"),
        click.option("--replace", is_flag=True,
                     help="re-provision a board that already holds a device (rotates its key)"),
        click.option("--flash-micropython", "flash_image", default=None,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="write this MicroPython image with esptool first"),
        click.option("--deploy", type=click.Choice(["auto", "romfs", "files"]), default="auto",
                     show_default=True,
                     help="the firmware as a ROMFS image (an image with ROMFS) or .mpy files; "
                          "auto: ROMFS where the board's image has it"),
        click.option("--labels", "labels_dir", default="labels", show_default=True,
                     type=click.Path(file_okay=False, path_type=Path), help="where labels go"),
        click.option("--log", "log_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
                     help="provisioning log [default: $URELIEF_VAR/provisioning.db]"),
        click.option("--firmware", default=str(BUILD_FIRMWARE), show_default=True,
                     type=click.Path(file_okay=False, path_type=Path), help="built firmware tree"),
        click.option("--selftest-timeout", "selftest_timeout_s", default=60.0, show_default=True,
                     help="seconds the self-test may take (it is tried twice if the board is silent)"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _open_registry(db_url: str | None):
    from urelief.registry import migrate
    from urelief.registry.db import Database, default_url
    from urelief.registry.keys import ServerKey, ServerKeyError
    from urelief.registry.service import Registry

    url = db_url or default_url()
    if migrate.current(url) != migrate.head():
        raise click.ClickException(f"registry not at the current schema: run "
                                   f"`urelief registry migrate --db {url}`")
    try:
        key = ServerKey.from_env()
    except ServerKeyError:
        path = _var() / "server.key"  # the server's own key file, if it made one here
        if not path.is_file():
            raise click.ClickException(
                "no server key: set URELIEF_SERVER_KEY_FILE (the police server's key, which "
                "seals device keys in the registry)") from None
        key = ServerKey.from_file(path)
    return Registry(Database(url), key)


def _provisioner(kw: dict, echo):
    from urelief.provisioning.flow import Options, Provisioner, ProvisionError
    from urelief.provisioning.identity import e164
    from urelief.provisioning.log import ProvisionLog

    sms = kw["sms_number"]
    if sms:  # international form; short numbers (a police gateway) are allowed
        sms = sms.strip().replace(" ", "").replace("-", "")
        if not (sms.startswith("+") and sms[1:].isdigit() and 3 <= len(sms) - 1 <= 15):
            raise click.BadParameter("the gateway's number as +<country><number>",
                                     param_hint="--sms")
    cancel = None
    if kw["cancel"]:
        n, _, m = kw["cancel"].partition("/")
        if not (n.isdigit() and m.isdigit()):
            raise click.BadParameter("N/M, e.g. 4/6", param_hint="--cancel")
        cancel = {"presses": int(n), "duress_presses": int(m)}
    centre = None
    if kw["centre"]:
        try:
            centre = e164(kw["centre"])
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--centre") from None
    opts = Options(board=kw["board"], server=_server(kw["server"]), sms_number=sms, cancel=cancel,
                   centre=centre,
                   replace=kw["replace"], labels_dir=kw["labels_dir"], firmware=kw["firmware"],
                   flash_image=kw["flash_image"], selftest_timeout_s=kw["selftest_timeout_s"],
                   deploy=kw["deploy"])
    registry = _open_registry(kw["db_url"])
    log = ProvisionLog(kw["log_path"] or _var() / "provisioning.db")
    try:
        return Provisioner(registry, log, opts, echo=echo)
    except ProvisionError as e:
        raise click.ClickException(str(e)) from None


def _say(s: str) -> None:
    click.echo(f"  {s}", err=True)


@provision_group.command("device")
@click.option("--port", required=True, help="the board's serial port, e.g. /dev/ttyACM0")
@click.option("--subscriber", "subscriber_id", type=int, default=None, help="pupil's registry id")
@click.option("--pupil", "name_class", default=None, help='"full name/class", e.g. "Kim Minji/4-2"')
@click.option("--school", "school_code", default=None, help="school code (narrows --pupil)")
@_common
def device_cmd(port: str, subscriber_id: int | None, name_class: str | None,
               school_code: str | None, **kw) -> None:
    """Provision the board on PORT for one pupil."""
    from urelief.provisioning.board import UsbBoard
    from urelief.provisioning.flow import ProvisionError

    if (subscriber_id is None) == (name_class is None):
        raise click.UsageError("give exactly one of --subscriber ID or --pupil 'name/class'")
    prov = _provisioner(kw, _say)
    try:
        if subscriber_id is not None:
            pupil = prov.pupil(subscriber_id)
        else:
            school_id = (prov.registry.school_by_code(prov.actor, school_code)["id"]
                         if school_code else None)
            pupil = prov.find_pupil(name_class or "", school_id)
    except ProvisionError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{pupil.full_name} ({pupil.class_name}), {pupil.school}: board on {port}", err=True)
    res = prov.provision(UsbBoard(port), pupil)
    _report(res)
    if not res.ok:
        sys.exit(1)


def _report(res) -> None:
    if res.skipped:
        click.echo(f"already provisioned: device 0x{res.device_id:08x}, check {res.check_code} "
                   "(nothing done)")
    elif res.ok:
        click.echo(f"ok: device 0x{res.device_id:08x} key {res.key_id}, check {res.check_code}, "
                   f"{res.seconds:.1f} s; label {res.labels[0]} and {res.labels[1].name}")
    else:
        click.echo(f"FAILED: {res.error}", err=True)
        click.echo("the pupil is not provisioned; fix the cause and run the command again",
                   err=True)


@provision_group.command("batch")
@click.option("--roster", "roster_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="roster CSV (urelief registry import-roster's columns)")
@click.option("--school", "school_code", required=True, help="school code")
@click.option("--port", required=True, help="serial port, or a glob such as '/dev/ttyACM*'")
@click.option("--wait", "wait_s", type=float, default=0, show_default=True,
              help="seconds to wait for each board (0: for ever)")
@click.option("--country", "country_code", default="", help="calling code for national numbers")
@_common
def batch_cmd(roster_file: Path, school_code: str, port: str, wait_s: float, country_code: str,
              **kw) -> None:
    """Provision a class from a roster, one board after another: resumable, safe to re-run."""
    from urelief.provisioning.batch import Ports, RosterError, load_roster, run_batch

    prov = _provisioner(kw, click.echo)
    prov.echo = _say
    try:
        pupils = load_roster(prov.registry, prov.actor, school_code,
                             roster_file.read_text(encoding="utf-8-sig"), country_code)
    except RosterError as e:
        click.echo(f"roster {roster_file}: {e}", err=True)
        for err in e.errors:
            where = f"row {err['row']}: " if "row" in err else ""
            click.echo(f"  {where}{err.get('field') or '-'}: {err['message']}", err=True)
        click.echo("nothing was provisioned", err=True)
        sys.exit(2)
    out = run_batch(prov, pupils, Ports(port), wait_s or None, click.echo)
    done = out.done_before + out.ok
    click.echo(f"{done}/{out.total} provisioned ({out.ok} now, {out.done_before} before), "
               f"{len(out.failed)} failed" + (f", {out.waiting_for} waiting for a board"
                                              if out.waiting_for else ""))
    if not out.complete:
        click.echo("run the same command again to finish: done pupils are skipped", err=True)
        sys.exit(1)


@provision_group.command("status")
@click.option("--log", "log_path", default=None, type=click.Path(dir_okay=False, path_type=Path))
def status_cmd(log_path: Path | None) -> None:
    """The provisioning log: each pupil's device, status and label check code."""
    from urelief.provisioning.log import ProvisionLog

    log = ProvisionLog(log_path or _var() / "provisioning.db")
    for r in log.rows():
        dev = f"0x{r['device_id']:08x}" if r["device_id"] else "-"
        click.echo("  ".join([r["pupil_ref"] or "-", r["full_name"] or "-", r["class_name"] or "-",
                              dev, r["status"], r["check_code"] or "-", r["error"] or ""]).rstrip())
