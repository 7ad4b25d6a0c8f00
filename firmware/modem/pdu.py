"""SMS PDU codec, pure (no machine): 3GPP TS 23.040 (TPDU layout) and TS 23.038 (alphabets).
A PDU as AT+CMGS/+CMGR/+CMT carry it in PDU mode (27.005 §3.1) = SMSC address block + TPDU."""
from array import array

from micropython import const

_MTI_DELIVER = const(0)
_MTI_SUBMIT = const(1)
_MTI_STATUS = const(2)
_ESC = const(0x1B)

DCS_GSM7 = const(0x00)
DCS_8BIT = const(0x04)  # class-less 8-bit data (23.038 §4, group 00xx, alphabet 01)
DCS_UCS2 = const(0x08)

# 23.038 §6.2.1 default alphabet: Unicode code point of each septet (0x1B: escape to the extension).
# Text is handled as code points and UTF-8 bytes, never as 1-character str: MicroPython interns
# those as qstrs at run time, and a qstr pool growing late in a fragmented heap fails.
_GSM7_CP = array("H", (
    0x40, 0xA3, 0x24, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0x0A, 0xD8, 0xF8, 0x0D, 0xC5, 0xE5,
    0x394, 0x5F, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E, 0x1B, 0xC6, 0xE6,
    0xDF, 0xC9, 0x20, 0x21, 0x22, 0x23, 0xA4, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D,
    0x2E, 0x2F, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D,
    0x3E, 0x3F, 0xA1, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D,
    0x4E, 0x4F, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0xC4, 0xD6, 0xD1,
    0xDC, 0xA7, 0xBF, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D,
    0x6E, 0x6F, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0xE4, 0xF6, 0xF1,
    0xFC, 0xE0))
# 23.038 §6.2.1.1 extension table (after ESC): septet -> code point.
_GSM7_EXT = {0x0A: 0x0C, 0x14: 0x5E, 0x28: 0x7B, 0x29: 0x7D, 0x2F: 0x5C, 0x3C: 0x5B, 0x3D: 0x7E,
             0x3E: 0x5D, 0x40: 0x7C, 0x65: 0x20AC}
_DIGITS = b"0123456789*#abc"  # semi-octet values 0..14 in an address (23.040 §9.1.2.3)


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

def codepoints(text):
    """The Unicode code points of a str, read from its UTF-8 bytes."""
    b = text.encode()
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            i += 1
        elif c < 0xE0:
            c = ((c & 0x1F) << 6) | (b[i + 1] & 0x3F)
            i += 2
        elif c < 0xF0:
            c = ((c & 0x0F) << 12) | ((b[i + 1] & 0x3F) << 6) | (b[i + 2] & 0x3F)
            i += 3
        else:
            c = ((c & 7) << 18) | ((b[i + 1] & 0x3F) << 12) | ((b[i + 2] & 0x3F) << 6) | (b[i + 3] & 0x3F)
            i += 4
        yield c


def _put_utf8(out, c):
    if c < 0x80:
        out.append(c)
    elif c < 0x800:
        out.append(0xC0 | (c >> 6))
        out.append(0x80 | (c & 0x3F))
    elif c < 0x10000:
        if 0xD800 <= c < 0xE000:
            c = 0xFFFD  # a lone surrogate: replacement character
        out.append(0xE0 | (c >> 12))
        out.append(0x80 | ((c >> 6) & 0x3F))
        out.append(0x80 | (c & 0x3F))
    else:
        out.append(0xF0 | (c >> 18))
        out.append(0x80 | ((c >> 12) & 0x3F))
        out.append(0x80 | ((c >> 6) & 0x3F))
        out.append(0x80 | (c & 0x3F))


def _septet(c):
    """Septet of code point c (0x100 | septet from the extension table), -1 if none."""
    if c < 0x80 and _GSM7_CP[c] == c and c != _ESC:
        return c  # most of ASCII sits at its own value
    for i in range(128):
        if _GSM7_CP[i] == c and i != _ESC:
            return i
    for k, v in _GSM7_EXT.items():
        if v == c:
            return 0x100 | k
    return -1


def gsm7_septets(text):
    """Septets encoding `text` in the default alphabet (+ extension), or None if not encodable."""
    out = bytearray()
    for c in codepoints(text):
        v = _septet(c)
        if v < 0:
            return None
        if v & 0x100:
            out.append(_ESC)
        out.append(v & 0x7F)
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
    out = bytearray()
    esc = False
    for v in septets:
        if esc:
            _put_utf8(out, _GSM7_EXT.get(v, _GSM7_CP[v] if v != _ESC else 0x20))
            esc = False
        elif v == _ESC:
            esc = True
        else:
            _put_utf8(out, _GSM7_CP[v])
    return bytes(out).decode()


def _ucs2(text):
    out = bytearray()
    for c in codepoints(text):
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
    out = bytearray()
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
        _put_utf8(out, c)
    return bytes(out).decode()


# ---------------------------------------------------------------- addresses

def _nibble(c):
    """Semi-octet value of an address character (a byte), -1 if it is not one."""
    if 48 <= c <= 57:
        return c - 48
    if c == 42:  # *
        return 10
    if c == 35:  # #
        return 11
    if 97 <= c <= 99:  # a b c
        return c - 85
    return -1


def _put_address(out, number, smsc):
    if not number:
        out.extend(b"\x00" if smsc else b"\x00\x81")
        return
    digits = number.encode()
    toa = 0x81
    start = 0
    if digits[0] == 43:  # '+'
        toa = 0x91
        start = 1
    nd = len(digits) - start
    out.append((nd + 1) // 2 + 1 if smsc else nd)
    out.append(toa)
    for i in range(start, len(digits), 2):
        lo = _nibble(digits[i])
        hi = _nibble(digits[i + 1]) if i + 1 < len(digits) else 15
        if lo < 0 or hi < 0:
            raise PduError("bad digit in address")
        out.append((hi << 4) | lo)


def _decode_digits(raw, ndigits):
    out = bytearray()
    for b in raw:
        for nib in (b & 0x0F, b >> 4):
            if len(out) >= ndigits or nib == 15:
                break
            out.append(_DIGITS[nib])
    return bytes(out).decode()


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
    out = bytearray()
    _put_address(out, smsc, True)
    out.append(fo)
    out.append(mr & 0xFF)
    _put_address(out, number, False)
    out.append(0)  # TP-PID: plain SME-to-SME
    out.append(dcs)
    if vp is not None:
        out.append(vp)
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
