"""The SMS gateway a server runs with, from its `--sms-gateway` / `URELIEF_SMS_GATEWAY` spec.

    make_gateway("log")                        # none: every message is recorded as not sent
    make_gateway("outbox")                     # an external gateway polls GET /api/sms/outbox
    make_gateway("modem:/dev/ttyUSB0@115200")  # a USB GSM/LTE modem (any pyserial URL)
    make_gateway("kannel:http://u:p@127.0.0.1:13013/cgi-bin/sendsms?from=%2B82112")  # Kannel

The simulator passes its own gateway to `create_app` (urelief.sim.sms_gateway).
"""

from __future__ import annotations

from urelief.server.kannel import KannelGateway
from urelief.server.modem import AtModemGateway
from urelief.server.sms import LogGateway, OutboxGateway, SmsGateway


def make_gateway(spec: str) -> SmsGateway:
    if spec in ("", "log"):
        return LogGateway()
    if spec == "outbox":
        return OutboxGateway()
    if spec.startswith("modem:"):
        port, _, baud = spec[len("modem:"):].partition("@")
        return AtModemGateway(port, int(baud or 115200))
    if spec.startswith("kannel:"):
        return KannelGateway(spec[len("kannel:"):])
    raise ValueError(f"unknown SMS gateway {spec!r} (log, outbox, modem:PORT[@BAUD], kannel:URL; the simulator "
                     "passes its SimNetworkGateway to create_app)")
