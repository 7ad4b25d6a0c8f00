"""The network side's SMS PDUs (CPython): read an SMS-SUBMIT the device sent, write the SMS-DELIVER
the device receives. 3GPP TS 23.040 §9.2.2, alphabets TS 23.038. Written independently of the
firmware codec on purpose: the two are held together by shared test vectors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

GSM7 = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
        "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXT = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~",
            0x3E: "]", 0x40: "|", 0x65: "€"}


class BadPdu(ValueError):
    pass


@dataclass
class Submit:
    number: str
    body: str | bytes
    dcs: int
    mr: int
    udh: bytes = b""


def _septets_to_text(septets: list[int]) -> str:
    out, esc = [], False
    for s in septets:
        if esc:
            out.append(GSM7_EXT.get(s, " "))
            esc = False
        elif s == 0x1B:
            esc = True
        else:
            out.append(GSM7[s])
    return "".join(out)


def _unpack(data: bytes, count: int, skip_bits: int = 0) -> list[int]:
    bits = int.from_bytes(data, "little")
    if skip_bits + 7 * count > 8 * len(data):
        raise BadPdu("user data shorter than TP-UDL")
    return [(bits >> (skip_bits + 7 * i)) & 0x7F for i in range(count)]


def _pack(septets: list[int]) -> bytes:
    bits = sum(s << (7 * i) for i, s in enumerate(septets))
    return bits.to_bytes((7 * len(septets) + 7) // 8, "little")


def _text_septets(text: str) -> list[int] | None:
    rev_ext = {v: k for k, v in GSM7_EXT.items()}
    out: list[int] = []
    for ch in text:
        i = GSM7.find(ch)
        if i >= 0 and ch != "\x1b":
            out.append(i)
        elif ch in rev_ext:
            out += [0x1B, rev_ext[ch]]
        else:
            return None
    return out


def _address(number: str) -> bytes:
    intl = number.startswith("+")
    digits = number.lstrip("+")
    if not digits.isdigit():
        raise BadPdu(f"address {number!r} is not numeric")
    padded = digits + ("F" if len(digits) % 2 else "")
    swapped = "".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2))
    return bytes([len(digits), 0x91 if intl else 0x81]) + bytes.fromhex(swapped)


def decode_submit(pdu: bytes) -> Submit:
    """PDU as the modem gets it after AT+CMGS (SMSC block first)."""
    try:
        i = 1 + pdu[0]
        fo = pdu[i]
        if fo & 3 != 1:
            raise BadPdu("not an SMS-SUBMIT")
        mr = pdu[i + 1]
        n = pdu[i + 2]
        toa = pdu[i + 3]
        raw = pdu[i + 4:i + 4 + (n + 1) // 2].hex().upper()
        digits = "".join(raw[k + 1] + raw[k] for k in range(0, len(raw), 2))[:n]
        number = ("+" if (toa >> 4) & 7 == 1 else "") + digits
        i += 4 + (n + 1) // 2
        dcs = pdu[i + 1]
        vpf = (fo >> 3) & 3
        i += 2 + (1 if vpf == 2 else 7 if vpf else 0)
        udl = pdu[i]
        ud = pdu[i + 1:]
    except IndexError as e:
        raise BadPdu("PDU truncated") from e
    alphabet = (dcs >> 2) & 3 if dcs < 0x80 else (1 if dcs & 4 else 0) if dcs >= 0xF0 else 0
    udh = b""
    if fo & 0x40 and udl:
        udh = ud[:ud[0] + 1]
    if alphabet == 0:
        hbits = len(udh) * 8
        hsept = (hbits + 6) // 7
        body: str | bytes = _septets_to_text(_unpack(ud, udl - hsept, hsept * 7)[:])
    else:
        if len(ud) < udl:
            raise BadPdu("user data shorter than TP-UDL")
        data = bytes(ud[len(udh):udl])
        body = data.decode("utf-16-be") if alphabet == 2 else data
    return Submit(number, body, dcs, mr, udh)


def encode_deliver(sender: str, body: str | bytes, when: datetime | None = None,
                   smsc: str = "+821000000000") -> bytes:
    """SMS-DELIVER with SMSC block, as +CMT/+CMGR carry it. str -> GSM-7 or UCS-2, bytes -> 8-bit."""
    when = when or datetime.now(UTC)
    sm = _address(smsc)
    out = bytes([len(sm) - 1]) + sm[1:]
    out += bytes([0x04]) + _address(sender) + b"\x00"
    if isinstance(body, bytes):
        dcs, udl, ud = 0x04, len(body), body
    else:
        septets = _text_septets(body)
        if septets is not None:
            dcs, udl, ud = 0x00, len(septets), _pack(septets)
        else:
            ud = body.encode("utf-16-be")
            dcs, udl = 0x08, len(ud)
    off = when.utcoffset()
    q = int(off.total_seconds() // 900) if off else 0
    semi = [when.year % 100, when.month, when.day, when.hour, when.minute, when.second]
    scts = bytes(((v % 10) << 4) | (v // 10) for v in semi)
    scts += bytes([((abs(q) % 10) << 4) | (abs(q) // 10) | (0x08 if q < 0 else 0)])
    return out + bytes([dcs]) + scts + bytes([udl]) + ud
