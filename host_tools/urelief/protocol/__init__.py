"""U-Relief wire protocol v1, server side (spec: docs/protocol.md). Stable API for the server.

Receiving (UDP payload, or an SMS's binary user data or text)::

    from urelief import protocol as p
    res = p.decode_uplink(datagram, keystore, replay)          # bytes from UDP / 8-bit SMS
    res = p.decode_sms(payload, keystore, replay)              # bytes or str, either SMS form
    if res.ok:                                                 # p.Accepted
        res.device_id, res.key_id, res.counter, res.type       # p.MsgType.SOS, ...
        res.message                                            # p.Sos(report=p.Report(...), trigger)
        res.warnings                                           # fields dropped as invalid
    else:                                                      # p.Rejected
        res.reason                                             # p.Reason (a str enum: "bad_tag", ...)
        if res.authentic:                                      # DUPLICATE / TOO_OLD: genuine copy
            ...                                                # re-send its ack, do not act again

`decode_uplink` never raises for any input. Order of checks: truncated/oversized, wrong_version,
unknown_type, truncated (for its type), unknown_device, bad_tag, duplicate/too_old.

Server state it needs (implement both over the DB; in-memory versions are provided):
- `keystore.key_for(device_id, key_id) -> bytes | None`: the device's 32-byte secret.
- `replay.check(device_id, counter) -> Reason | None` and `replay.commit(device_id, counter)`.
  `WindowState(highest, bitmap)` holds the logic (`check`, `mark`) and serialises as two
  integers (bitmap < 2**63 fits a signed BIGINT). Pass `commit=False` to `decode_uplink` and call
  `replay.commit` in the transaction that stores the message, so a crash between the two cannot
  turn the device's retry into a "duplicate" of something never stored.

Sending::

    pkt = p.encode_downlink(p.Ack(acked_counter=c, level=p.AckLevel.SEEN),
                            device_id=d, key_id=k, secret=s, counter=downlink_counter)
    sms_text = p.to_text(pkt)                                  # GSM-7-safe "UR1:..." form

`counter` is the server's per-device downlink counter (1.., persisted, never reused per key).
`encode_uplink` and `decode_downlink` mirror them for tests, simulators and load generators.
"""

from __future__ import annotations

from urelief.protocol.messages import (
    MAX_PACKET,
    TAG_LEN,
    Ack,
    AckLevel,
    CallReason,
    CallState,
    CallStatus,
    Cancel,
    CheckIn,
    Config,
    ConfigKey,
    Downlink,
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
    Uplink,
)
from urelief.protocol.packet import (
    Accepted,
    EncodeError,
    Rejected,
    decode_downlink,
    decode_uplink,
    encode_downlink,
    encode_uplink,
)
from urelief.protocol.replay import (
    KeyStore,
    MemoryKeyStore,
    MemoryReplayWindow,
    ReplayWindow,
    WindowState,
)
from urelief.protocol.sms import SmsFormatError, from_text, is_text_form, to_text


def decode_sms(payload: bytes | str, keystore: KeyStore, replay: ReplayWindow, *,
               commit: bool = True) -> Accepted | Rejected:
    """An SMS's user data in either form: 8-bit binary (the packet) or "UR1:" text."""
    if isinstance(payload, str) or is_text_form(payload):
        try:
            text = payload if isinstance(payload, str) else payload.decode("ascii")
            packet = from_text(text)
        except (SmsFormatError, UnicodeDecodeError) as e:
            return Rejected(Reason.BAD_ENCODING, str(e))
        return decode_uplink(packet, keystore, replay, commit=commit)
    return decode_uplink(payload, keystore, replay, commit=commit)


__all__ = [
    "MAX_PACKET", "TAG_LEN", "Accepted", "Ack", "AckLevel", "CallReason", "CallState",
    "CallStatus", "Cancel", "CheckIn", "Config",
    "ConfigKey", "Downlink", "EncodeError", "KeyStore", "ListenIn", "ListenMode", "LowBattery", "MemoryKeyStore",
    "MemoryReplayWindow", "MsgType", "Position", "PositionReason", "Question", "QuestionKind",
    "Rat", "Reason", "Receipt", "Rejected", "ReplayWindow", "Report", "SelfTest", "SmsFormatError", "Sos",
    "StandDown", "StandDownReason", "TapReply", "TimeSource", "Tracking", "Trigger", "Uplink",
    "WindowState", "decode_downlink", "decode_sms", "decode_uplink", "encode_downlink",
    "encode_uplink", "from_text", "is_text_form", "to_text",
]
