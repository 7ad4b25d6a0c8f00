"""Generate tests/vectors/protocol_v1.json: the vectors both implementations must pass.

    python -m urelief.protocol.vectors          # rewrite the file
    python -m urelief.protocol.vectors --check  # exit 1 if the committed file differs

Each vector gives the encoder's input `fields`, the `packet` (hex) and its SMS `text`, and the
`decoded` fields when decoding does not give back the input exactly (saturation, quantisation).
Keys are fixed test keys: they never ship in a device.
"""

from __future__ import annotations

import hashlib
import json
import sys

from urelief.paths import TESTS
from urelief.protocol import codec, seal
from urelief.protocol.messages import (
    HEADER_LEN,
    MAX_PACKET,
    TAG_LEN,
    from_fields,
    to_fields,
)
from urelief.protocol.packet import Accepted, decode_downlink, encode_downlink, encode_uplink
from urelief.protocol.replay import MemoryReplayWindow
from urelief.protocol.sms import to_text

PATH = TESTS / "vectors" / "protocol_v1.json"
SECRET = hashlib.sha256(b"U-Relief test device 1").digest()  # test key, not a real device's
SECRET2 = hashlib.sha256(b"U-Relief test device 2").digest()
DEV, KEY = 0x0000_2A17, 1
DEV2, KEY2 = 0xFFFF_FFFF, 15

SEOUL = dict(time_s=1_763_900_000, time_source=3, fix=True, lat_e7=375_665_350,
             lon_e7=1_269_779_690, accuracy_m=6, fix_age_s=1, sats=11, trusted=True,
             moving=True, speed_cm_s=150, course_deg=84, cell=True, mcc="450", mnc="05",
             tac=0x2B1C, cell_id=0x01A2_B3C4, rat=4, signal_dbm=-97, battery_pct=86,
             charging=False, drill=False)
NOTHING = dict(time_s=None, time_source=0, fix=False, lat_e7=None, lon_e7=None, accuracy_m=None,
               fix_age_s=None, sats=None, trusted=False, moving=False, speed_cm_s=None,
               course_deg=None, cell=False, mcc=None, mnc=None, tac=None, cell_id=None, rat=0,
               signal_dbm=None, battery_pct=None, charging=False, drill=False)
STILL = dict(moving=False, speed_cm_s=None, course_deg=None)
NO_FIX = dict(fix=False, lat_e7=None, lon_e7=None, accuracy_m=None, fix_age_s=None, sats=None,
              trusted=False, **STILL)


def _r(**kw) -> dict:
    return {**SEOUL, **kw}


# (name, counter, fields, decoded-overrides or None, device, key id, secret)
UPLINKS = [
    ("sos_full", 7, {"type": "sos", **_r(), "trigger": 1}, None),
    ("sos_drill_multi_press", 8, {"type": "sos", **_r(drill=True), "trigger": 2}, None),
    ("sos_no_fix_cell_only", 9, {"type": "sos", **_r(**NO_FIX, time_source=2), "trigger": 1}, None),
    ("sos_last_known_fix_3_days_old", 10,
     {"type": "sos", **_r(trusted=False, fix_age_s=3 * 86400 + 59, accuracy_m=35, **STILL,
                          time_source=1), "trigger": 1},
     {"fix_age_s": 3 * 86400}),
    ("sos_nothing_known_counter_1", 1, {"type": "sos", **NOTHING, "trigger": 3}, None),
    ("position_north_east_limit_counter_max", 0xFFFF_FFFF,
     {"type": "position", **_r(lat_e7=900_000_000, lon_e7=1_800_000_000, course_deg=358,
                               speed_cm_s=12_700), "reason": 1}, None),
    ("position_south_west_limit", 11,
     {"type": "position", **_r(lat_e7=-900_000_000, lon_e7=-1_800_000_000, course_deg=0,
                               speed_cm_s=0), "reason": 2}, None),
    ("position_saturated_fields", 12,
     {"type": "position", **_r(lat_e7=950_000_000, lon_e7=-1_900_000_000, accuracy_m=100_000,
                               sats=300, speed_cm_s=99_999, course_deg=725, battery_pct=150,
                               signal_dbm=-300, fix_age_s=32_768, charging=True), "reason": 3},
     {"lat_e7": 900_000_000, "lon_e7": -1_800_000_000, "accuracy_m": 65_534, "sats": 254,
      "speed_cm_s": 12_700, "course_deg": 4, "battery_pct": 100, "signal_dbm": -255,
      "fix_age_s": 32_760}),
    ("cancel", 13, {"type": "cancel", **_r(), "duress": False, "sos_counter": 7}, None),
    ("cancel_under_duress", 14, {"type": "cancel", **_r(), "duress": True, "sos_counter": 7},
     None),
    ("tap_reply_three_presses", 15,
     {"type": "tap_reply", **_r(), "question_id": 3, "presses": 3}, None),
    ("tap_reply_no_answer", 16,
     {"type": "tap_reply", **_r(), "question_id": 4, "presses": 0}, None),
    ("check_in", 17, {"type": "check_in", **_r(**STILL, trusted=False, fix_age_s=7200,
                                              charging=True),
                      "fw": [1, 2, 3], "battery_mv": 3987, "pending": 2}, None),
    ("low_battery", 18, {"type": "low_battery", **_r(battery_pct=5, **STILL),
                         "battery_mv": 3412}, None),
    ("self_test", 19, {"type": "self_test", **_r(**NO_FIX, time_source=2),
                       "tested": 0x01FF, "failed": 0x0004, "fw": [1, 2, 3]}, None),
    ("check_in_three_digit_mnc_key_15_device_max", 20,
     {"type": "check_in", **_r(mcc="310", mnc="410", rat=3, tac=0xFFFF, cell_id=0x0FFF_FFFF,
                               **STILL), "fw": [255, 255, 255], "battery_mv": 65535,
      "pending": 255}, None, DEV2, KEY2, SECRET2),
    # 1.1 silent call
    ("call_state_dialling", 21, {"type": "call_state", **_r(**STILL), "state": 1, "reason": 0},
     None),
    ("call_state_connected", 22, {"type": "call_state", **_r(**STILL), "state": 2, "reason": 0},
     None),
    ("call_state_ended_centre_hung_up", 23,
     {"type": "call_state", **_r(**STILL), "state": 3, "reason": 1}, None),
    ("call_state_failed_no_voice", 24,
     {"type": "call_state", **_r(**NO_FIX, time_source=2), "state": 4, "reason": 6}, None),
    # 1.2 delivery receipts
    ("receipt_one", 25, {"type": "receipt", **_r(**STILL), "highest": 3, "bitmap": 0}, None),
    ("receipt_window", 26, {"type": "receipt", **_r(**STILL), "highest": 300,
                            "bitmap": 0b1011}, None),  # 300, 299, 298, 296 accepted
    ("receipt_full_window_counter_max", 27,
     {"type": "receipt", **_r(**NO_FIX, time_source=1), "highest": 0xFFFF_FFFF,
      "bitmap": (1 << 63) - 1}, None),
]

DOWNLINKS = [
    ("ack_received", 1, {"type": "ack", "acked_counter": 7, "level": 1}, None),
    ("ack_seen", 2, {"type": "ack", "acked_counter": 7, "level": 2}, None),
    ("ack_dispatched", 3, {"type": "ack", "acked_counter": 7, "level": 3}, None),
    ("question_yes_no", 4, {"type": "question", "question_id": 3, "kind": 1, "choices": 2,
                            "timeout_s": 60}, None),
    ("question_press_n", 5, {"type": "question", "question_id": 4, "kind": 2, "choices": 5,
                             "timeout_s": 90}, None),
    ("tracking_schedule", 6, {"type": "tracking", "fast_interval_s": 60, "fast_for_s": 600,
                              "slow_interval_s": 600, "low_battery_pct": 20}, None),
    ("stand_down_false_alarm", 7, {"type": "stand_down", "reason": 2, "sos_counter": 7}, None),
    ("config_three_items", 8, {"type": "config", "items": [[1, 86400], [2, 3000], [5, 2]]}, None),
    ("config_empty", 9, {"type": "config", "items": []}, None),
    ("config_sixteen_items_counter_max", 0xFFFF_FFFF,
     {"type": "config", "items": [[k, 0xFFFF_FFFF - k] for k in range(1, 17)]}, None),
    ("listen_in_dial", 11, {"type": "listen_in", "sos_counter": 7, "mode": 1, "max_s": 600},
     None),
    ("listen_in_answer_counter_max", 12,
     {"type": "listen_in", "sos_counter": 0xFFFF_FFFF, "mode": 2, "max_s": 65535}, None),
    ("ack_key_15_device_max", 10, {"type": "ack", "acked_counter": 0xFFFF_FFFF, "level": 3}, None,
     DEV2, KEY2, SECRET2),
]


def _seal_raw(header: bytes, body: bytes, direction: int, secret: bytes) -> bytes:
    """Seal arbitrary header/body bytes (for malformed-but-authentic vectors)."""
    keys = seal.derive_keys(secret)
    _, _, dev, ctr = codec.HEADER.unpack(header)
    sealed = header + seal.ctr(keys, dev, direction, ctr, body)
    return sealed + seal.tag(keys, sealed)


def _vector(entry, encode) -> dict:
    name, counter, fields, decoded, *who = entry
    dev, kid, secret = who or (DEV, KEY, SECRET)
    pkt = encode(from_fields(fields), device_id=dev, key_id=kid, secret=secret, counter=counter)
    v = {"name": name, "device_id": dev, "key_id": kid, "secret": secret.hex(),
         "counter": counter, "fields": fields, "packet": pkt.hex(), "text": to_text(pkt)}
    if decoded:
        v["decoded"] = {**fields, **decoded}
    return v


def _flip(pkt: bytes, i: int) -> bytes:
    b = bytearray(pkt)
    b[i] ^= 0x01
    return bytes(b)


def _rejects(valid: bytes, direction: int, other_type: int) -> list[dict]:
    """Packets derived from a valid one, each with the reason both sides must give."""
    hdr = valid[:HEADER_LEN]
    out = [
        ("truncated_below_minimum", valid[:HEADER_LEN + TAG_LEN - 1], "truncated"),
        ("truncated_for_its_type", valid[:HEADER_LEN] + valid[-TAG_LEN:], "truncated"),
        ("oversized", valid + bytes(MAX_PACKET + 1 - len(valid)), "oversized"),
        ("wrong_version_2", bytes([0x21]) + valid[1:], "wrong_version"),
        ("wrong_version_0", bytes([0x01]) + valid[1:], "wrong_version"),
        ("unknown_type", valid[:1] + bytes([0x7F if direction == 0 else 0xFF]) + valid[2:],
         "unknown_type"),
        ("wrong_direction_type", valid[:1] + bytes([other_type]) + valid[2:], "unknown_type"),
        ("unknown_device", valid[:2] + (0x0BAD_F00D).to_bytes(4, "big") + valid[6:],
         "unknown_device"),
        ("unknown_key_id", bytes([valid[0] ^ 0x02]) + valid[1:], "unknown_device"),
        ("bad_tag_flipped_ciphertext", _flip(valid, HEADER_LEN + 3), "bad_tag"),
        ("bad_tag_flipped_counter", _flip(valid, 9), "bad_tag"),
        ("bad_tag_flipped_tag", _flip(valid, len(valid) - 1), "bad_tag"),
        ("bad_tag_wrong_key", _seal_raw(hdr, bytes(len(valid) - HEADER_LEN - TAG_LEN),
                                        direction, SECRET2), "bad_tag"),
        ("counter_zero_authentic", _seal_raw(hdr[:6] + bytes(4), bytes(
            len(valid) - HEADER_LEN - TAG_LEN), direction, SECRET), "too_old"),
    ]
    return [{"name": n, "packet": p.hex(), "reason": r} for n, p, r in out]


def _replay_sequence(encode, msg_fields: dict, dev: int = DEV) -> list[dict]:
    """Counters arriving in this order, with what the window must say for each."""
    msg = from_fields(msg_fields)
    steps = [(100, "accepted"), (100, "duplicate"), (98, "accepted"), (98, "duplicate"),
             (36, "too_old"), (37, "accepted"), (37, "duplicate"), (99, "accepted"),
             (300, "accepted"), (237, "accepted"), (236, "too_old"), (100, "too_old"),
             (301, "accepted")]
    return [{"counter": c, "packet": encode(msg, device_id=dev, key_id=KEY, secret=SECRET,
                                            counter=c).hex(), "expect": e} for c, e in steps]


def build() -> dict:
    sos = encode_uplink(from_fields(UPLINKS[0][2]), device_id=DEV, key_id=KEY, secret=SECRET,
                        counter=7)
    ack = encode_downlink(from_fields(DOWNLINKS[0][2]), device_id=DEV, key_id=KEY, secret=SECRET,
                          counter=1)
    config17 = _seal_raw(codec.HEADER.pack(0x10 | KEY, 0x85, DEV, 40),
                         bytes([17]) + bytes(85), 1, SECRET)
    config_short = _seal_raw(codec.HEADER.pack(0x10 | KEY, 0x85, DEV, 41),
                             bytes([3]) + bytes(9), 1, SECRET)
    keys = seal.derive_keys(SECRET)
    return {
        "about": "U-Relief protocol v1 test vectors (docs/protocol.md). Generated by "
                 "host_tools/urelief/protocol/vectors.py; test keys only.",
        "keys": {"secret": SECRET.hex(), "enc_key": keys.enc.hex(), "mac_key": keys.mac.hex(),
                 "sos_full_nonce": seal.nonce(DEV, seal.UPLINK, 7).hex()},
        "device": {"device_id": DEV, "key_id": KEY, "secret": SECRET.hex()},
        "uplink": [_vector(e, encode_uplink) for e in UPLINKS],
        "downlink": [_vector(e, encode_downlink) for e in DOWNLINKS],
        "reject_uplink": _rejects(sos, 0, 0x81) + [
            {"name": "text_bad_base64", "text": "UR1:EQEA*AAq", "reason": "bad_encoding"},
            {"name": "text_no_prefix", "text": "SOS 37.5665,126.9780", "reason": "bad_encoding"},
        ],
        "reject_downlink": _rejects(ack, 1, 0x01) + [
            {"name": "config_seventeen_items", "packet": config17.hex(), "reason": "oversized"},
            {"name": "config_items_truncated", "packet": config_short.hex(),
             "reason": "truncated"},
        ],
        "text_folded": [{"name": "ack_folded_by_a_gateway", "packet": ack.hex(),
                         "text": " " + to_text(ack)[:20] + "\r\n " + to_text(ack)[20:] + "\n"}],
        "replay_uplink": _replay_sequence(encode_uplink, UPLINKS[1][2]),
        "replay_downlink": _replay_sequence(encode_downlink, DOWNLINKS[0][2]),
    }


def _self_check(v: dict) -> None:
    for vec in v["downlink"]:
        res = decode_downlink(bytes.fromhex(vec["packet"]), device_id=vec["device_id"],
                              key_id=vec["key_id"], secret=bytes.fromhex(vec["secret"]),
                              replay=MemoryReplayWindow())
        assert isinstance(res, Accepted), (vec["name"], res)
        assert to_fields(res.message) == vec.get("decoded", vec["fields"]), vec["name"]


def render() -> str:
    v = build()
    _self_check(v)
    return json.dumps(v, indent=1) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        same = PATH.exists() and PATH.read_text() == text
        print(f"{PATH}: {'up to date' if same else 'STALE: regenerate'}")
        return 0 if same else 1
    PATH.parent.mkdir(parents=True, exist_ok=True)
    PATH.write_text(text)
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
