# Runs under MicroPython (the `mpy` fixture): the firmware's side of the shared test vectors.
# `run(path)` prints one JSON line per vector, [kind, name, result], for pytest to compare.
import json

from proto import ProtoError
from proto.counter import ReplayGuard
from proto.packet import Codec, Report, from_text
from proto.seal import Seal

_TAILS = {
    "sos": ("trigger",), "position": ("reason",), "cancel": ("duress", "sos_counter"),
    "tap_reply": ("question_id", "presses"), "check_in": ("fw", "battery_mv", "pending"),
    "low_battery": ("battery_mv",), "self_test": ("tested", "failed", "fw"),
    "call_state": ("state", "reason"), "receipt": ("highest", "bitmap"),
}
_DOWN = {
    0x81: ("ack", ("acked_counter", "level")),
    0x82: ("question", ("question_id", "kind", "choices", "timeout_s")),
    0x83: ("tracking", ("fast_interval_s", "fast_for_s", "slow_interval_s", "low_battery_pct")),
    0x84: ("stand_down", ("reason", "sos_counter")),
    0x85: ("config", ("items",)),
    0x86: ("listen_in", ("sos_counter", "mode", "max_s")),
}


def codec_for(v):
    return Codec(Seal(bytes.fromhex(v["secret"]), v["device_id"], v["key_id"]))


def encode(c, v):
    f = v["fields"]
    r = Report()
    for k in f:
        if hasattr(r, k):
            setattr(r, k, f[k])
    args = [f[k] for k in _TAILS[f["type"]]]
    return getattr(c, f["type"])(v["counter"], r, *args)


def downlink_fields(d):
    name, keys = _DOWN[d.type]
    out = {"type": name}
    for k in keys:
        x = getattr(d, k)
        out[k] = [list(i) for i in x] if k == "items" else x
    return out


def _out(kind, name, result):
    print(json.dumps([kind, name, result]))


def _reason(fn, arg):
    try:
        fn(arg)
        return "accepted"
    except ProtoError as e:
        return e.reason


def run(path, guard_path):
    with open(path) as fh:
        vec = json.load(fh)
    main = codec_for(vec["device"])
    for v in vec.pop("uplink"):
        pkt = bytes(encode(codec_for(v), v))
        _out("uplink", v["name"], [pkt.hex(), from_text(v["text"]).hex()])  # text form read back
    for v in vec.pop("downlink"):
        c = codec_for(v)
        d = c.open(bytes.fromhex(v["packet"]))
        d2 = c.open(from_text(v["text"]))
        _out("downlink", v["name"], [downlink_fields(d), d.counter, downlink_fields(d2)])
    for v in vec.pop("reject_downlink"):
        _out("reject", v["name"], _reason(main.open, bytes.fromhex(v["packet"])))
    for v in vec.pop("text_folded"):
        _out("folded", v["name"], from_text(v["text"]).hex())
    guard = ReplayGuard(guard_path)
    for i, v in enumerate(vec.pop("replay_downlink")):
        _out("replay", i, _reason(lambda p: main.open(p, guard),
                                             bytes.fromhex(v["packet"])))
    for v in vec.pop("reject_uplink"):
        if "text" in v:
            _out("reject", v["name"], _reason(from_text, v["text"]))
