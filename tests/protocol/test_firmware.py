"""The firmware's protocol package on the real MicroPython VM: counters on littlefs across power
cuts, the downlink replay guard, allocation, and a downlink-decoder fuzz."""

from pathlib import Path

from urelief.bench.protocol import fuzz_firmware

HERE = Path(__file__).parent  # mpy_flash.py: a counting littlefs volume, a MicroPython module
SECRET = "bytes(range(32))"


def _run_json(mpy, code: str, **kw):
    return mpy.using(HERE).json("from mpy_flash import *\n" + code, **kw)


def test_counter_never_reuses_a_value_across_power_cuts(mpy, tmp_path):
    img = str(tmp_path / "flash.img")
    first = _run_json(mpy, f"""
import json
from proto.counter import Counter
bd = mount({img!r}, fresh=True)
create_counter('/flash/ctr')
c = Counter('/flash/ctr')
got = [c.next() for _ in range(70)]
print(json.dumps(got))
""")
    assert first == list(range(1, 71))
    # the process dies here (power cut): the next boot must start above everything handed out
    seen = set(first)
    for _boot in range(3):
        got = _run_json(mpy, f"""
import json
from proto.counter import Counter
bd = mount({img!r})
c = Counter('/flash/ctr')
print(json.dumps([c.next() for _ in range(5)]))
""")
        assert min(got) > max(seen) and got == sorted(got)
        seen |= set(got)


def test_counter_survives_a_cut_during_reservation_and_writes_once_per_block(mpy, tmp_path):
    img = str(tmp_path / "flash.img")
    res = _run_json(mpy, f"""
import json
from proto.counter import Counter
bd = mount({img!r}, fresh=True)
create_counter('/flash/ctr')
c = Counter('/flash/ctr')
for _ in range(10):
    c.next()
# a reservation cut after writing the temp file but before the rename: garbage left behind
with open('/flash/ctr.tmp', 'wb') as f:
    f.write(b'\\x00\\x01')
p0 = bd.programs
for _ in range(640):
    c.next()
print(json.dumps([c.next(), bd.programs - p0, listdir()]))
""")
    last, programs, files = res
    assert last == 651
    # 640 counters = 10 reservations; littlefs programs a few blocks per atomic rename
    assert programs <= 10 * 8, programs
    assert files == ["ctr"]
    again = _run_json(mpy, f"""
import json
from proto.counter import Counter
mount({img!r})
print(Counter('/flash/ctr').next())
""")
    assert again > 651


def test_lost_or_corrupt_counter_refuses_rather_than_reuses(mpy, tmp_path):
    res = _run_json(mpy, f"""
import json
from proto import ProtoError
from proto.counter import Counter
out = []
try:
    Counter({str(tmp_path / 'missing')!r})
except ProtoError as e:
    out.append(e.reason)
with open({str(tmp_path / 'bad')!r}, 'wb') as f:
    f.write(b'\\x00\\x00\\x00\\x05\\x00\\x00\\x00\\x00')
try:
    Counter({str(tmp_path / 'bad')!r})
except ProtoError as e:
    out.append(e.reason)
create_counter({str(tmp_path / 'end')!r}, 0xFFFFFFFE)
c = Counter({str(tmp_path / 'end')!r})
out.append(c.next())
out.append(c.next())
try:
    c.next()
except ProtoError as e:
    out.append(e.detail)
print(json.dumps(out))
""")
    assert res == ["counter", "counter", 0xFFFFFFFE, 0xFFFFFFFF, "exhausted: rotate the device key"]


def test_replay_guard_persists_across_reboot(mpy, tmp_path):
    path = str(tmp_path / "down.ctr")
    code = f"""
import json
from proto import ProtoError
from proto.counter import ReplayGuard
g = ReplayGuard({path!r})
out = []
for c in COUNTERS:
    try:
        g.check(c)
        g.accept(c)
        out.append('ok')
    except ProtoError as e:
        out.append(e.reason)
print(json.dumps(out))
"""
    assert mpy.json(code.replace("COUNTERS", "[5, 3, 70]")) == ["ok", "ok", "ok"]
    assert mpy.json(code.replace("COUNTERS", "[70, 5, 3, 69, 7, 0]")) == [
        "duplicate", "too_old", "too_old", "ok", "ok", "too_old"]


def test_encoding_an_sos_allocates_little(mpy):
    """Preallocated buffers: the heap cost per packet is the two SHA-256 objects and digests
    (~600 bytes, garbage at once) and a few integers: no buffers, no strings."""
    per_packet = mpy.json(f"""
import gc, json
from proto.packet import Codec, Report
from proto.seal import Seal
c = Codec(Seal({SECRET}, 0x2A17, 1))
r = Report()
r.time_s = 1763900000; r.time_source = 3; r.fix = True; r.lat_e7 = 375665350
r.lon_e7 = 1269779690; r.accuracy_m = 6; r.fix_age_s = 1; r.sats = 11; r.trusted = True
r.cell = True; r.mcc = '450'; r.mnc = '05'; r.tac = 11036; r.cell_id = 27440068
r.rat = 4; r.signal_dbm = -97; r.battery_pct = 86
c.sos(1, r, 1)
gc.collect()
gc.disable()
a = gc.mem_alloc()
for i in range(2, 12):
    c.sos(i, r, 1)
print(json.dumps((gc.mem_alloc() - a) // 10))
""")
    assert per_packet < 1024, per_packet


def test_downlink_decoder_fuzz_raises_only_protoerror():
    reasons = fuzz_firmware(3000)
    # the fuzz reached past the tag check, and every outcome was a verdict, not a crash
    assert reasons.get("accepted", 0) > 100 and reasons.get("bad_tag", 0) > 100
    assert set(reasons) <= {"accepted", "truncated", "oversized", "wrong_version", "unknown_type",
                            "unknown_device", "bad_tag", "too_old"}


def test_counter_refuses_when_flash_is_full_rather_than_hand_out_unpersisted_values(mpy, tmp_path):
    img = str(tmp_path / "flash.img")
    res = _run_json(mpy, f"""
import json
from proto import ProtoError
from proto.counter import Counter
mount({img!r}, fresh=True)
create_counter('/flash/ctr')
c = Counter('/flash/ctr')
got = [c.next() for _ in range(64)]  # the first reservation fits
for size in (4096, 256, 8):  # fill the volume with closed files, big then small
    i = 0
    try:
        while True:
            with open('/flash/fill%d.%d' % (size, i), 'wb') as f:
                f.write(bytes(size))
            i += 1
    except OSError:
        pass
try:
    got.append(c.next())
except ProtoError as e:
    got.append(e.reason)
print(json.dumps(got))
""")
    assert res[:64] == list(range(1, 65)) and res[64] == "counter"


def test_firmware_hmac_matches_the_reference_at_every_block_boundary(mpy):
    """The hand-written HMAC-SHA256 (no `hmac` on ESP32) against CPython's, for key and message
    lengths around the 64-byte SHA-256 block (keys over 64 bytes are hashed first)."""
    import hashlib
    import hmac

    cases = [(bytes((7 * k + i) & 0xFF for i in range(k)), bytes((3 * m + i) & 0xFF
              for i in range(m))) for k in (0, 1, 20, 32, 63, 64, 65, 131)
             for m in (0, 1, 55, 56, 63, 64, 65, 200)]
    lines = "".join(f"{k.hex()} {m.hex()}\n" for k, m in cases).encode()
    got = mpy.run("""
import sys
from proto.seal import hmac_sha256
for line in sys.stdin:
    k, m = line.split(' ')
    print(hmac_sha256(bytes.fromhex(k), bytes.fromhex(m.strip())).hex())
""", stdin=lines).split()
    assert got == [hmac.new(k, m, hashlib.sha256).hexdigest() for k, m in cases]
