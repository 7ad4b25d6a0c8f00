"""SMS PDUs as a terminal (the police gateway's modem) sees them: write SMS-SUBMIT, read
SMS-DELIVER and SMS-STATUS-REPORT (3GPP TS 23.040 §9.2.2; alphabets TS 23.038).

The mirror of `urelief.sim.modem.pdu` (the network's side) and of the firmware's codec; the
tests hold the three together.
"""

from __future__ import annotations

from dataclasses import dataclass

# TS 23.038 §6.2.1 default alphabet (index = septet; 0x1B escapes to the extension table).
GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXT = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~",
            0x3E: "]", 0x40: "|", 0x65: "€"}
_EXT_REV = {v: k for k, v in GSM7_EXT.items()}
ESC = 0x1B

DCS_GSM7, DCS_8BIT, DCS_UCS2 = 0x00, 0x04, 0x08
VP_24H = 0xA7  # relative validity period: 167 -> 24 hours (§9.2.3.12.1)


class PduError(ValueError):
    pass


def unpack_septets(data: bytes, count: int, skip_bits: int = 0) -> list[int]:
    """`count` 7-bit values packed LSB first, after `skip_bits` fill bits (§6.1.2.1.1)."""
    out = []
    for i in range(count):
        bit = skip_bits + i * 7
        byte, shift = divmod(bit, 8)
        if byte >= len(data):
            raise PduError("user data shorter than TP-UDL")
        v = data[byte] >> shift
        if shift > 1 and byte + 1 < len(data):
            v |= data[byte + 1] << (8 - shift)
        out.append(v & 0x7F)
    return out


def septets_text(septets: list[int]) -> str:
    out, esc = [], False
    for v in septets:
        if esc:
            out.append(GSM7_EXT.get(v, " "))
            esc = False
        elif v == ESC:
            esc = True
        else:
            out.append(GSM7[v])
    return "".join(out)


def text_septets(text: str) -> list[int] | None:
    """Septets for `text` in the default alphabet + extension, or None (needs UCS-2)."""
    out = []
    for ch in text:
        i = GSM7.find(ch)
        if i >= 0 and i != ESC:
            out.append(i)
        elif ch in _EXT_REV:
            out += [ESC, _EXT_REV[ch]]
        else:
            return None
    return out


def pack_septets(septets: list[int]) -> bytes:
    out, acc, bits = bytearray(), 0, 0
    for s in septets:
        acc |= s << bits
        bits += 7
        while bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc)
    return bytes(out)


def _address(number: str) -> bytes:
    """TP-DA/OA: digit count, type of address (0x91 international, 0x81 unknown), BCD swapped."""
    intl = number.startswith("+")
    digits = number.lstrip("+")
    if not digits.isdigit() or len(digits) > 20:
        raise PduError(f"bad number {number!r}")
    padded = digits + ("F" if len(digits) % 2 else "")
    bcd = bytes.fromhex("".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2)))
    return bytes([len(digits), 0x91 if intl else 0x81]) + bcd


def _read_address(pdu: bytes, i: int) -> tuple[str, int]:
    n, toa = pdu[i], pdu[i + 1]
    raw = pdu[i + 2:i + 2 + (n + 1) // 2].hex().upper()
    if len(raw) < n:
        raise PduError("address truncated")
    digits = "".join(raw[k + 1] + raw[k] for k in range(0, len(raw), 2))[:n]
    return ("+" if (toa >> 4) & 7 == 1 else "") + digits, i + 2 + (n + 1) // 2


def encode_submit(to: str, body: str | bytes, status_report: bool = True) -> tuple[bytes, int]:
    """SMS-SUBMIT with an empty SMSC block (the SIM's SMSC). Returns (pdu, TPDU length), the
    length being what AT+CMGS=<n> wants (27.005 §3.5.1: the SMSC block is not counted)."""
    fo = 0x01 | 0x10 | (0x20 if status_report else 0)  # SUBMIT, relative VP, SRR
    if isinstance(body, bytes):
        dcs, udl, ud = DCS_8BIT, len(body), body
        if udl > 140:
            raise PduError(f"{udl} octets > 140")
    else:
        septets = text_septets(body)
        if septets is not None:
            if len(septets) > 160:
                raise PduError(f"{len(septets)} septets > 160")
            dcs, udl, ud = DCS_GSM7, len(septets), pack_septets(septets)
        else:
            ud = body.encode("utf-16-be")
            if len(ud) > 140:
                raise PduError("UCS-2 text longer than 70 characters")
            dcs, udl = DCS_UCS2, len(ud)
    tpdu = bytes([fo, 0x00]) + _address(to) + bytes([0x00, dcs, VP_24H, udl]) + ud
    return b"\x00" + tpdu, len(tpdu)


@dataclass
class Deliver:
    sender: str
    body: str | bytes
    dcs: int
    scts: str  # service centre time stamp, "YYMMDDhhmmss+qq" as sent


@dataclass
class StatusReport:
    mr: int  # the message reference +CMGS returned
    recipient: str
    status: int  # TP-ST: 0x00-0x1F delivered, 0x20-0x3F still trying, 0x40+ failed

    @property
    def outcome(self) -> str:
        return "delivered" if self.status < 0x20 else "sent" if self.status < 0x40 else "failed"


def decode(pdu: bytes) -> Deliver | StatusReport:
    """A PDU as +CMT/+CMGR/+CDS carry it (SMSC block first)."""
    try:
        i = 1 + pdu[0]
        fo = pdu[i]
        mti = fo & 3
        if mti == 2:
            mr = pdu[i + 1]
            number, i = _read_address(pdu, i + 2)
            status = pdu[i + 14]  # after SCTS (7) and discharge time (7)
            return StatusReport(mr, number, status)
        if mti != 0:
            raise PduError("not an SMS-DELIVER or STATUS-REPORT")
        sender, i = _read_address(pdu, i + 1)
        dcs = pdu[i + 1]
        scts = pdu[i + 2:i + 9].hex()
        scts = "".join(scts[k + 1] + scts[k] for k in range(0, 14, 2))
        udl = pdu[i + 9]
        ud = pdu[i + 10:]
    except IndexError as e:
        raise PduError("PDU truncated") from e
    alphabet = (dcs >> 2) & 3 if dcs < 0x80 else (1 if dcs & 4 else 0) if dcs >= 0xF0 else 0
    udh_len = ud[0] + 1 if fo & 0x40 and ud else 0
    if alphabet == 0:
        skip = (udh_len * 8 + 6) // 7
        body: str | bytes = septets_text(unpack_septets(ud, udl - skip, skip * 7))
    else:
        if len(ud) < udl:
            raise PduError("user data shorter than TP-UDL")
        data = bytes(ud[udh_len:udl])
        body = data.decode("utf-16-be", "replace") if alphabet == 2 else data
    return Deliver(sender, body, dcs, scts)
