"""SMS PDUs on the host (CPython), both sides of the air interface (3GPP TS 23.040 §9.2.2,
alphabets TS 23.038):

- a terminal (the police gateway's modem) writes SMS-SUBMIT and reads SMS-DELIVER and
  SMS-STATUS-REPORT: `encode_submit`, `decode`;
- the network (the simulator's modem emulator) reads SMS-SUBMIT and writes SMS-DELIVER:
  `decode_submit`, `encode_deliver`.

Every PDU here starts with the SMSC block, as AT+CMGS/+CMT/+CMGR carry it (27.005 §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

# TS 23.038 §6.2.1 default alphabet (index = septet; 0x1B escapes to the extension table).
GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXT = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~",
            0x3E: "]", 0x40: "|", 0x65: "€"}
_EXT_REV = {v: k for k, v in GSM7_EXT.items()}
_GSM7_REV = {ch: i for i, ch in enumerate(GSM7) if i != 0x1B}
ESC = 0x1B

DCS_GSM7, DCS_8BIT, DCS_UCS2 = 0x00, 0x04, 0x08
VP_24H = 0xA7  # relative validity period: 167 -> 24 hours (§9.2.3.12.1)
UD_OCTETS = 140  # TP-User-Data, UDH included
UD_SEPTETS = 160
IEI_CONCAT_8, IEI_CONCAT_16 = 0x00, 0x08  # concatenated SMS, 8- or 16-bit reference (§9.2.3.24)
MAX_PARTS = 255


class PduError(ValueError):
    pass


# -- alphabets ----------------------------------------------------------------------------------

def text_septets(text: str) -> list[int] | None:
    """Septets for `text` in the default alphabet + extension, or None (needs UCS-2)."""
    out: list[int] = []
    for ch in text:
        i = _GSM7_REV.get(ch)
        if i is not None:
            out.append(i)
        elif ch in _EXT_REV:
            out += [ESC, _EXT_REV[ch]]
        else:
            return None
    return out


def septets_text(septets: list[int]) -> str:
    out, esc = [], False
    for v in septets:
        if esc:
            out.append(GSM7_EXT.get(v, " "))  # unknown extension: a space (23.038 §6.2.1.1)
            esc = False
        elif v == ESC:
            esc = True
        else:
            out.append(GSM7[v])
    return "".join(out)


def pack_septets(septets: list[int], skip_bits: int = 0) -> bytes:
    """7-bit values packed LSB first after `skip_bits` fill bits (§6.1.2.1.1)."""
    bits = sum(s << (skip_bits + 7 * i) for i, s in enumerate(septets))
    return bits.to_bytes((skip_bits + 7 * len(septets) + 7) // 8, "little")


def unpack_septets(data: bytes, count: int, skip_bits: int = 0) -> list[int]:
    if count < 0 or skip_bits + 7 * count > 8 * len(data):
        raise PduError("user data shorter than TP-UDL")
    bits = int.from_bytes(data, "little")
    return [(bits >> (skip_bits + 7 * i)) & 0x7F for i in range(count)]


def alphabet(dcs: int) -> int:
    """0 GSM-7, 1 8-bit, 2 UCS-2 (23.038 §4: general coding groups and 0xF0 data coding)."""
    if dcs < 0x80:
        return (dcs >> 2) & 3
    if dcs >= 0xF0:
        return 1 if dcs & 4 else 0
    return 2 if 0xE0 <= dcs < 0xF0 else 0  # 0xC0-0xDF: MWI groups, GSM-7; 0xE0: UCS-2


# -- addresses ----------------------------------------------------------------------------------

def encode_address(number: str) -> bytes:
    """TP-DA/OA: digit count, type of address (0x91 international, 0x81 unknown), BCD swapped."""
    intl = number.startswith("+")
    digits = number[1:] if intl else number
    if not digits.isdigit() or not digits.isascii() or len(digits) > 20:
        raise PduError(f"bad number {number!r}")
    padded = digits + ("F" if len(digits) % 2 else "")
    bcd = bytes.fromhex("".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2)))
    return bytes([len(digits), 0x91 if intl else 0x81]) + bcd


def read_address(pdu: bytes, i: int) -> tuple[str, int]:
    """(number, index after it) for the TP address at `i`; an alphanumeric sender (type 5,
    e.g. "InternetSMS") as its GSM-7 text."""
    n, toa = pdu[i], pdu[i + 1]
    raw = pdu[i + 2:i + 2 + (n + 1) // 2]
    if len(raw) * 2 < n or n > 20:
        raise PduError("address truncated or too long")
    end = i + 2 + (n + 1) // 2
    if (toa >> 4) & 7 == 5:
        return septets_text(unpack_septets(raw, n * 4 // 7)), end
    hexed = raw.hex().upper()
    digits = "".join(hexed[k + 1] + hexed[k] for k in range(0, len(hexed), 2))[:n]
    if not digits.isdigit() and n:
        digits = digits.replace("A", "*").replace("B", "#")  # 23.040 §9.1.2.3: * and #
    return ("+" if (toa >> 4) & 7 == 1 else "") + digits, end


def _smsc_block(smsc: str | None) -> bytes:
    if not smsc:
        return b"\x00"  # the SIM's SMSC
    a = encode_address(smsc)
    return bytes([len(a) - 1]) + a[1:]  # SMSC length counts octets, not digits


# -- user data ----------------------------------------------------------------------------------

def user_data(body: str | bytes, udh: bytes = b"") -> tuple[int, int, bytes]:
    """(TP-DCS, TP-UDL, TP-UD) for `body` after the header `udh` (with its own length octet).
    str: GSM-7 when every character is in the default alphabet, else UCS-2; bytes: 8-bit."""
    if isinstance(body, bytes):
        ud = udh + body
        dcs, udl = DCS_8BIT, len(ud)
    else:
        septets = text_septets(body)
        if septets is not None:
            fill = (7 - len(udh) * 8 % 7) % 7  # the text starts on a septet boundary
            hsept = (len(udh) * 8 + fill) // 7
            dcs, udl = DCS_GSM7, hsept + len(septets)
            if udl > UD_SEPTETS:
                raise PduError(f"{udl} septets > {UD_SEPTETS}")
            ud = udh + pack_septets(septets, fill)
        else:
            ud = udh + body.encode("utf-16-be")
            dcs, udl = DCS_UCS2, len(ud)
    if len(ud) > UD_OCTETS:
        raise PduError(f"{len(ud)} octets of user data > {UD_OCTETS}")
    return dcs, udl, ud


def read_user_data(fo: int, dcs: int, udl: int, ud: bytes) -> tuple[str | bytes, bytes]:
    """(body, UDH with its length octet, or b"")."""
    udh = b""
    if fo & 0x40:  # TP-UDHI: the header's octets count in TP-UDL (septets for GSM-7)
        room = udl * 7 // 8 if alphabet(dcs) == 0 else udl
        if not ud or ud[0] + 1 > min(room, len(ud)):
            raise PduError("user data header longer than the user data")
        udh = bytes(ud[:ud[0] + 1])
    if alphabet(dcs) == 0:
        hsept = (len(udh) * 8 + 6) // 7
        return septets_text(unpack_septets(ud, udl - hsept, hsept * 7)), udh
    if len(ud) < udl:
        raise PduError("user data shorter than TP-UDL")
    data = bytes(ud[len(udh):udl])
    if alphabet(dcs) == 2:
        if len(data) % 2:
            raise PduError("UCS-2 user data of odd length")
        return data.decode("utf-16-be", "replace"), udh
    return data, udh


# -- concatenated SMS (23.040 §9.2.3.24.1, .8) ---------------------------------------------------

def concat_udh(ref: int, total: int, seq: int, ref16: bool = False) -> bytes:
    """The UDH (length octet first) of part `seq` (1-based) of `total`."""
    if ref16:
        return bytes([6, IEI_CONCAT_16, 4, (ref >> 8) & 0xFF, ref & 0xFF, total, seq])
    return bytes([5, IEI_CONCAT_8, 3, ref & 0xFF, total, seq])


def concat_info(udh: bytes) -> tuple[int, int, int] | None:
    """(reference, total, seq) from a UDH's concatenation element, or None."""
    i, end = 1, len(udh)
    while i + 2 <= end:
        iei, n = udh[i], udh[i + 1]
        v = udh[i + 2:i + 2 + n]
        if iei == IEI_CONCAT_8 and n == 3 and len(v) == 3:
            return v[0], v[1], v[2]
        if iei == IEI_CONCAT_16 and n == 4 and len(v) == 4:
            return (v[0] << 8) | v[1], v[2], v[3]
        i += 2 + n
    return None


def split_text(text: str, ref16: bool = False) -> list[str]:
    """`text` in as few parts as fit one SMS each: one part of up to 160 septets / 70 UCS-2
    units, else parts of 153/152 septets or 67/66 units (8-/16-bit reference header taken off).
    An escape pair or a UTF-16 surrogate pair is never cut."""
    gsm = text_septets(text) is not None
    cost = (lambda ch: 2 if ch in _EXT_REV else 1) if gsm else (
        lambda ch: 2 if ord(ch) > 0xFFFF else 1)
    room = UD_SEPTETS if gsm else UD_OCTETS // 2
    if sum(map(cost, text)) <= room:
        return [text]
    header = 7 if ref16 else 6  # octets with the length octet
    room = (UD_OCTETS - header) * 8 // 7 if gsm else (UD_OCTETS - header) // 2
    parts, cur, used = [], [], 0
    for ch in text:
        c = cost(ch)
        if used + c > room:
            parts.append("".join(cur))
            cur, used = [], 0
        cur.append(ch)
        used += c
    parts.append("".join(cur))
    if len(parts) > MAX_PARTS:
        raise PduError(f"text needs {len(parts)} SMS > {MAX_PARTS}")
    return parts


def encode_submits(to: str, body: str | bytes, ref: int = 0, ref16: bool = False,
                   **kw) -> list[tuple[bytes, int]]:
    """SMS-SUBMITs for any text: one, or a concatenated series under reference `ref`; bytes
    (a packet) always one 8-bit SMS. -> [(pdu, TPDU length)]"""
    if isinstance(body, bytes):
        return [encode_submit(to, body, **kw)]
    parts = split_text(body, ref16)
    if len(parts) == 1:
        return [encode_submit(to, body, **kw)]
    return [encode_submit(to, part, udh=concat_udh(ref, len(parts), k, ref16), **kw)
            for k, part in enumerate(parts, 1)]


# -- terminal side ------------------------------------------------------------------------------

def encode_submit(to: str, body: str | bytes, status_report: bool = True, udh: bytes = b"",
                  vp: int | None = VP_24H, smsc: str | None = None,
                  mr: int = 0) -> tuple[bytes, int]:
    """SMS-SUBMIT (SMSC block empty: the SIM's SMSC). Returns (pdu, TPDU length), the length
    being what AT+CMGS=<n> wants (27.005 §3.5.1: the SMSC block is not counted). `vp`: relative
    validity period octet, None for none."""
    dcs, udl, ud = user_data(body, udh)
    fo = 0x01 | (0x10 if vp is not None else 0) | (0x20 if status_report else 0) \
        | (0x40 if udh else 0)
    tpdu = (bytes([fo, mr & 0xFF]) + encode_address(to) + bytes([0x00, dcs])
            + (bytes([vp]) if vp is not None else b"") + bytes([udl]) + ud)
    return _smsc_block(smsc) + tpdu, len(tpdu)


@dataclass
class Deliver:
    sender: str
    body: str | bytes
    dcs: int
    scts: str  # service centre time stamp, "YYMMDDhhmmss+qq" digits as sent
    udh: bytes = b""


@dataclass
class StatusReport:
    mr: int  # the message reference +CMGS returned
    recipient: str
    status: int  # TP-ST: 0x00-0x1F delivered, 0x20-0x3F still trying, 0x40+ failed

    @property
    def outcome(self) -> str:
        return "delivered" if self.status < 0x20 else "sent" if self.status < 0x40 else "failed"


def decode(pdu: bytes) -> Deliver | StatusReport:
    """An SMS-DELIVER or SMS-STATUS-REPORT as +CMT/+CMGR/+CDS carry it."""
    try:
        i = 1 + pdu[0]
        fo = pdu[i]
        mti = fo & 3
        if mti == 2:
            mr = pdu[i + 1]
            number, i = read_address(pdu, i + 2)
            return StatusReport(mr, number, pdu[i + 14])  # after SCTS (7) and discharge time (7)
        if mti != 0:
            raise PduError("not an SMS-DELIVER or STATUS-REPORT")
        sender, i = read_address(pdu, i + 1)
        dcs = pdu[i + 1]
        semi = pdu[i + 2:i + 9].hex()
        if len(semi) != 14:
            raise PduError("PDU truncated")
        scts = "".join(semi[k + 1] + semi[k] for k in range(0, 14, 2))
        udl = pdu[i + 9]
        ud = pdu[i + 10:]
    except IndexError as e:
        raise PduError("PDU truncated") from e
    body, udh = read_user_data(fo, dcs, udl, ud)
    return Deliver(sender, body, dcs, scts, udh)


# -- network side -------------------------------------------------------------------------------

@dataclass
class Submit:
    number: str
    body: str | bytes
    dcs: int
    mr: int
    udh: bytes = b""


def decode_submit(pdu: bytes) -> Submit:
    """An SMS-SUBMIT as the modem gets it after AT+CMGS."""
    try:
        i = 1 + pdu[0]
        fo = pdu[i]
        if fo & 3 != 1:
            raise PduError("not an SMS-SUBMIT")
        mr = pdu[i + 1]
        number, i = read_address(pdu, i + 2)
        dcs = pdu[i + 1]
        vpf = (fo >> 3) & 3
        i += 2 + (1 if vpf == 2 else 7 if vpf else 0)
        udl = pdu[i]
        ud = pdu[i + 1:]
    except IndexError as e:
        raise PduError("PDU truncated") from e
    body, udh = read_user_data(fo, dcs, udl, ud)
    return Submit(number, body, dcs, mr, udh)


def encode_deliver(sender: str, body: str | bytes, when: datetime | None = None,
                   smsc: str = "+821000000000", udh: bytes = b"") -> bytes:
    """SMS-DELIVER with its SMSC block, as +CMT/+CMGR carry it."""
    when = when or datetime.now(UTC)
    dcs, udl, ud = user_data(body, udh)
    fo = 0x04 | (0x40 if udh else 0)  # SMS-DELIVER, no more messages to send
    off = when.utcoffset()
    q = int(off.total_seconds() // 900) if off else 0
    semi = [when.year % 100, when.month, when.day, when.hour, when.minute, when.second]
    scts = bytes(((v % 10) << 4) | (v // 10) for v in semi)
    scts += bytes([((abs(q) % 10) << 4) | (abs(q) // 10) | (0x08 if q < 0 else 0)])
    return (_smsc_block(smsc) + bytes([fo]) + encode_address(sender) + b"\x00" + bytes([dcs])
            + scts + bytes([udl]) + ud)
