"""Wire protocol v1: message types, field enums and the decoded messages (see docs/protocol.md).

Every uplink carries a `Report` (time, position, cell, battery) plus a few type-specific fields.
Values are the wire's units: lat/lon in 1e-7 degree, speed in cm/s, course in degrees, times in
seconds. `None` means "not known / not valid" (the matching flag on the wire is clear).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import IntEnum, StrEnum

VERSION = 1
HEADER_LEN = 10  # version|key id, type, device id u32, counter u32
TAG_LEN = 8  # truncated HMAC-SHA256: 64-bit tag
MIN_PACKET = HEADER_LEN + TAG_LEN
MAX_PACKET = 112  # so the GSM-7 text form ("UR1:" + base64) fits one 160-character SMS
MAX_COUNTER = 0xFFFF_FFFF
DOWNLINK_BIT = 0x80


class MsgType(IntEnum):
    # uplink (device -> police)
    SOS = 0x01
    POSITION = 0x02
    CANCEL = 0x03  # a duress cancel has the same type and size: the flag is encrypted
    TAP_REPLY = 0x04
    CHECK_IN = 0x05
    LOW_BATTERY = 0x06
    SELF_TEST = 0x07
    CALL_STATE = 0x08  # 1.1 silent call
    RECEIPT = 0x09  # 1.2 delivery receipts
    # downlink (police -> device)
    ACK = 0x81
    QUESTION = 0x82
    TRACKING = 0x83
    STAND_DOWN = 0x84
    CONFIG = 0x85
    LISTEN_IN = 0x86  # 1.1 silent call

    @property
    def downlink(self) -> bool:
        return bool(self & DOWNLINK_BIT)


class Reason(StrEnum):
    """Why a packet was not accepted. Values are stable strings (store them, count them)."""

    TRUNCATED = "truncated"  # shorter than the header+tag, or than its type's fields
    OVERSIZED = "oversized"  # longer than MAX_PACKET
    WRONG_VERSION = "wrong_version"
    UNKNOWN_TYPE = "unknown_type"  # includes a downlink type sent uplink and vice versa
    UNKNOWN_DEVICE = "unknown_device"  # no key for (device id, key id)
    BAD_TAG = "bad_tag"  # forged, corrupted, or the wrong key
    DUPLICATE = "duplicate"  # authentic, counter already seen (e.g. the SMS copy of a UDP packet)
    TOO_OLD = "too_old"  # authentic, counter 0 or below the reordering window
    BAD_ENCODING = "bad_encoding"  # SMS text form that is not "UR1:" + base64


class TimeSource(IntEnum):
    NONE = 0
    RTC = 1
    NETWORK = 2
    GNSS = 3


class Rat(IntEnum):
    UNKNOWN = 0
    GSM = 1
    UMTS = 2
    LTE = 3
    LTE_M = 4
    NB_IOT = 5
    NR = 6


class Trigger(IntEnum):
    HOLD = 1
    MULTI_PRESS = 2
    OTHER = 3


class PositionReason(IntEnum):
    SCHEDULED = 1
    FRESH_FIX = 2  # the first fix after an alert sent with an old/no position
    REQUESTED = 3


class AckLevel(IntEnum):
    RECEIVED = 1
    SEEN = 2  # seen by a dispatcher
    DISPATCHED = 3  # help dispatched


class QuestionKind(IntEnum):
    YES_NO = 1  # 1 press = yes, 2 presses = no
    PRESS_N = 2  # answer by 1..choices presses


class StandDownReason(IntEnum):
    RESOLVED = 1
    FALSE_ALARM = 2
    DRILL_OVER = 3
    CANCELLED = 4


class CallStatus(IntEnum):
    DIALLING = 1  # the device dials the centre, or is answering its call
    CONNECTED = 2  # the centre hears the microphone
    ENDED = 3  # after CONNECTED
    FAILED = 4  # never connected, or refused by the device


class CallReason(IntEnum):
    """Why a call ended or failed (0 with DIALLING / CONNECTED)."""

    NONE = 0
    CENTRE_HUNG_UP = 1  # the far end released the call
    BUSY = 2
    NO_ANSWER = 3  # not set up: no answer, no carrier, the centre's call never came
    TIME_LIMIT = 4  # the device hung up at the LISTEN_IN's max duration
    STOOD_DOWN = 5  # the alert ended (stand down, cancel): the device hung up
    NO_VOICE = 6  # refused: this modem has no voice path
    NO_CENTRE = 7  # refused: no centre number provisioned
    NOT_ACKNOWLEDGED = 8  # refused: no alert of this SOS counter acknowledged on the device
    MODEM_ERROR = 9  # the modem refused the dial or answer command
    BUSY_WITH_CALL = 10  # refused: a call is already in progress


class ListenMode(IntEnum):
    DIAL = 1  # the device calls the centre
    ANSWER = 2  # the device answers the centre's call (from the centre's number only), no ring


class ConfigKey(IntEnum):
    CHECK_IN_INTERVAL_S = 1
    HOLD_MS = 2
    PRESS_COUNT = 3
    PRESS_WINDOW_MS = 4
    HAPTICS_LEVEL = 5  # 0 off .. 3 strong
    SMS_FALLBACK_AFTER_S = 6
    GNSS_TIMEOUT_S = 7
    LOW_BATTERY_PCT = 8


@dataclass(frozen=True)
class Report:
    """What every uplink carries. Invalid/unknown parts are None (their flag is clear)."""

    time_s: int | None = None  # UTC, Unix seconds; None when time_source is NONE
    time_source: TimeSource = TimeSource.NONE
    fix: bool = False  # a position (current or last known) is present
    lat_e7: int | None = None  # 1e-7 degree, -900000000..900000000
    lon_e7: int | None = None  # 1e-7 degree, -1800000000..1800000000
    accuracy_m: int | None = None  # horizontal, metres, None = unknown
    fix_age_s: int | None = None  # event time - fix time, seconds (minutes above 32767 s)
    sats: int | None = None
    trusted: bool = False  # fresh, good fix (eCall "position can be trusted")
    moving: bool = False  # speed/course present
    speed_cm_s: int | None = None  # 50 cm/s steps on the wire
    course_deg: int | None = None  # 2 degree steps on the wire, 0 = north
    cell: bool = False  # serving cell present
    mcc: str | None = None  # 3 digits
    mnc: str | None = None  # 2 or 3 digits, as a string ("05" != "005")
    tac: int | None = None  # TAC (LTE) or LAC (GSM/UMTS)
    cell_id: int | None = None  # E-UTRAN 28-bit ECI, or GSM/UMTS CI
    rat: Rat = Rat.UNKNOWN
    signal_dbm: int | None = None  # RSRP (LTE) or RSSI (GSM), negative dBm
    battery_pct: int | None = None
    charging: bool = False
    drill: bool = False


@dataclass(frozen=True)
class Sos:
    report: Report
    trigger: Trigger = Trigger.HOLD


@dataclass(frozen=True)
class Position:
    report: Report
    reason: PositionReason = PositionReason.SCHEDULED


@dataclass(frozen=True)
class Cancel:
    report: Report
    duress: bool = False  # the child was forced to cancel: keep the alert live, flag it
    sos_counter: int = 0  # counter of the SOS being cancelled (0 = the current alert)


@dataclass(frozen=True)
class TapReply:
    report: Report
    question_id: int = 0
    presses: int = 0  # 0 = no answer before the timeout


@dataclass(frozen=True)
class CheckIn:
    report: Report
    fw: tuple[int, int, int] = (0, 0, 0)
    battery_mv: int = 0
    pending: int = 0  # packets waiting in the device's outbox


@dataclass(frozen=True)
class LowBattery:
    report: Report
    battery_mv: int = 0


@dataclass(frozen=True)
class SelfTest:
    report: Report
    tested: int = 0  # bitmask of checks run (see docs/protocol.md)
    failed: int = 0  # bitmask of checks failed
    fw: tuple[int, int, int] = (0, 0, 0)


@dataclass(frozen=True)
class CallState:
    report: Report
    state: CallStatus = CallStatus.DIALLING
    reason: CallReason = CallReason.NONE


@dataclass(frozen=True)
class Receipt:
    """The downlinks the device has accepted (and acted on): its replay guard's window."""

    report: Report
    highest: int = 0  # the highest downlink counter accepted (0: none yet)
    bitmap: int = 0  # bit i-1 set: counter highest-i accepted, i = 1..63

    def has(self, counter: int) -> bool:
        """Did the device accept downlink `counter`? (False below the window: not known.)"""
        d = self.highest - counter
        return counter > 0 and (d == 0 or 0 < d <= 63 and bool(self.bitmap >> (d - 1) & 1))


@dataclass(frozen=True)
class Ack:
    acked_counter: int
    level: AckLevel = AckLevel.RECEIVED


@dataclass(frozen=True)
class Question:
    question_id: int
    kind: QuestionKind = QuestionKind.YES_NO
    choices: int = 2
    timeout_s: int = 60


@dataclass(frozen=True)
class Tracking:
    fast_interval_s: int = 60
    fast_for_s: int = 600
    slow_interval_s: int = 600
    low_battery_pct: int = 20  # below this the device uses the slow interval only


@dataclass(frozen=True)
class StandDown:
    reason: StandDownReason = StandDownReason.RESOLVED
    sos_counter: int = 0


@dataclass(frozen=True)
class Config:
    items: tuple[tuple[int, int], ...] = field(default_factory=tuple)  # (ConfigKey, u32 value)


@dataclass(frozen=True)
class ListenIn:
    sos_counter: int  # the acknowledged alert the call belongs to
    mode: ListenMode = ListenMode.DIAL
    max_s: int = 600  # the device hangs up after this long connected


Uplink = (Sos | Position | Cancel | TapReply | CheckIn | LowBattery | SelfTest | CallState
          | Receipt)
Downlink = Ack | Question | Tracking | StandDown | Config | ListenIn

TYPE_OF: dict[type, MsgType] = {
    Sos: MsgType.SOS, Position: MsgType.POSITION, Cancel: MsgType.CANCEL,
    TapReply: MsgType.TAP_REPLY, CheckIn: MsgType.CHECK_IN, LowBattery: MsgType.LOW_BATTERY,
    SelfTest: MsgType.SELF_TEST, Ack: MsgType.ACK, Question: MsgType.QUESTION,
    Tracking: MsgType.TRACKING, StandDown: MsgType.STAND_DOWN, Config: MsgType.CONFIG,
    CallState: MsgType.CALL_STATE, ListenIn: MsgType.LISTEN_IN, Receipt: MsgType.RECEIPT,
}


def to_fields(msg: Uplink | Downlink) -> dict:
    """Flatten a message to the JSON field dict used by the test vectors."""
    d = asdict(msg)
    report = d.pop("report", None) or {}
    out = {"type": TYPE_OF[type(msg)].name.lower(), **report, **d}
    for k, v in out.items():
        if isinstance(v, tuple):
            out[k] = [list(x) if isinstance(x, tuple) else x for x in v]
        elif isinstance(v, IntEnum):
            out[k] = int(v)
    return out


_BY_NAME = {t.name.lower(): cls for cls, t in TYPE_OF.items()}
_REPORT_FIELDS = set(Report.__dataclass_fields__)


def from_fields(d: dict) -> Uplink | Downlink:
    """The message for a test-vector field dict (inverse of `to_fields`)."""
    d = dict(d)
    cls = _BY_NAME[d.pop("type")]
    if "report" in cls.__dataclass_fields__:
        d["report"] = Report(**{k: d.pop(k) for k in list(d) if k in _REPORT_FIELDS})
    for k in ("fw",):
        if k in d:
            d[k] = tuple(d[k])
    if "items" in d:
        d["items"] = tuple(tuple(x) for x in d["items"])
    return cls(**d)
