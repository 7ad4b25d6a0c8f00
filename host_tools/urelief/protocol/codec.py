"""Plaintext layouts of protocol v1: header, the 32-byte report block and each type's tail.

No crypto here: `packet.py` seals and opens. Encoding saturates out-of-range values (an alert is
never refused for a bad field); decoding turns invalid parts into None and says why in warnings.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from urelief.protocol.messages import (
    HEADER_LEN,
    VERSION,
    Ack,
    AckLevel,
    CallReason,
    CallState,
    CallStatus,
    Cancel,
    CheckIn,
    Config,
    ListenIn,
    ListenMode,
    LowBattery,
    MsgType,
    Position,
    PositionReason,
    Question,
    QuestionKind,
    Rat,
    Reason,
    Receipt,
    Report,
    SelfTest,
    Sos,
    StandDown,
    StandDownReason,
    TapReply,
    TimeSource,
    Tracking,
    Trigger,
)

HEADER = struct.Struct(">BBII")  # version<<4 | key id, type, device id, counter
# flags, time, lat, lon, accuracy, fix age, sats, speed, course, battery, PLMN, TAC, cell id, RAT, signal
REPORT = struct.Struct(">BIiiHHBBBB3sHIBB")
assert HEADER.size == HEADER_LEN and REPORT.size == 32

# report flags
F_FIX, F_TRUSTED, F_MOVING, F_CELL, F_DRILL, F_CHARGING = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
TIME_SHIFT = 6  # bits 7..6: TimeSource

LAT_MAX, LON_MAX = 900_000_000, 1_800_000_000
U16_UNKNOWN = 0xFFFF
AGE_MINUTES = 0x8000  # fix age: bit 15 set -> the low 15 bits count minutes
SPEED_STEP_CM_S, COURSE_STEP_DEG = 50, 2
MAX_CONFIG_ITEMS = 16
CANCEL_DURESS = 0x01


def _clamp(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else hi if v > hi else v


def encode_age(age_s: int | None) -> int:
    if age_s is None:
        return U16_UNKNOWN
    if age_s < AGE_MINUTES:
        return max(age_s, 0)
    return AGE_MINUTES | min(age_s // 60, 0x7FFE)


def decode_age(raw: int) -> int | None:
    if raw == U16_UNKNOWN:
        return None
    return (raw & 0x7FFF) * 60 if raw & AGE_MINUTES else raw


def encode_plmn(mcc: str | None, mnc: str | None) -> bytes | None:
    """3GPP TS 24.008 §10.5.1.3 order: MCC2|MCC1, MNC3|MCC3, MNC2|MNC1 (MNC3 = F if 2 digits)."""
    if not (mcc and mnc and len(mcc) == 3 and len(mnc) in (2, 3)
            and (mcc + mnc).isascii() and (mcc + mnc).isdigit()):
        return None
    d = [int(c) for c in mcc + mnc]
    m3 = d[5] if len(mnc) == 3 else 0xF
    return bytes(((d[1] << 4) | d[0], (m3 << 4) | d[2], (d[4] << 4) | d[3]))


def decode_plmn(b: bytes) -> tuple[str, str] | None:
    h = b.hex()  # nibbles: MCC2 MCC1 MNC3 MCC3 MNC2 MNC1
    mcc, mnc = h[1] + h[0] + h[3], h[5] + h[4]
    if h[2] != "f":
        mnc += h[2]
    return (mcc, mnc) if (mcc + mnc).isdigit() else None


def encode_report(r: Report) -> bytes:
    flags = 0
    t = 0
    src = int(r.time_source or 0) & 3
    if src and r.time_s is not None:
        t = _clamp(r.time_s, 0, 0xFFFF_FFFF)
        flags |= src << TIME_SHIFT
    lat = lon = sats = 0
    acc = age = 0
    if r.fix and r.lat_e7 is not None and r.lon_e7 is not None:
        flags |= F_FIX | (F_TRUSTED if r.trusted else 0)
        lat = _clamp(r.lat_e7, -LAT_MAX, LAT_MAX)
        lon = _clamp(r.lon_e7, -LON_MAX, LON_MAX)
        acc = U16_UNKNOWN if r.accuracy_m is None else _clamp(r.accuracy_m, 0, 0xFFFE)
        age = encode_age(r.fix_age_s)
        sats = 0xFF if r.sats is None else _clamp(r.sats, 0, 0xFE)
    speed = course = 0
    if r.moving and r.speed_cm_s is not None and r.course_deg is not None:
        flags |= F_MOVING
        speed = _clamp(r.speed_cm_s // SPEED_STEP_CM_S, 0, 0xFE)
        course = (r.course_deg % 360) // COURSE_STEP_DEG
    plmn, tac, cid, rat, sig = b"\0\0\0", 0, 0, 0, 0
    p = encode_plmn(r.mcc, r.mnc) if r.cell else None
    if p is not None:
        flags |= F_CELL
        plmn = p
        tac = _clamp(r.tac or 0, 0, 0xFFFF)
        cid = _clamp(r.cell_id or 0, 0, 0xFFFF_FFFF)
        rat = _clamp(int(r.rat or 0), 0, 0xFF)
        sig = 0 if r.signal_dbm is None else _clamp(-r.signal_dbm, 1, 0xFF)
    batt = 0xFF if r.battery_pct is None else _clamp(r.battery_pct, 0, 100)
    flags |= (F_CHARGING if r.charging else 0) | (F_DRILL if r.drill else 0)
    return REPORT.pack(flags, t, lat, lon, acc, age, sats, speed, course, batt, plmn, tac, cid,
                       rat, sig)


def _enum(kind, v: int):
    """The enum member for v, or v itself if this version does not know it."""
    return kind._value2member_map_.get(v, v)


def decode_report(b: bytes, warnings: list[str]) -> Report:
    (flags, t, lat, lon, acc, age, sats, speed, course, batt, plmn, tac, cid, rat,
     sig) = REPORT.unpack_from(b)
    src = _enum(TimeSource, flags >> TIME_SHIFT)
    fix = bool(flags & F_FIX)
    if fix and (abs(lat) > LAT_MAX or abs(lon) > LON_MAX):
        warnings.append(f"position out of range ({lat}, {lon}): dropped")
        fix = False
    moving = bool(flags & F_MOVING)
    if moving and course * COURSE_STEP_DEG >= 360:
        warnings.append(f"course {course * COURSE_STEP_DEG} out of range: dropped")
        moving = False
    cell = None
    if flags & F_CELL:
        cell = decode_plmn(plmn)
        if cell is None:
            warnings.append(f"PLMN {plmn.hex()} is not BCD: cell dropped")
    return Report(
        time_s=t if src != TimeSource.NONE else None,
        time_source=src,
        fix=fix,
        lat_e7=lat if fix else None,
        lon_e7=lon if fix else None,
        accuracy_m=(None if acc == U16_UNKNOWN else acc) if fix else None,
        fix_age_s=decode_age(age) if fix else None,
        sats=(None if sats == 0xFF else sats) if fix else None,
        trusted=fix and bool(flags & F_TRUSTED),
        moving=moving,
        speed_cm_s=speed * SPEED_STEP_CM_S if moving else None,
        course_deg=course * COURSE_STEP_DEG if moving else None,
        cell=cell is not None,
        mcc=cell[0] if cell else None,
        mnc=cell[1] if cell else None,
        tac=tac if cell else None,
        cell_id=cid if cell else None,
        rat=_enum(Rat, rat) if cell else Rat.UNKNOWN,
        signal_dbm=(-sig if sig else None) if cell else None,
        battery_pct=None if batt > 100 else batt,
        charging=bool(flags & F_CHARGING),
        drill=bool(flags & F_DRILL),
    )


@dataclass(frozen=True)
class Layout:
    """One message type: its minimum body size and its body codec."""

    size: int
    encode: Callable
    decode: Callable  # (body, warnings) -> message or Reason; body has >= `size` bytes


def _u(fmt: str) -> struct.Struct:
    return struct.Struct(">" + fmt)


_R = REPORT.size
_B, _BI, _BB, _H = _u("B"), _u("BI"), _u("BB"), _u("H")
_CHECK_IN, _SELF_TEST = _u("BBBHB"), _u("HHBBB")
_ACK, _QUESTION, _TRACKING, _ITEM = _u("IB"), _u("BBBH"), _u("HHHB"), _u("BI")
_LISTEN_IN = _u("IBH")
_RECEIPT = _u("IQ")
_WINDOW_BITS = (1 << 63) - 1  # a receipt's bitmap: 63 counters below the highest


def _with_report(tail: struct.Struct, pack, unpack) -> Layout:
    def enc(m) -> bytes:
        return encode_report(m.report) + tail.pack(*pack(m))

    def dec(b: bytes, w: list[str]):
        return unpack(decode_report(b, w), tail.unpack_from(b, _R))

    return Layout(_R + tail.size, enc, dec)


def _fw(v) -> tuple[int, int, int]:
    return (v[0], v[1], v[2])


def _encode_config(m: Config) -> bytes:
    items = m.items[:MAX_CONFIG_ITEMS]
    return bytes([len(items)]) + b"".join(_ITEM.pack(k, _clamp(v, 0, 0xFFFF_FFFF))
                                         for k, v in items)


def _decode_config(b: bytes, w: list[str]) -> Config | Reason:
    n = b[0]
    if n > MAX_CONFIG_ITEMS:
        return Reason.OVERSIZED
    if len(b) < 1 + n * _ITEM.size:
        return Reason.TRUNCATED
    return Config(tuple(_ITEM.unpack_from(b, 1 + i * _ITEM.size) for i in range(n)))


def _plain(tail: struct.Struct, pack, unpack) -> Layout:
    return Layout(tail.size, lambda m: tail.pack(*pack(m)),
                  lambda b, w: unpack(tail.unpack_from(b)))


LAYOUTS: dict[MsgType, Layout] = {
    MsgType.SOS: _with_report(_B, lambda m: (m.trigger,),
                              lambda r, t: Sos(r, _enum(Trigger, t[0]))),
    MsgType.POSITION: _with_report(_B, lambda m: (m.reason,),
                                   lambda r, t: Position(r, _enum(PositionReason, t[0]))),
    MsgType.CANCEL: _with_report(
        _BI, lambda m: (CANCEL_DURESS if m.duress else 0, m.sos_counter),
        lambda r, t: Cancel(r, bool(t[0] & CANCEL_DURESS), t[1])),
    MsgType.TAP_REPLY: _with_report(_BB, lambda m: (m.question_id, m.presses),
                                    lambda r, t: TapReply(r, t[0], t[1])),
    MsgType.CHECK_IN: _with_report(
        _CHECK_IN, lambda m: (*_fw(m.fw), m.battery_mv, m.pending),
        lambda r, t: CheckIn(r, _fw(t), t[3], t[4])),
    MsgType.LOW_BATTERY: _with_report(_H, lambda m: (m.battery_mv,),
                                      lambda r, t: LowBattery(r, t[0])),
    MsgType.SELF_TEST: _with_report(
        _SELF_TEST, lambda m: (m.tested, m.failed, *_fw(m.fw)),
        lambda r, t: SelfTest(r, t[0], t[1], _fw(t[2:]))),
    MsgType.ACK: _plain(_ACK, lambda m: (m.acked_counter, m.level),
                        lambda t: Ack(t[0], _enum(AckLevel, t[1]))),
    MsgType.QUESTION: _plain(
        _QUESTION, lambda m: (m.question_id, m.kind, m.choices, m.timeout_s),
        lambda t: Question(t[0], _enum(QuestionKind, t[1]), t[2], t[3])),
    MsgType.TRACKING: _plain(
        _TRACKING, lambda m: (m.fast_interval_s, m.fast_for_s, m.slow_interval_s,
                              m.low_battery_pct),
        lambda t: Tracking(*t)),
    MsgType.STAND_DOWN: _plain(_BI, lambda m: (m.reason, m.sos_counter),
                               lambda t: StandDown(_enum(StandDownReason, t[0]), t[1])),
    MsgType.CONFIG: Layout(1, _encode_config, _decode_config),
    MsgType.CALL_STATE: _with_report(
        _BB, lambda m: (m.state, m.reason),
        lambda r, t: CallState(r, _enum(CallStatus, t[0]), _enum(CallReason, t[1]))),
    MsgType.RECEIPT: _with_report(
        _RECEIPT, lambda m: (_clamp(m.highest, 0, 0xFFFF_FFFF), m.bitmap & _WINDOW_BITS),
        lambda r, t: Receipt(r, t[0], t[1] & _WINDOW_BITS)),
    MsgType.LISTEN_IN: _plain(
        _LISTEN_IN, lambda m: (m.sos_counter, m.mode, _clamp(m.max_s, 0, 0xFFFF)),
        lambda t: ListenIn(t[0], _enum(ListenMode, t[1]), t[2])),
}


def header_byte(key_id: int) -> int:
    if not 0 <= key_id <= 15:
        raise ValueError(f"key id {key_id} not in 0..15")
    return VERSION << 4 | key_id
LAYOUT_TYPES: dict[int, MsgType] = {int(t): t for t in LAYOUTS}
