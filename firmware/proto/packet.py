"""Protocol v1 packets on the device (docs/protocol.md): encode uplinks, open downlinks.
packet = header(10) | AES-128-CTR(body) | HMAC-SHA256(header | ciphertext)[:8]
Uplinks are built in one preallocated buffer; the returned memoryview is valid until the
next encode (copy it with bytes() to keep it, e.g. in the outbox)."""
import binascii
import struct

from micropython import const

from proto import ProtoError
from proto.seal import DOWNLINK, TAG_LEN, UPLINK

VERSION = const(1)
HEADER_LEN = const(10)
MAX_PACKET = const(112)  # the "UR1:" + base64 text form of 112 bytes is 154 GSM-7 chars
MIN_PACKET = const(18)  # header + tag
MAX_COUNTER = 0xFFFFFFFF
_HEADER = ">BBII"  # version<<4 | key id, type, device id, counter
_REPORT = ">BIiiHHBBBB3sHIBB"  # 32 bytes at offset 10, see Report
_TAIL = const(42)  # HEADER_LEN + 32: type-specific fields start here

# uplink types
SOS = const(0x01)
POSITION = const(0x02)
CANCEL = const(0x03)  # duress cancel: same type and size, flag inside the ciphertext
TAP_REPLY = const(0x04)
CHECK_IN = const(0x05)
LOW_BATTERY = const(0x06)
SELF_TEST = const(0x07)
CALL_STATE = const(0x08)  # 1.1 silent call
RECEIPT = const(0x09)  # 1.2 delivery receipts
# downlink types
ACK = const(0x81)
QUESTION = const(0x82)
TRACKING = const(0x83)
STAND_DOWN = const(0x84)
CONFIG = const(0x85)
LISTEN_IN = const(0x86)  # 1.1 silent call
_DOWN_SIZE = {ACK: 5, QUESTION: 5, TRACKING: 7, STAND_DOWN: 5, CONFIG: 1, LISTEN_IN: 7}  # min body
MAX_CONFIG_ITEMS = const(16)

# report flag bits (byte 0 of the report); bits 7..6 = time source
_F_FIX = const(0x01)
_F_TRUSTED = const(0x02)
_F_MOVING = const(0x04)
_F_CELL = const(0x08)
_F_DRILL = const(0x10)
_F_CHARGING = const(0x20)
TIME_NONE = const(0)
TIME_RTC = const(1)
TIME_NETWORK = const(2)
TIME_GNSS = const(3)
_LAT_MAX = const(900000000)  # 1e-7 degree
_LON_MAX = 1800000000

TEXT_PREFIX = "UR1:"
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


class Report:
    """What every uplink carries: ints (no floats), None = unknown; units as named, see
    docs/protocol.md section 2. The encoder saturates out-of-range values, never raises."""
    def __init__(self):
        self.time_s = None  # UTC Unix seconds
        self.time_source = TIME_NONE
        self.fix = False  # a current or last-known position is present
        self.lat_e7 = None  # 1e-7 degree
        self.lon_e7 = None
        self.accuracy_m = None
        self.fix_age_s = None  # event time - fix time
        self.sats = None
        self.trusted = False
        self.moving = False
        self.speed_cm_s = None
        self.course_deg = None
        self.cell = False
        self.mcc = None  # "450"
        self.mnc = None  # "05" or "005"
        self.tac = None  # TAC or LAC
        self.cell_id = None
        self.rat = 0  # 0 unknown 1 GSM 2 UMTS 3 LTE 4 LTE-M 5 NB-IoT 6 NR
        self.signal_dbm = None  # negative
        self.battery_pct = None
        self.charging = False
        self.drill = False


def _clamp(v, lo, hi):
    return lo if v < lo else hi if v > hi else v


def _digits(s, d, at):
    for i in range(len(s)):
        c = ord(s[i]) - 48
        if c < 0 or c > 9:
            return False
        d[at + i] = c
    return True


def _plmn(mcc, mnc, d, out):
    """BCD PLMN, 3GPP TS 24.008 10.5.1.3 (MNC digit 3 = F when 2 digits), into `out` using the
    scratch `d` (6 bytes); False if mcc/mnc are not 3 and 2-3 digits."""
    if not mcc or not mnc or len(mcc) != 3 or len(mnc) not in (2, 3):
        return False
    d[5] = 15
    if not (_digits(mcc, d, 0) and _digits(mnc, d, 3)):
        return False
    out[0] = d[1] << 4 | d[0]
    out[1] = d[5] << 4 | d[2]
    out[2] = d[4] << 4 | d[3]
    return True


def _age(age_s):
    """seconds below 32768, else bit 15 + minutes (rounded down, max 32766); 0xFFFF = unknown"""
    if age_s is None:
        return 0xFFFF
    if age_s < 0x8000:
        return age_s if age_s > 0 else 0
    m = age_s // 60
    return 0x8000 | (m if m < 0x7FFE else 0x7FFE)


class Codec:
    """Encodes this device's uplinks and opens its downlinks. One instance per device key."""
    def __init__(self, seal):
        self.seal = seal
        self.buf = bytearray(MAX_PACKET)  # uplink being built
        self._rx = bytearray(MAX_PACKET)  # downlink being opened
        self._plmn = bytearray(3)
        self._digits = bytearray(6)

    def _report(self, mtype, counter, r):
        if counter < 1 or counter > MAX_COUNTER:
            raise ProtoError("counter", "counter out of range")
        b = self.buf
        s = self.seal
        struct.pack_into(_HEADER, b, 0, VERSION << 4 | s.key_id, mtype, s.device_id, counter)
        flags = 0
        t = 0
        src = (r.time_source or 0) & 3
        if src and r.time_s is not None:
            t = _clamp(r.time_s, 0, 0xFFFFFFFF)
            flags = src << 6
        lat = lon = acc = age = sats = 0
        if r.fix and r.lat_e7 is not None and r.lon_e7 is not None:
            flags |= _F_FIX
            if r.trusted:
                flags |= _F_TRUSTED
            lat = _clamp(r.lat_e7, -_LAT_MAX, _LAT_MAX)
            lon = _clamp(r.lon_e7, -_LON_MAX, _LON_MAX)
            acc = 0xFFFF if r.accuracy_m is None else _clamp(r.accuracy_m, 0, 0xFFFE)
            age = _age(r.fix_age_s)
            sats = 0xFF if r.sats is None else _clamp(r.sats, 0, 0xFE)
        speed = course = 0
        if r.moving and r.speed_cm_s is not None and r.course_deg is not None:
            flags |= _F_MOVING
            speed = _clamp(r.speed_cm_s // 50, 0, 0xFE)  # 0.5 m/s steps
            course = (r.course_deg % 360) // 2  # 2 degree steps
        p = self._plmn
        tac = cid = rat = sig = 0
        if r.cell and _plmn(r.mcc, r.mnc, self._digits, p):
            flags |= _F_CELL
            tac = _clamp(r.tac or 0, 0, 0xFFFF)
            cid = _clamp(r.cell_id or 0, 0, 0xFFFFFFFF)
            rat = _clamp(r.rat or 0, 0, 0xFF)
            sig = 0 if r.signal_dbm is None else _clamp(-r.signal_dbm, 1, 0xFF)
        else:
            p[0] = p[1] = p[2] = 0
        batt = 0xFF if r.battery_pct is None else _clamp(r.battery_pct, 0, 100)
        if r.charging:
            flags |= _F_CHARGING
        if r.drill:
            flags |= _F_DRILL
        struct.pack_into(_REPORT, b, HEADER_LEN, flags, t, lat, lon, acc, age, sats, speed,
                         course, batt, p, tac, cid, rat, sig)

    def _seal(self, end, counter):
        s = self.seal
        b = self.buf
        s.crypt(b, HEADER_LEN, end, UPLINK, counter)
        b[end:end + TAG_LEN] = s.tag(b, end)
        return memoryview(b)[:end + TAG_LEN]

    def sos(self, counter, report, trigger):
        """trigger: 1 hold, 2 multi-press, 3 other"""
        self._report(SOS, counter, report)
        self.buf[_TAIL] = trigger
        return self._seal(_TAIL + 1, counter)

    def position(self, counter, report, reason):
        """reason: 1 scheduled, 2 fresh fix after an alert, 3 requested"""
        self._report(POSITION, counter, report)
        self.buf[_TAIL] = reason
        return self._seal(_TAIL + 1, counter)

    def cancel(self, counter, report, duress, sos_counter):
        """A duress cancel differs from a cancel only inside the ciphertext."""
        self._report(CANCEL, counter, report)
        struct.pack_into(">BI", self.buf, _TAIL, 1 if duress else 0, sos_counter)
        return self._seal(_TAIL + 5, counter)

    def tap_reply(self, counter, report, question_id, presses):
        """presses: 0 = no answer before the question's timeout"""
        self._report(TAP_REPLY, counter, report)
        struct.pack_into(">BB", self.buf, _TAIL, question_id, presses)
        return self._seal(_TAIL + 2, counter)

    def check_in(self, counter, report, fw, battery_mv, pending):
        self._report(CHECK_IN, counter, report)
        struct.pack_into(">BBBHB", self.buf, _TAIL, fw[0], fw[1], fw[2], battery_mv, pending)
        return self._seal(_TAIL + 6, counter)

    def low_battery(self, counter, report, battery_mv):
        self._report(LOW_BATTERY, counter, report)
        struct.pack_into(">H", self.buf, _TAIL, battery_mv)
        return self._seal(_TAIL + 2, counter)

    def self_test(self, counter, report, tested, failed, fw):
        self._report(SELF_TEST, counter, report)
        struct.pack_into(">HHBBB", self.buf, _TAIL, tested, failed, fw[0], fw[1], fw[2])
        return self._seal(_TAIL + 7, counter)

    def call_state(self, counter, report, state, reason):
        """state: 1 dialling 2 connected 3 ended 4 failed; reason: docs/protocol.md section 3"""
        self._report(CALL_STATE, counter, report)
        struct.pack_into(">BB", self.buf, _TAIL, state, reason)
        return self._seal(_TAIL + 2, counter)

    def receipt(self, counter, report, highest, bitmap):
        """The downlinks this device has accepted: its ReplayGuard's highest and 63-bit bitmap"""
        self._report(RECEIPT, counter, report)
        struct.pack_into(">III", self.buf, _TAIL, highest, (bitmap >> 32) & 0x7FFFFFFF,
                         bitmap & 0xFFFFFFFF)
        return self._seal(_TAIL + 12, counter)

    def open(self, packet, guard=None):
        """Verify and decrypt a downlink; returns a Downlink or raises ProtoError(reason).
        With a ReplayGuard, duplicates and stale counters are refused and the counter is
        recorded once the packet is accepted."""
        n = len(packet)
        if n < MIN_PACKET:
            raise ProtoError("truncated")
        if n > MAX_PACKET:
            raise ProtoError("oversized")
        b = self._rx
        b[:n] = packet
        v, mtype, dev, counter = struct.unpack_from(_HEADER, b, 0)
        if v >> 4 != VERSION:
            raise ProtoError("wrong_version")
        need = _DOWN_SIZE.get(mtype)
        if need is None:
            raise ProtoError("unknown_type")
        end = n - TAG_LEN
        if end - HEADER_LEN < need:
            raise ProtoError("truncated")
        s = self.seal
        if dev != s.device_id or v & 0x0F != s.key_id:
            raise ProtoError("unknown_device")
        if not s.tag_ok(b, end):
            raise ProtoError("bad_tag")
        s.crypt(b, HEADER_LEN, end, DOWNLINK, counter)
        d = _decode(mtype, counter, b, end)
        if counter == 0:
            raise ProtoError("too_old")  # never sent: counters start at 1
        if guard is not None:
            guard.check(counter)
            guard.accept(counter)
        return d


class Downlink:
    """A verified downlink: .type, .counter and the fields of its type (others stay None)."""
    def __init__(self, mtype, counter):
        self.type = mtype
        self.counter = counter
        self.acked_counter = self.level = None  # ACK: level 1 received 2 seen 3 dispatched
        self.question_id = self.kind = self.choices = self.timeout_s = None  # QUESTION
        self.fast_interval_s = self.fast_for_s = self.slow_interval_s = None  # TRACKING
        self.low_battery_pct = None
        self.reason = self.sos_counter = None  # STAND_DOWN (and LISTEN_IN's sos_counter)
        self.items = None  # CONFIG: [(key, value), ...]
        self.mode = self.max_s = None  # LISTEN_IN: 1 dial 2 answer; hang up after max_s


def _decode(mtype, counter, b, end):
    d = Downlink(mtype, counter)
    o = HEADER_LEN
    if mtype == ACK:
        d.acked_counter, d.level = struct.unpack_from(">IB", b, o)
    elif mtype == QUESTION:
        d.question_id, d.kind, d.choices, d.timeout_s = struct.unpack_from(">BBBH", b, o)
    elif mtype == TRACKING:
        d.fast_interval_s, d.fast_for_s, d.slow_interval_s, d.low_battery_pct = \
            struct.unpack_from(">HHHB", b, o)
    elif mtype == STAND_DOWN:
        d.reason, d.sos_counter = struct.unpack_from(">BI", b, o)
    elif mtype == LISTEN_IN:
        d.sos_counter, d.mode, d.max_s = struct.unpack_from(">IBH", b, o)
    else:  # CONFIG: count, then (key u8, value u32) items
        k = b[o]
        if k > MAX_CONFIG_ITEMS:
            raise ProtoError("oversized")
        if end - o < 1 + 5 * k:
            raise ProtoError("truncated")
        d.items = [struct.unpack_from(">BI", b, o + 1 + 5 * i) for i in range(k)]
    return d


def from_text(text):
    """Packet bytes from the SMS text form; ProtoError("bad_encoding") if it is not one."""
    s = "".join(text.split())  # gateways may fold long texts: white space is ignored
    if not s.startswith(TEXT_PREFIX):
        raise ProtoError("bad_encoding", "no UR1: prefix")
    s = s[len(TEXT_PREFIX):]
    if len(s) % 4 == 1 or len(s) > 152:
        raise ProtoError("bad_encoding", "bad length")
    for c in s.encode():
        if c not in _B64:
            raise ProtoError("bad_encoding", "not base64")
    try:
        return binascii.a2b_base64(s + "=" * (-len(s) % 4))
    except ValueError:
        raise ProtoError("bad_encoding", "not base64")
