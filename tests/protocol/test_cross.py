"""Random field values, far beyond the vectors: the firmware (MicroPython VM) and the server
(CPython) must produce the same bytes for every uplink, and the server must decode them."""

import json
import random
from pathlib import Path

from urelief import protocol as p
from urelief.protocol.messages import from_fields
from urelief.protocol.vectors import SECRET

HERE = Path(__file__).parent  # mpy_vectors.py: the firmware side, a MicroPython module
TAILS = {
    "sos": lambda r: {"trigger": r.randrange(256)},
    "position": lambda r: {"reason": r.randrange(256)},
    "cancel": lambda r: {"duress": r.random() < 0.5, "sos_counter": r.randrange(2**32)},
    "tap_reply": lambda r: {"question_id": r.randrange(256), "presses": r.randrange(256)},
    "check_in": lambda r: {"fw": [r.randrange(256) for _ in range(3)],
                           "battery_mv": r.randrange(65536), "pending": r.randrange(256)},
    "low_battery": lambda r: {"battery_mv": r.randrange(65536)},
    "self_test": lambda r: {"tested": r.randrange(65536), "failed": r.randrange(65536),
                            "fw": [r.randrange(256) for _ in range(3)]},
}


def _maybe(r: random.Random, lo: int, hi: int):
    return None if r.random() < 0.1 else r.randint(lo, hi)


def _digits(r: random.Random, n: int) -> str:
    return "".join(r.choice("0123456789") for _ in range(n))


def random_fields(r: random.Random) -> dict:
    mtype = r.choice(sorted(TAILS))
    return {
        "type": mtype,
        "time_s": _maybe(r, -5, 2**32 + 5), "time_source": r.randrange(6),
        "fix": r.random() < 0.8, "lat_e7": _maybe(r, -1_000_000_000, 1_000_000_000),
        "lon_e7": _maybe(r, -2_000_000_000, 2_000_000_000), "accuracy_m": _maybe(r, -1, 70_000),
        "fix_age_s": _maybe(r, -1, 3_000_000), "sats": _maybe(r, -1, 300),
        "trusted": r.random() < 0.5, "moving": r.random() < 0.5,
        "speed_cm_s": _maybe(r, 0, 20_000), "course_deg": _maybe(r, -720, 720),
        "cell": r.random() < 0.8,
        "mcc": r.choice([_digits(r, 3), _digits(r, 2), "45a", None]),
        "mnc": r.choice([_digits(r, 2), _digits(r, 3), "", None]),
        "tac": _maybe(r, 0, 70_000), "cell_id": _maybe(r, 0, 2**32 - 1), "rat": r.randrange(8),
        "signal_dbm": _maybe(r, -300, -1), "battery_pct": _maybe(r, -5, 200),
        "charging": r.random() < 0.5, "drill": r.random() < 0.5,
        **TAILS[mtype](r),
    }


def test_firmware_and_server_agree_on_random_uplinks(mpy, tmp_path):
    r = random.Random(20261123)
    cases = [{"name": i, "device_id": r.randrange(2**32), "key_id": r.randrange(16),
              "secret": SECRET.hex(), "counter": r.randrange(1, 2**32),
              "fields": random_fields(r)} for i in range(1000)]
    path = tmp_path / "cases.json"
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))  # one per line: 96 KB heap
    out = mpy.using(HERE).run(f"""from mpy_vectors import *
with open({str(path)!r}) as fh:
    for line in fh:
        v = json.loads(line)
        print(bytes(encode(codec_for(v), v)).hex())
""").split()
    assert len(out) == len(cases)
    ks = p.MemoryKeyStore()
    for case, fw_hex in zip(cases, out, strict=True):
        server = p.encode_uplink(from_fields(case["fields"]), device_id=case["device_id"],
                                 key_id=case["key_id"], secret=SECRET, counter=case["counter"])
        assert fw_hex == server.hex(), case
        ks.add(case["device_id"], case["key_id"], SECRET)
        res = p.decode_uplink(server, ks, p.MemoryReplayWindow())
        assert res.ok and not res.warnings, (case, res)
