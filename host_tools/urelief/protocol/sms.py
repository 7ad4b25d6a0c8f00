"""SMS framing of protocol v1 packets.

Binary form: the packet is the whole TP-User-Data of an 8-bit SMS (TP-DCS 0x04, no UDH).
Text form, for gateways that carry only GSM-7 text: "UR1:" + RFC 4648 base64 without padding.
Every base64 character is in the GSM 03.38 basic table (one septet), so a 112-byte packet is
4 + 150 = 154 characters <= 160.
"""

from __future__ import annotations

import base64
import binascii

from urelief.protocol.messages import MAX_PACKET

TEXT_PREFIX = "UR1:"
SMS_OCTETS = 140  # 8-bit user data
SMS_SEPTETS = 160  # GSM-7 user data


class SmsFormatError(ValueError):
    pass


def to_text(packet: bytes) -> str:
    return TEXT_PREFIX + base64.b64encode(packet).decode("ascii").rstrip("=")


def from_text(text: str) -> bytes:
    """Packet bytes from the text form; raises SmsFormatError. Whitespace is ignored."""
    s = "".join(text.split())
    if not s.startswith(TEXT_PREFIX):
        raise SmsFormatError("no UR1: prefix")
    body = s[len(TEXT_PREFIX):]
    if len(body) % 4 == 1 or len(body) > (MAX_PACKET * 4 + 2) // 3 + 4:
        raise SmsFormatError(f"base64 length {len(body)} impossible or too long")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise SmsFormatError(f"bad base64: {e}") from None


def is_text_form(payload: bytes | str) -> bool:
    if isinstance(payload, str):
        return payload.lstrip().startswith(TEXT_PREFIX)
    return payload.lstrip().startswith(TEXT_PREFIX.encode())
