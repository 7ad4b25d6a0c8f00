"""`urelief sms`: the PDUs a modem gateway sends, to check a template's cost or to decode them
with another tool."""

from __future__ import annotations

import click

from urelief.sms import pdu as pdus


@click.group("sms")
def sms_group() -> None:
    """SMS PDUs (3GPP TS 23.040) as the police server's modem gateway writes them."""


@sms_group.command("encode")
@click.option("--to", "to", required=True, help="recipient, +<country><number>")
@click.option("--text", help="text: GSM-7 if it fits the default alphabet, else UCS-2")
@click.option("--data", "data_hex", help="8-bit user data, hex (a packet: one SMS)")
@click.option("--ref", default=0, show_default=True, help="concatenation reference")
@click.option("--ref16", is_flag=True, help="16-bit concatenation reference (else 8-bit)")
def encode_cmd(to: str, text: str | None, data_hex: str | None, ref: int, ref16: bool) -> None:
    """Print the SMS-SUBMIT PDUs (hex, one per line) for --text or --data; the count and the
    coding go to stderr."""
    if (text is None) == (data_hex is None):
        raise click.UsageError("give one of --text or --data")
    try:
        body: str | bytes = bytes.fromhex(data_hex) if data_hex is not None else text
        out = pdus.encode_submits(to, body, ref=ref, ref16=ref16)
    except ValueError as e:  # PduError too
        raise click.ClickException(str(e)) from None
    for pdu, _ in out:
        click.echo(pdu.hex().upper())
    coding = {pdus.DCS_GSM7: "GSM-7", pdus.DCS_8BIT: "8-bit", pdus.DCS_UCS2: "UCS-2"}
    dcs = pdus.user_data(body if isinstance(body, bytes) else pdus.split_text(body, ref16)[0])[0]
    click.echo(f"{len(out)} SMS, {coding[dcs]}", err=True)
