"""Hostile input, counted: NMEA sentences, modem AT lines and SMS PDUs through the firmware's own
parsers on the MicroPython VM, and SMS PDUs through the host codec, each as mutations of real
captures (tests/data: gpsd logs, ModemManager's vectors) and random bytes, seeded. A case fails
when the parser raises anything but its own error; the figures go to docs/reliability.md."""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

from urelief.bench import publish
from urelief.paths import TESTS
from urelief.sim import vm

N = 20_000  # cases per parser
SEED = 15


def mutate(rnd: random.Random, base: bytes) -> bytes:
    """One hostile variant of a real input: bytes flipped, cut, repeated, spliced or random."""
    b = bytearray(base)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(6)
        if op == 0 and b:
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif op == 1 and b:
            del b[rnd.randrange(len(b)):]
        elif op == 2 and b:
            i = rnd.randrange(len(b))
            b[i:i] = b[i:i + rnd.randint(1, 16)] * rnd.randint(1, 8)
        elif op == 3:
            b[rnd.randrange(len(b) + 1):0] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        elif op == 4 and b:
            i = rnd.randrange(len(b))
            b[i:i + 1] = rnd.choice([b",", b"*", b"$", b"\r", b"\x00", b"\xff", b"9" * 20, b"-"])
        else:
            b = bytearray(bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 120))))
    return bytes(b[:400])


def nmea_corpus() -> list[bytes]:
    out = []
    for log in sorted((TESTS / "data" / "gpsd").glob("*.log")):
        out += [ln.strip() for ln in log.read_bytes().splitlines() if ln.startswith(b"$")][:200]
    return out


def pdu_corpus() -> list[bytes]:
    vec = json.loads((TESTS / "data" / "modemmanager" / "mm_sms_part_3gpp_vectors.json").read_text())
    out = []
    for v in vec["decode_vectors"] + vec["invalid_pdus"]:
        h = v.get("pdu_hex")
        if isinstance(h, str):
            try:
                out.append(bytes.fromhex(h))
            except ValueError:
                continue
    return out


def at_corpus() -> list[bytes]:
    vec = json.loads((TESTS / "data" / "modemmanager" / "mm_at_response_vectors.json").read_text())
    lines: list[bytes] = [b"OK", b"ERROR", b"+CME ERROR: 10", b"+CMTI: \"SM\",3", b"RING",
                          b"+CLIP: \"+821012345678\",145", b"NO CARRIER", b"+CEREG: 1,5",
                          b"+CAOPEN: 0,0", b"+CGNSINF: 1,1,20261207010203.000,37.5,126.9"]

    def walk(x):
        if isinstance(x, str):
            lines.extend(s.encode() for s in x.replace("\r", "\n").split("\n") if s.strip())
        elif isinstance(x, dict):
            for y in x.values():
                walk(y)
        elif isinstance(x, list):
            for y in x:
                walk(y)

    walk(vec)
    return lines[:2000]


_VM = """
import json, sys
from binascii import unhexlify
%s
ok = err = 0
fails = []
with open(%r) as f:
    for line in f:
        case = unhexlify(line.strip())
        try:
            run(case)
            ok += 1
        except %s:
            err += 1
        except Exception as e:
            if len(fails) < 5:
                fails.append([line.strip(), repr(e)])
print(json.dumps({'ok': ok, 'refused': err, 'failures': fails}))
"""

TARGETS = {
    "NMEA sentences (firmware gnss.nmea + gnss.epoch)": ("""
from gnss.nmea import Nmea
from gnss.epoch import Epoch
p = Nmea()
ep = Epoch()
t = [0]
def run(b):
    t[0] += 100
    if p.feed(b):
        ep.add(p, t[0])
""", "ValueError", nmea_corpus),
    "AT lines (firmware modem.atlines)": ("""
from modem import atlines
from modem.at import _text
def run(b):
    s = _text(b)  # as the AT engine turns a received line into text
    atlines.classify(s, expect='+CSQ:', echo='AT+CSQ', in_command=True)
    atlines.classify(s)
    atlines.error_code(s)
    atlines.after_colon(s)
    atlines.fields(s, 6)
""", "MemoryError", at_corpus),  # nothing is refused: every line gets a kind
    "SMS PDUs (firmware modem.pdu)": ("""
from modem import pdu
def run(b):
    pdu.decode(b)
""", "pdu.PduError", pdu_corpus),
}


def _cases(rnd: random.Random, corpus: list[bytes]) -> list[bytes]:
    return [mutate(rnd, rnd.choice(corpus)) if corpus and i % 4 else
            bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 160))) for i in range(N)]


def host_pdu(rnd: random.Random) -> dict:
    from urelief.sms import pdu as host

    ok = refused = 0
    fails = []
    for case in _cases(rnd, pdu_corpus()):
        try:
            host.decode(case)
            ok += 1
        except host.PduError:
            refused += 1
        except Exception as e:  # a crash: counted and shown, the run goes on
            if len(fails) < 5:
                fails.append([case.hex(), repr(e)])
    return {"ok": ok, "refused": refused, "failures": fails}


def main() -> None:
    rnd = random.Random(SEED)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (setup, error, corpus) in TARGETS.items():
            cases = Path(tmp) / "cases.txt"
            cases.write_text("\n".join(c.hex() for c in _cases(rnd, corpus())) + "\n")
            code = _VM % (setup, str(cases), error)
            results[name] = vm.run_json(code, heap_kb=1024, timeout_s=900)
    results["SMS PDUs (host urelief.sms.pdu)"] = host_pdu(rnd)
    for name, r in results.items():
        n = r["ok"] + r["refused"] + len(r["failures"])
        print(f"fuzz {name}: {N:,} cases (seed {SEED}), {r['ok']:,} parsed, {r['refused']:,} "
              f"refused with its own error, {len(r['failures'])} failures {r['failures'][:2]}")
        publish.figure(f"fuzz: {name}", f"{N:,} cases, {r['refused']:,} refused, "
                       f"{len(r['failures'])} other exceptions" + (f" (of {n:,})" if n != N else ""),
                       goal="0 other exceptions", met=not r["failures"], doc=publish.RELIABILITY)
    publish.note("Cases are seeded mutations of real captures (the gpsd logs in tests/data/gpsd, "
                 "ModemManager's AT and 3GPP SMS vectors) and random bytes: flipped and inserted "
                 "bytes, cuts, repeats, field separators and long digit runs. A parser may refuse "
                 "a case with its own error (ValueError, PduError); anything else is a failure.",
                 doc=publish.RELIABILITY)


if __name__ == "__main__":
    main()
