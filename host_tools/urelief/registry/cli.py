"""`urelief registry …`: set up the database and administer schools, operators and rosters.

Runs on the server host with direct database access, acting as admin `cli:<login>` in the
audit log. `--db URL` (or `$URELIEF_DB_URL`; default SQLite under ./var/) on every command.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import click

from urelief.registry import migrate as _migrate
from urelief.registry.db import Database, default_url
from urelief.registry.errors import Invalid, RegistryError
from urelief.registry.keys import ServerKey, ServerKeyError
from urelief.registry.models import Role
from urelief.registry.roster import CONSENT_SCOPES
from urelief.registry.service import Registry, cli_actor

_db_option = click.option("--db", "db_url", envvar="URELIEF_DB_URL", default=None,
                          help="database URL (default: $URELIEF_DB_URL, else var/urelief.db)")


@click.group()
def registry() -> None:
    """Administer the subscriber registry: schema, schools, operators, rosters."""


def _open(db_url: str | None) -> Registry:
    url = db_url or default_url()
    if _migrate.current(url) != _migrate.head():
        raise click.ClickException(f"database not at the current schema: run "
                                   f"`urelief registry migrate --db {url}`")
    try:
        key = ServerKey.from_env()  # only device registration needs it; the CLI does not
    except ServerKeyError:
        key = None
    return Registry(Database(url), key)


def _fail(e: RegistryError) -> None:
    click.echo(f"error: {e}", err=True)
    for err in getattr(e, "errors", []):
        where = f"row {err['row']}: " if "row" in err else ""
        click.echo(f"  {where}{err.get('field') or '-'}: {err['message']}", err=True)
    sys.exit(1 if isinstance(e, Invalid) else 2)


@registry.command("migrate")
@_db_option
@click.option("--to", "revision", default="head", show_default=True, help="target revision")
def migrate_cmd(db_url: str | None, revision: str) -> None:
    """Create or upgrade the schema (Alembic)."""
    url = db_url or default_url()
    _migrate.upgrade(url, revision)
    click.echo(f"schema at {_migrate.current(url)}")


@registry.command("init-db")
@_db_option
def init_db(db_url: str | None) -> None:
    """Create the schema (same as `migrate` to head)."""
    url = db_url or default_url()
    _migrate.upgrade(url)
    click.echo(f"schema at {_migrate.current(url)} in {url}")


@registry.command("downgrade")
@_db_option
@click.option("--to", "revision", required=True, help="target revision, or `base` (drops all)")
@click.confirmation_option(prompt="Downgrading can drop tables and data. Continue?")
def downgrade_cmd(db_url: str | None, revision: str) -> None:
    url = db_url or default_url()
    _migrate.downgrade(url, revision)
    click.echo(f"schema at {_migrate.current(url)}")


@registry.command("init-key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def init_key(path: Path) -> None:
    """Make a server key file (32 random bytes, hex, mode 0600) for sealing device keys."""
    try:
        ServerKey.generate(path)
    except FileExistsError:
        raise click.ClickException(f"{path} exists; not overwriting a key") from None
    click.echo(f"wrote {path}; set URELIEF_SERVER_KEY_FILE={path}")


@registry.command("add-school")
@_db_option
@click.argument("code")
@click.argument("name")
@click.option("--address", default=None)
def add_school(db_url: str | None, code: str, name: str, address: str | None) -> None:
    reg = _open(db_url)
    try:
        school = reg.create_school(cli_actor(), code, name, address)
    except RegistryError as e:
        _fail(e)
    click.echo(f"school {school['id']} {school['code']} {school['name']}")


@registry.command("add-operator")
@_db_option
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--school", "school_code", default=None, help="school code (school_admin)")
@click.option("--name", "display_name", default="")
@click.option("--password", is_flag=True, help="also set a password (prompted) for the dashboard")
@click.option("--token-days", type=click.IntRange(1, 366), default=90, show_default=True,
              help="the bearer token's lifetime")
def add_operator(db_url: str | None, username: str, role: str, school_code: str | None,
                 display_name: str, password: bool, token_days: int) -> None:
    """Create an operator and print their bearer token (shown once; it expires)."""
    reg = _open(db_url)
    actor = cli_actor()
    pw = click.prompt("password", hide_input=True, confirmation_prompt=True) if password else None
    try:
        school_id = reg.school_by_code(actor, school_code)["id"] if school_code else None
        op, token = reg.create_operator(actor, username, role, school_id=school_id,
                                        password=pw, display_name=display_name,
                                        token_ttl=timedelta(days=token_days))
    except RegistryError as e:
        _fail(e)
    click.echo(f"operator {op['id']} {op['username']} ({op['role']})", err=True)
    click.echo(token)


@registry.command("import-roster")
@_db_option
@click.argument("school_code")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--dry-run", is_flag=True, help="check and count, write nothing")
@click.option("--country", "country_code", default="",
              help="country calling code for national numbers, e.g. 82")
def import_roster(db_url: str | None, school_code: str, csv_file, dry_run: bool,
                  country_code: str) -> None:
    """Import a roster CSV into a school: every row or none (see registry/roster.py)."""
    reg = _open(db_url)
    actor = cli_actor()
    try:
        school = reg.school_by_code(actor, school_code)
        result = reg.import_roster(actor, school["id"], csv_file.read(), dry_run=dry_run,
                                   country_code=country_code)
    except RegistryError as e:
        _fail(e)
    verb = "would import" if dry_run else "imported"
    click.echo(f"{verb} {result['rows']} rows: {result['created']} new, "
               f"{result['updated']} updated, {result['unchanged']} unchanged")


_LISTS = {
    "schools": lambda r, a, kw: r.list_schools(a, kw["offset"], kw["limit"]),
    "operators": lambda r, a, kw: r.list_operators(a, kw["offset"], kw["limit"]),
    "subscribers": lambda r, a, kw: r.list_subscribers(a, **kw),
    "devices": lambda r, a, kw: r.list_devices(a, **kw),
    "audit": lambda r, a, kw: r.list_audit(a, offset=kw["offset"], limit=kw["limit"]),
}


@registry.command("list")
@_db_option
@click.argument("what", type=click.Choice(sorted(_LISTS)))
@click.option("--school", "school_code", default=None)
@click.option("--offset", default=0, show_default=True)
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_cmd(db_url: str | None, what: str, school_code: str | None, offset: int, limit: int,
             as_json: bool) -> None:
    """List schools, operators, subscribers, devices or audit entries."""
    reg = _open(db_url)
    actor = cli_actor()
    kw: dict = {"offset": offset, "limit": limit}
    try:
        if school_code and what in ("subscribers", "devices"):
            kw["school_id"] = reg.school_by_code(actor, school_code)["id"]
        result = _LISTS[what](reg, actor, kw)
    except RegistryError as e:
        _fail(e)
    if as_json:
        click.echo(json.dumps(result, indent=1, default=str))
        return
    for item in result["items"]:
        click.echo("  ".join(_brief(what, item)))
    click.echo(f"({len(result['items'])} of {result['total']})", err=True)


def _brief(what: str, i: dict) -> list[str]:
    if what == "schools":
        return [str(i["id"]), i["code"], i["name"]]
    if what == "operators":
        return [str(i["id"]), i["username"], i["role"], str(i["school_id"] or "-"),
                "active" if i["active"] else "disabled"]
    if what == "subscribers":
        return [str(i["id"]), i["pupil_ref"], i["full_name"], i["class_name"],
                str(i["birth_year"] or "")]
    if what == "devices":
        return [i["hex_id"], i["status"], str(i["subscriber_id"] or "-"), i["board"],
                i["firmware_version"], i["last_seen_at"] or "never"]
    return [str(i["id"]), i["at"], i["username"] or "-", i["action"], i["outcome"],
            f"{i['object_type']}:{i['object_id']}"]


@registry.command("retire-device")
@_db_option
@click.argument("device_id")
def retire_device(db_url: str | None, device_id: str) -> None:
    """Retire DEVICE_ID (decimal or 0x-hex): the police server refuses its packets from now
    on (a running server holds it within seconds)."""
    reg = _open(db_url)
    try:
        dev = reg.update_device(cli_actor(), device_id, {"status": "retired"})
    except RegistryError as e:
        _fail(e)
    click.echo(f"device {dev['hex_id']} retired")


@registry.command("withdraw-consent")
@_db_option
@click.argument("subscriber_id", type=int)
@click.argument("scope", type=click.Choice(sorted(CONSENT_SCOPES)))
def withdraw_consent(db_url: str | None, subscriber_id: int, scope: str) -> None:
    """Withdraw every active consent of SCOPE for the pupil SUBSCRIBER_ID (audited)."""
    reg = _open(db_url)
    actor = cli_actor()
    try:
        active = [c for c in reg.list_consents(actor, subscriber_id)["items"]
                  if c["scope"] == scope and c["active"]]
        for c in active:
            reg.withdraw_consent(actor, c["id"])
    except RegistryError as e:
        _fail(e)
    click.echo(f"pupil {subscriber_id}: {len(active)} {scope} consent(s) withdrawn")


@registry.command("verify-audit")
@_db_option
def verify_audit(db_url: str | None) -> None:
    """Recompute the audit log's hash chain; exit 1 if it is broken."""
    reg = _open(db_url)
    out = reg.verify_audit(cli_actor())
    click.echo(f"{out['checked']} entries, chain {'intact' if out['intact'] else 'BROKEN'}"
               + ("" if out["intact"] else f" at entry {out['first_bad_id']}"))
    sys.exit(0 if out["intact"] else 1)
