# SMS PDU codec, pure (no machine): 3GPP TS 23.040 (TPDU layout) and TS 23.038 (alphabets).
# A PDU as AT+CMGS/+CMGR/+CMT carry it in PDU mode (27.005 §3.1) = SMSC address block + TPDU.
from micropython import const

_MTI_DELIVER = const(0)
_MTI_SUBMIT = const(1)
_MTI_STATUS = const(2)
_ESC = const(0x1B)

DCS_GSM7 = const(0x00)
DCS_8BIT = const(0x04)  # class-less 8-bit data (23.038 §4, group 00xx, alphabet 01)
DCS_UCS2 = const(0x08)

# 23.038 §6.2.1 default alphabet, index = septet value; 0x1B is the escape to the extension table.
_GSM7 = ("@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5"
         "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\x1b\u00c6\u00e6\u00df\u00c9"
         " !\"#\u00a4%&'()*+,-./0123456789:;<=>?"
         "\u00a1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7"
         "\u00bfabcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0")
# 23.038 §6.2.1.1 extension table (after ESC): septet -> character.
_GSM7_EXT = {0x0A: "\x0c", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[",
             0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "\u20ac"}
_GSM7_EXT_REV = {v: k for k, v in _GSM7_EXT.items()}
_DIGITS = "0123456789*#abc"  # semi-octet values 0..14 in an address (23.040 §9.1.2.3)


class PduError(ValueError):
    """A PDU that cannot be decoded or encoded; the message says which field is wrong."""


class Sms:
    """A decoded TPDU. kind: 'deliver' | 'submit' | 'status'.
    scts: (year, month, day, hour, minute, second, tz_quarters) or None (23.040 §9.2.3.11).
    body: str (GSM-7 / UCS-2 text) or bytes (8-bit data). concat: (ref, total, seq) or None."""

    def __init__(self):
        self.kind = None
        self.smsc = None
        self.number = None
        self.scts = None
        self.pid = 0
        self.dcs = 0
        self.body = None
        self.udh = None  # list of (iei, bytes)
        self.concat = None
        self.mr = None  # message reference (submit, status report)
        self.status = None  # TP-ST (status report)
        self.discharge = None  # TP-DT (status report), same form as scts


# ---------------------------------------------------------------- GSM-7

def gsm7_septets(text):
    """Septets encoding `text` in the default alphabet (+ extension), or None if not encodable."""
    out = bytearray()
    for ch in text:
        i = _GSM7.find(ch)
        if i >= 0 and i != _ESC:
            out.append(i)
        else:
            e = _GSM7_EXT_REV.get(ch)
            if e is None:
                return None
            out.append(_ESC)
            out.append(e)
    return out


def pack_septets(septets, fill_bits=0):
    """Pack 7-bit values LSB first (23.038 §6.1.2.1.1); `fill_bits` zero bits lead (after a UDH)."""
    out = bytearray()
    acc = 0
    nbits = fill_bits
    for s in septets:
        acc |= (s & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data, count, fill_bits=0):
    """`count` septets from packed `data`, skipping `fill_bits` leading bits."""
    if (fill_bits + 7 * count + 7) // 8 > len(data):
        raise PduError("user data shorter than TP-UDL")
    out = bytearray(count)
    bit = fill_bits
    for i in range(count):
        byte = bit >> 3
        shift = bit & 7
        v = data[byte] >> shift
        if shift > 1:
            v |= data[byte + 1] << (8 - shift)
        out[i] = v & 0x7F
        bit += 7
    return out


def gsm7_text(septets):
    """Text from default-alphabet septets; an unknown extension code reads as its base character."""
    parts = []
    esc = False
    for s in septets:
        if esc:
            parts.append(_GSM7_EXT.get(s, _GSM7[s] if s != _ESC else " "))
            esc = False
        elif s == _ESC:
            esc = True
        else:
            parts.append(_GSM7[s])
    return "".join(parts)


def _ucs2(text):
    out = bytearray()
    for ch in text:
        c = ord(ch)
        if c > 0xFFFF:  # UTF-16 surrogate pair
            c -= 0x10000
            out.extend(((0xD8 | (c >> 18)), (c >> 10) & 0xFF, 0xDC | ((c >> 8) & 3), c & 0xFF))
        else:
            out.append(c >> 8)
            out.append(c & 0xFF)
    return out


def _ucs2_text(data):
    if len(data) & 1:
        raise PduError("odd UCS-2 length")
    parts = []
    i = 0
    n = len(data)
    while i < n:
        c = (data[i] << 8) | data[i + 1]
        i += 2
        if 0xD800 <= c < 0xDC00 and i + 1 < n:
            lo = (data[i] << 8) | data[i + 1]
            if 0xDC00 <= lo < 0xE000:
                c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00)
                i += 2
        parts.append(chr(c))
    return "".join(parts)


# ---------------------------------------------------------------- addresses

def encode_address(number, smsc=False):
    """Address field (23.040 §9.1.2.5); SMSC form (24.011 §8.2.5.1) counts octets, not digits.
    Leading '+' -> type 0x91 (international, ISDN), else 0x81 (unknown, ISDN)."""
    if not number:
        return b"\x00" if smsc else b"\x00\x81"
    toa = 0x81
    if number[0] == "+":
        toa = 0x91
        number = number[1:]
    out = bytearray()
    for i in range(0, len(number), 2):
        lo = _DIGITS.find(number[i])
        hi = _DIGITS.find(number[i + 1]) if i + 1 < len(number) else 15
        if lo < 0 or hi < 0:
            raise PduError("bad digit in address")
        out.append((hi << 4) | lo)
    n = len(out) + 1 if smsc else len(number)
    return bytes((n, toa)) + out


def _decode_digits(raw, ndigits):
    parts = []
    for b in raw:
        for nib in (b & 0x0F, b >> 4):
            if len(parts) >= ndigits or nib == 15:
                break
            parts.append(_DIGITS[nib])
    return "".join(parts)


def _decode_toa_value(toa, raw, ndigits):
    ton = (toa >> 4) & 7
    if ton == 5:  # alphanumeric: GSM-7 packed (23.040 §9.1.2.5)
        return gsm7_text(unpack_septets(raw, len(raw) * 8 // 7))
    digits = _decode_digits(raw, ndigits)
    return "+" + digits if ton == 1 and digits else digits


def _read_address(pdu, i):
    """-> (address, next index). Length field counts useful semi-octets."""
    if i + 2 > len(pdu):
        raise PduError("address truncated")
    ndigits = pdu[i]
    toa = pdu[i + 1]
    if not toa & 0x80:
        raise PduError("bad type-of-address")
    nbytes = (ndigits + 1) // 2
    end = i + 2 + nbytes
    if end > len(pdu):
        raise PduError("address longer than PDU")
    return _decode_toa_value(toa, pdu[i + 2:end], ndigits), end


def _read_smsc(pdu):
    n = pdu[0]
    if n == 0:
        return None, 1
    if n + 1 > len(pdu) or n < 1:
        raise PduError("SMSC address longer than PDU")
    toa = pdu[1]
    return _decode_toa_value(toa, pdu[2:n + 1], 2 * (n - 1)), n + 1


# ---------------------------------------------------------------- timestamps, validity

def _bcd(b):
    return (b & 0x0F) * 10 + (b >> 4)


def _read_scts(pdu, i):
    if i + 7 > len(pdu):
        raise PduError("timestamp truncated")
    y, mo, d, h, mi, s = (_bcd(pdu[i + k]) for k in range(6))
    tzb = pdu[i + 6]
    tz = (tzb & 0x07) * 10 + (tzb >> 4)  # quarter hours; bit 3 of the swapped tens = sign
    if tzb & 0x08:
        tz = -tz
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 60):
        raise PduError("bad timestamp")
    return (2000 + y if y < 70 else 1900 + y, mo, d, h, mi, s, tz)


def encode_scts(year, month, day, hour, minute, second, tz_quarters=0):
    """TP-SCTS semi-octets (23.040 §9.2.3.11)."""
    out = bytearray()
    for v in (year % 100, month, day, hour, minute, second):
        out.append(((v % 10) << 4) | (v // 10))
    q = abs(tz_quarters)
    out.append(((q % 10) << 4) | (q // 10) | (0x08 if tz_quarters < 0 else 0))
    return bytes(out)


def vp_relative(minutes):
    """TP-VP relative format (23.040 §9.2.3.12.1): the smallest code covering `minutes`."""
    if minutes <= 720:
        return max(0, (minutes + 4) // 5 - 1)
    if minutes <= 1440:
        return 143 + (minutes - 720 + 29) // 30
    if minutes <= 30 * 1440:
        return 166 + (minutes + 1439) // 1440
    return min(255, 192 + (minutes + 10079) // 10080)


# ---------------------------------------------------------------- encoding

def _user_data(body, dcs):
    """-> (dcs, UDL, packed user data). body str: GSM-7 when encodable, else UCS-2."""
    if isinstance(body, str):
        if dcs is None or dcs == DCS_GSM7:
            septets = gsm7_septets(body)
            if septets is not None:
                if len(septets) > 160:
                    raise PduError("text longer than 160 septets")
                return DCS_GSM7, len(septets), pack_septets(septets)
            if dcs == DCS_GSM7:
                raise PduError("text not in the GSM-7 alphabet")
        data = _ucs2(body)
        dcs = DCS_UCS2
    else:
        data = body
        dcs = DCS_8BIT if dcs is None else dcs
    if len(data) > 140:
        raise PduError("user data longer than 140 octets")
    return dcs, len(data), data


def encode_submit(number, body, smsc=None, vp=None, dcs=None, mr=0):
    """SMS-SUBMIT PDU (23.040 §9.2.2.2) with its SMSC block (None: use the SIM's, octet 00).
    body: bytes -> 8-bit data (the binary packet); str -> GSM-7 or UCS-2.
    vp: TP-VP relative code (see vp_relative) or None for no validity period.
    Returns bytes; AT+CMGS takes tpdu_length(pdu)."""
    dcs, udl, ud = _user_data(body, dcs)
    fo = _MTI_SUBMIT | (0x10 if vp is not None else 0)  # TP-VPF = relative (bits 4,3 = 10)
    out = bytearray(encode_address(smsc, True) if smsc else b"\x00")
    out.append(fo)
    out.append(mr & 0xFF)
    out.extend(encode_address(number))
    out.append(0)  # TP-PID: plain SME-to-SME
    out.append(dcs)
    if vp is not None:
        out.append(vp)
    out.append(udl)
    out.extend(ud)
    return bytes(out)


def encode_deliver(number, body, scts, smsc=None, dcs=None):
    """SMS-DELIVER PDU (23.040 §9.2.2.1), e.g. a message stored to a phone's inbox.
    scts: (year, month, day, hour, minute, second[, tz_quarters])."""
    dcs, udl, ud = _user_data(body, dcs)
    out = bytearray(encode_address(smsc, True) if smsc else b"\x00")
    out.append(_MTI_DELIVER)
    out.extend(encode_address(number))
    out.append(0)
    out.append(dcs)
    out.extend(encode_scts(*scts))
    out.append(udl)
    out.extend(ud)
    return bytes(out)


def tpdu_length(pdu):
    """Octets after the SMSC block: the <length> of AT+CMGS/+CMGW (27.005 §3.5.1)."""
    return len(pdu) - pdu[0] - 1


# ---------------------------------------------------------------- decoding

def _alphabet(dcs):
    """0 GSM-7, 1 8-bit, 2 UCS-2 (23.038 §4)."""
    g = dcs >> 4
    if g < 8:  # general data coding / automatic deletion groups
        if dcs & 0x20:
            return 1  # compressed: hand over as data
        a = (dcs >> 2) & 3
        return 0 if a == 3 else a
    if g == 0x0E:
        return 2
    if g == 0x0F:
        return 1 if dcs & 0x04 else 0
    return 0  # 0xC, 0xD message waiting; reserved 8..B read as GSM-7


def _parse_udh(udh, sms):
    ies = []
    i = 0
    while i < len(udh):
        if i + 2 > len(udh):
            raise PduError("UDH element truncated")
        iei = udh[i]
        n = udh[i + 1]
        if i + 2 + n > len(udh):
            raise PduError("UDH element longer than header")
        v = udh[i + 2:i + 2 + n]
        ies.append((iei, v))
        if iei == 0x00 and n == 3:  # concatenation, 8-bit reference (23.040 §9.2.3.24.1)
            sms.concat = (v[0], v[1], v[2])
        elif iei == 0x08 and n == 4:  # concatenation, 16-bit reference (§9.2.3.24.8)
            sms.concat = ((v[0] << 8) | v[1], v[2], v[3])
        i += 2 + n
    sms.udh = ies


def _read_user_data(pdu, i, fo, sms):
    if i >= len(pdu):
        raise PduError("TP-UDL missing")
    udl = pdu[i]
    ud = pdu[i + 1:]
    alpha = _alphabet(sms.dcs)
    nbytes = (udl * 7 + 7) // 8 if alpha == 0 else udl
    if nbytes > len(ud):
        raise PduError("user data shorter than TP-UDL")
    ud = ud[:nbytes]
    hlen = 0
    if fo & 0x40 and udl:  # TP-UDHI (an empty user data with UDHI set is read as empty)
        if nbytes < 1 or ud[0] + 1 > nbytes:
            raise PduError("UDH longer than user data")
        hlen = ud[0] + 1
        _parse_udh(ud[1:hlen], sms)
    if alpha == 0:
        hsept = (hlen * 8 + 6) // 7
        if hsept > udl:
            raise PduError("UDH longer than user data")
        fill = hsept * 7 - hlen * 8
        sms.body = gsm7_text(unpack_septets(ud[hlen:], udl - hsept, fill))
    elif alpha == 2:
        sms.body = _ucs2_text(ud[hlen:])
    else:
        sms.body = bytes(ud[hlen:])


def _read_mr_address(pdu, i, sms):
    if i >= len(pdu):
        raise PduError("TP-MR missing")
    sms.mr = pdu[i]
    sms.number, i = _read_address(pdu, i + 1)
    return i


def _read_pid_dcs(pdu, i, sms):
    if i + 2 > len(pdu):
        raise PduError("TP-PID/TP-DCS missing")
    sms.pid = pdu[i]
    sms.dcs = pdu[i + 1]
    return i + 2


def decode(pdu):
    """Decode a PDU-mode PDU (SMSC block + TPDU). Raises PduError on anything malformed."""
    if not pdu:
        raise PduError("empty PDU")
    sms = Sms()
    sms.smsc, i = _read_smsc(pdu)
    if i >= len(pdu):
        raise PduError("no TPDU")
    fo = pdu[i]
    mti = fo & 3
    i += 1
    if mti == _MTI_DELIVER:
        sms.kind = "deliver"
        sms.number, i = _read_address(pdu, i)
        i = _read_pid_dcs(pdu, i, sms)
        sms.scts = _read_scts(pdu, i)
        _read_user_data(pdu, i + 7, fo, sms)
    elif mti == _MTI_SUBMIT:
        sms.kind = "submit"
        i = _read_pid_dcs(pdu, _read_mr_address(pdu, i, sms), sms)
        vpf = (fo >> 3) & 3
        i += 1 if vpf == 2 else (7 if vpf else 0)  # relative: 1 octet; enhanced/absolute: 7
        _read_user_data(pdu, i, fo, sms)
    elif mti == _MTI_STATUS:
        sms.kind = "status"
        i = _read_mr_address(pdu, i, sms)
        sms.scts = _read_scts(pdu, i)
        sms.discharge = _read_scts(pdu, i + 7)
        if i + 14 >= len(pdu):
            raise PduError("TP-ST missing")
        sms.status = pdu[i + 14]
    else:
        raise PduError("reserved TP-MTI")
    return sms
