"""The persisted outbox (firmware/alarm/outbox.py) under the MicroPython VM: every sealed packet is
on flash before anything can send it, survives a restart, and stays until its counter is acked;
a power cut at any flash write leaves each packet whole or absent, never a wrong one; bounded
with SOS packets kept over positions; a flash that refuses the write raises."""

import textwrap
from pathlib import Path

from urelief import protocol as p

HERE = Path(__file__).parent  # mpy_cutflash.py: a flash that logs its writes, a MicroPython module
SECRET = bytes(range(32))
DEVICE = 4242
PRELUDE = f"""
import json, os
from alarm.outbox import Outbox
from proto.packet import Codec, Report
from proto.seal import Seal
codec = Codec(Seal({SECRET!r}, {DEVICE}, 0))
def sos(c):
    return bytes(codec.sos(c, Report(), 1))
def pos(c):
    return bytes(codec.position(c, Report(), 1))
def cancel(c):
    return bytes(codec.cancel(c, Report(), True, 1))
def check_in(c):
    return bytes(codec.check_in(c, Report(), (0, 3, 0), 3900, 0))
def counters(box):
    return [e.counter for e in box.entries]
out = {{}}
"""


def run(mpy, body: str, flash: bool = False):
    code = ("from mpy_cutflash import *\n" if flash else "") + PRELUDE + textwrap.dedent(body)
    # The power-cut harness keeps two whole flash images and the write log in RAM beside the
    # firmware under test: a test's memory, not the device's, so it gets room for them.
    heap = {"heap_kb": 256} if flash else {}
    return mpy.using(HERE).json(code + "\nprint(json.dumps(out))\n", **heap)


def decode(pkt: bytes) -> p.Accepted:
    ks = p.MemoryKeyStore()
    ks.add(DEVICE, 0, SECRET)
    res = p.decode_uplink(pkt, ks, p.MemoryReplayWindow())
    assert res.ok, res
    return res


def test_a_packet_is_on_flash_whole_before_add_returns(mpy, tmp_path):
    d = tmp_path / "ob"
    out = run(mpy, f"""
        box = Outbox({str(d)!r})
        e, dropped = box.add(sos(5))
        out['files'] = sorted(os.listdir({str(d)!r}))
        out['entry'] = [e.counter, e.sos, e.tries, e.due, dropped]
    """)
    assert out == {"files": ["00000005"], "entry": [5, True, 0, None, None]}
    res = decode((d / "00000005").read_bytes())  # the exact sealed bytes, as the server takes them
    assert res.counter == 5 and res.type == p.MsgType.SOS


def test_survives_a_restart_in_counter_order(mpy, tmp_path):
    d = str(tmp_path / "ob")
    out = run(mpy, f"""
        box = Outbox({d!r})
        for c, f in ((7, pos), (3, sos), (12, pos), (5, sos)):
            box.add(f(c))
        out['before'] = counters(box)
        again = Outbox({d!r})  # a reboot: RAM gone, flash kept
        out['after'] = counters(again)
        out['same'] = [e.packet == box.get(e.counter).packet for e in again.entries]
        out['sos'] = [e.sos for e in again.entries]
        out['fresh'] = [[e.tries, e.sms, e.due, e.first] for e in again.entries][0]
    """)
    assert out["before"] == out["after"] == [3, 5, 7, 12]
    assert out["same"] == [True] * 4
    assert out["sos"] == [True, True, False, False]
    assert out["fresh"] == [0, 0, None, None]  # delivery state starts afresh


def test_a_cut_before_the_rename_and_foreign_files_are_discarded(mpy, tmp_path):
    d = tmp_path / "ob"
    d.mkdir()
    p2, p9, p11, p12 = (bytes.fromhex(x) for x in run(mpy, """
        out = [sos(2).hex(), sos(9).hex(), pos(11).hex(), pos(12).hex()]
    """))
    assert decode(p2).counter == 2
    (d / "00000002").write_bytes(p2)
    (d / "00000009.tmp").write_bytes(p9)  # written and closed, the power went before the rename
    (d / "0000000a").write_bytes(p11)  # name and counter disagree: not a packet of ours
    (d / "0000000c").write_bytes(p12[:17])  # shorter than header + tag
    (d / "notes.txt").write_bytes(b"hello")
    out = run(mpy, f"""
        box = Outbox({str(d)!r})
        out = counters(box)
    """)
    assert out == [2]
    assert sorted(x.name for x in d.iterdir()) == ["00000002"]


def test_bounded_the_oldest_position_goes_first_and_sos_are_kept(mpy, tmp_path):
    d = tmp_path / "ob"
    out = run(mpy, f"""
        box = Outbox({str(d)!r}, limit=4)
        steps = []
        for c, f in ((1, sos), (2, pos), (3, pos), (4, sos), (5, pos), (6, sos), (7, sos),
                     (8, sos), (9, pos)):
            e, dropped = box.add(f(c))
            steps.append([c, dropped.counter if dropped else None, counters(box)])
        out['steps'] = steps
        out['dropped'] = box.dropped
        out['files'] = sorted(os.listdir({str(d)!r}))
    """)
    assert out["steps"] == [
        [1, None, [1]], [2, None, [1, 2]], [3, None, [1, 2, 3]], [4, None, [1, 2, 3, 4]],
        [5, 2, [1, 3, 4, 5]],  # full: the oldest position makes room
        [6, 3, [1, 4, 5, 6]],
        [7, 5, [1, 4, 6, 7]],  # only SOS left now
        [8, 1, [4, 6, 7, 8]],  # an SOS over an SOS: the oldest goes (bounded all the same)
        [9, 9, [4, 6, 7, 8]],  # a position never displaces an SOS: it is the one dropped
    ]
    assert out["dropped"] == 5
    assert out["files"] == ["00000004", "00000006", "00000007", "00000008"]


def test_bounded_the_childs_cancel_outlives_positions_and_heartbeats(mpy, tmp_path):
    d = tmp_path / "ob"
    out = run(mpy, f"""
        box = Outbox({str(d)!r}, limit=3)
        steps = []
        for c, f in ((1, cancel), (2, check_in), (3, pos), (4, pos), (5, pos), (6, check_in)):
            e, dropped = box.add(f(c))
            steps.append([c, dropped.counter if dropped else None, counters(box)])
        out['steps'] = steps
    """)
    assert out["steps"] == [
        [1, None, [1]], [2, None, [1, 2]], [3, None, [1, 2, 3]],
        [4, 2, [1, 3, 4]],  # the heartbeat goes first
        [5, 3, [1, 4, 5]],  # then the oldest position; the (duress) cancel stays
        [6, 6, [1, 4, 5]],  # a heartbeat never displaces a position: it is the one dropped
    ]


def test_an_ack_removes_exactly_that_counter(mpy, tmp_path):
    d = str(tmp_path / "ob")
    out = run(mpy, f"""
        box = Outbox({d!r})
        for c in (1, 2, 3, 4):
            box.add(sos(c) if c % 2 else pos(c))
        e = box.ack(3)
        out['acked'] = [e.counter, e.sos]
        out['left'] = counters(box)
        out['again'] = box.ack(3)  # the SMS copy's ack after the UDP one's
        out['unknown'] = box.ack(99)
        out['get'] = [box.get(3), box.get(4).counter]
        out['files'] = sorted(os.listdir({d!r}))
        out['reboot'] = counters(Outbox({d!r}))
    """)
    assert out == {"acked": [3, True], "left": [1, 2, 4], "again": None, "unknown": None,
                   "get": [None, 4], "files": ["00000001", "00000002", "00000004"],
                   "reboot": [1, 2, 4]}


def test_a_flash_that_refuses_the_write_raises_and_nothing_is_kept(mpy):
    out = run(mpy, """
        bd = fresh('/f')
        box = Outbox('/f/ob')
        box.add(sos(1))
        bd.broken = True  # worn out: every program fails
        try:
            box.add(sos(2))
            out['raised'] = None
        except OSError as e:
            out['raised'] = e.errno
        out['left'] = counters(box)
        out['get'] = box.get(2)
        bd.broken = False
        os.umount('/f')
        mount(bd, '/f')  # the next boot
        out['reboot'] = counters(Outbox('/f/ob'))
        out['files'] = listing('/f/ob')
    """, flash=True)
    assert out["raised"] == 5  # EIO: the caller must not send what is not stored
    assert out["left"] == [1] and out["get"] is None
    assert out["reboot"] == [1] and out["files"] == ["00000001"]


def test_a_power_cut_at_any_flash_write_leaves_whole_packets_or_none(mpy):
    # Record every program/erase littlefs makes while one SOS is added (making room by dropping
    # a position) and one packet is acked, then boot an Outbox on the flash as it stood after
    # each prefix of them, and after each one torn halfway.
    out = run(mpy, """
        bd = fresh('/f')
        box = Outbox('/f/ob', limit=3)
        for c, f in ((1, sos), (2, pos), (3, sos)):
            box.add(f(c))
        want = dict((c, box.get(c).packet) for c in (1, 2, 3))
        IMG[:] = bd.data
        bd.log = []
        want[4] = sos(4)
        box.add(want[4])  # drops #2
        box.ack(1)
        log, bd.log = bd.log, None
        out['final'] = counters(box)
        seen = []
        bad = []
        for n in cuts(log):
            mount(LogFlash(SCRATCH), '/r')
            try:
                b = Outbox('/r/ob', limit=3)
                got = counters(b)
                if any(e.packet != want[e.counter] for e in b.entries):
                    bad.append([n, 'wrong bytes'])
                if listing('/r/ob') != ['%08x' % c for c in got]:
                    bad.append([n, 'files left'])
            except Exception as e:
                got = repr(e)
            finally:
                os.umount('/r')
            if not seen or seen[-1] != got:
                seen.append(got)
        out['writes'] = len(log)
        out['states'] = seen
        out['bad'] = bad
    """, flash=True)
    assert out["final"] == [3, 4]
    assert out["bad"] == []
    assert out["writes"] >= 4
    # in order, whatever the moment of the cut: the old set, #2 dropped to make room, #4 stored,
    # #1 acked - never a volume that fails to mount, never an SOS lost except by its ack
    states = out["states"]
    assert states[0] == [1, 2, 3] and states[-1] == [3, 4] and [1, 3, 4] in states, states
    order = [[1, 2, 3], [1, 3], [1, 3, 4], [3, 4]]
    assert [order.index(s) for s in states] == sorted({order.index(s) for s in states}), states


def test_packets_from_the_outbox_are_what_the_server_accepts(mpy, tmp_path):
    d = tmp_path / "ob"
    run(mpy, f"""
        box = Outbox({str(d)!r})
        box.add(sos(40))
        box.add(pos(41))
    """)
    msgs = [decode(f.read_bytes()) for f in sorted(d.iterdir())]
    assert [(m.counter, m.type) for m in msgs] == [(40, p.MsgType.SOS), (41, p.MsgType.POSITION)]
    assert msgs[0].message.trigger == p.Trigger.HOLD
