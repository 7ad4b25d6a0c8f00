"""`urelief protocol`: look inside packets (debugging a device, a gateway, an SMS) and vectors."""

from __future__ import annotations

import json
import sys

import click

from urelief import protocol as p
from urelief.protocol import codec
from urelief.protocol.messages import HEADER_LEN, to_fields


@click.group("protocol")
def protocol_group() -> None:
    """Wire protocol v1 (docs/protocol.md)."""


def _packet(data: str) -> bytes:
    data = data.strip()
    if p.is_text_form(data):
        return p.from_text(data)
    return bytes.fromhex(data)


@protocol_group.command("decode")
@click.argument("packet")
@click.option("--secret", help="the device secret, 64 hex digits (else only the header is shown)")
@click.option("--downlink", is_flag=True, help="the packet goes police -> device")
def decode_cmd(packet: str, secret: str | None, downlink: bool) -> None:
    """Show a packet given as hex or as its SMS text form ("UR1:...")."""
    try:
        raw = _packet(packet)
    except (ValueError, p.SmsFormatError) as e:
        raise click.ClickException(f"not a packet: {e}") from None
    out: dict = {"bytes": len(raw)}
    if len(raw) >= HEADER_LEN:
        b0, mtype, dev, counter = codec.HEADER.unpack_from(raw)
        out.update(version=b0 >> 4, key_id=b0 & 15, type=f"0x{mtype:02x}", device_id=dev,
                   counter=counter)
    if secret:
        key = bytes.fromhex(secret)
        if downlink:
            res = p.decode_downlink(raw, device_id=out.get("device_id", 0),
                                    key_id=out.get("key_id", 0), secret=key)
        else:
            ks = p.MemoryKeyStore({(out.get("device_id", 0), out.get("key_id", 0)): key})
            res = p.decode_uplink(raw, ks, p.MemoryReplayWindow())
        if res.ok:
            out.update(verdict="accepted", fields=to_fields(res.message),
                       warnings=list(res.warnings))
        else:
            out.update(verdict=str(res.reason), detail=res.detail)
    json.dump(out, sys.stdout, indent=1)
    click.echo()


@protocol_group.command("vectors")
@click.option("--check", is_flag=True, help="only check tests/vectors is up to date")
def vectors_cmd(check: bool) -> None:
    """Regenerate tests/vectors/protocol_v1.json from the server implementation."""
    from urelief.protocol import vectors

    raise SystemExit(vectors.main(["--check"] if check else []))
