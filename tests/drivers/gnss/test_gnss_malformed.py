"""Malformed input never stops the firmware's NMEA parser: it is counted. Real sentences from the
gpsd logs are cut, corrupted, buried in noise and stretched past 82 characters; the counters
must say exactly what was done to them. Everything runs in one MicroPython process."""

from __future__ import annotations

import random
import re

import gpsd_chk as G

# Feeds each line to the service (parser + epoch assembler) and reports the counters and
# every epoch, so a crash anywhere in the chain fails the run.
_DRIVER = """
import json
from gnss.service import Gnss
g = Gnss(ticks_ms=lambda: 0)
modes = [0, 0, 0, 0]
zero = [0]
def on_fix(f):
    modes[f.mode] += 1
    if f.lat_e7 == 0 and f.lon_e7 == 0:
        zero[0] += 1
g.on_fix = on_fix
kinds = []
with open(%r, "rb") as fh:
    for line in fh:
        g.feed_line(line[:-1])
        kinds.append(g.nmea.kind)
        del kinds[:-8]
g.end_epoch()
print(json.dumps({"stats": g.nmea.stats(), "kinds": kinds, "modes": modes, "zero": zero[0]}))
"""


def _checksum(body: str) -> str:
    x = 0
    for c in body.encode("latin-1"):
        x ^= c
    return f"${body}*{x:02X}"


def _real_sentences() -> list[str]:
    out = []
    for log in G.logs():
        out += [s for s in G.log_lines(log) if re.fullmatch(r"\$G[PNL](GGA|RMC|GSA),.*\*[0-9A-F]{2}", s)]
    return out


# Fields (commas) of a whole sentence in NMEA 0183 2.0; fewer and no checksum = a cut line.
WHOLE = {"GGA": 13, "RMC": 9, "GSA": 17}


def _pieces(lines: list[bytes]) -> list[bytes]:
    """What the service hands the parser, one by one: lines split at a lone CR and where a '$'
    follows a '*hh' (sentences run together), blank ones dropped."""
    pieces = [q.rstrip(b"\r\n ") for line in lines for p in line.split(b"\r")
              for q in re.split(rb"(?<=\*..)(?=\$)", p)]
    return [p for p in pieces if p]


def _run(mpy, tmp_path, lines: list[bytes]) -> dict:
    path = tmp_path / "feed.nmea"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return mpy.json(_DRIVER % str(path))


def test_corruptions_are_counted_exactly(mpy, tmp_path):
    rnd = random.Random(4)
    real = _real_sentences()
    assert len(real) > 300
    picks = rnd.sample(real, 300)
    lines: list[bytes] = []
    want = dict.fromkeys(("parsed", "bad_checksum", "truncated", "garbage", "long",
                          "zero_rejected", "unsupported", "unchecked"), 0)
    for i, s in enumerate(picks):
        star = s.index("*")
        case = i % 6
        if case in (2, 4, 5) and len(s) + 2 > 82:  # CR LF included: some real ones are longer
            want["long"] += 1
        if case == 0:  # cut anywhere before the checksum is complete
            cut = s[: rnd.randint(1, star + 2)]
            lines.append(cut.encode())
            if "*" not in cut and cut.count(",") >= WHOLE.get(cut[3:6], 99):
                want["unchecked"] += 1  # NMEA 2.0's fields all there: sent without checksum
                want["parsed"] += 1
            else:
                want["truncated"] += 1
        elif case == 1:  # one character changed
            k = rnd.randint(1, star - 1)
            c = rnd.choice([x for x in "ABCXYZ0123456789." if x != s[k]])
            lines.append((s[:k] + c + s[k + 1 :]).encode())
            want["bad_checksum"] += 1
        elif case == 2:  # line noise before an intact sentence
            noise = bytes(rnd.choice([0, 7, 0xFF, 0x80, 0x41, 0x2C, 0x2A]) for _ in range(9))
            lines.append(noise + s.encode())
            want["garbage"] += 1
            want["parsed"] += 1
        elif case == 3:  # pure binary noise (no '$'), as at a wrong baud rate
            lines.append(bytes(rnd.choice([x for x in range(1, 256) if x not in (10, 13, 32, 36)])
                               for _ in range(rnd.randint(1, 120))))
            want["garbage"] += 1
        elif case == 4:  # the tail of one sentence glued to the next
            lines.append((s[: star // 2] + s).encode())
            want["garbage"] += 1
            want["parsed"] += 1
        else:  # intact
            lines.append(s.encode())
            want["parsed"] += 1
    # Over 82 characters with extra precision, as u-blox high-precision mode sends: accepted.
    long_gga = _checksum("GNGGA,092725.00,4717.113999999,N,00833.915877777,E,1,08,1.01,499.6,M,"
                         "48.0,M,,,extra-field-1,extra-field-2")
    assert len(long_gga) > 82
    lines.append(long_gga.encode())
    want["parsed"] += 1
    want["long"] += 1
    # (0,0) reported valid: rejected and counted.
    lines.append(_checksum("GPRMC,120000.00,A,0000.0000,N,00000.0000,E,0.0,0.0,010124,,,A").encode())
    want["parsed"] += 1
    want["zero_rejected"] += 1
    # Proprietary, a formatter not ours, a talker that is not two capitals: valid, not ours.
    lines.append(_checksum("PUBX,00,081350.00,4717.113210,N").encode())
    lines.append(_checksum("GPXTE,A,A,0.67,L,N").encode())
    lines.append(_checksum("xxGGA,120000.00,4717.1,N,00833.9,E,1,08,1.0,499.6,M,48.0,M,,").encode())
    want["unsupported"] += 3
    # Any talker of two capitals is a talker (NMEA 0183 lets integrated systems use their own).
    lines.append(_checksum("INGGA,120000.00,4717.1,N,00833.9,E,1,08,1.0,499.6,M,48.0,M,,").encode())
    want["parsed"] += 1

    got = _run(mpy, tmp_path, lines)
    stats = got["stats"]
    for k, v in want.items():
        assert stats[k] == v, (k, stats)
    assert stats["lines"] == len(_pieces(lines))  # noise ending '*hh' before a '$' is its own
    assert stats["malformed"] == 0
    assert got["kinds"][-6] != 0  # the long GGA was decoded
    assert sum(got["modes"]) > 0 and got["zero"] == 0


def test_long_sentence_values_are_read(mpy):
    s = _checksum("GNGGA,092725.00,4717.113999999,S,00833.915877777,W,1,08,1.01,499.6,M,48.0,M,,"
                  ",extra-field-1,extra-field-2")
    got = mpy.json(
        "import json\nfrom gnss.nmea import Nmea\np = Nmea()\n"
        f"p.feed({s.encode()!r})\n"
        "print(json.dumps([p.lat_e7, p.lon_e7, p.alt_mm, p.long]))\n"
    )
    assert got == [-(47 * 10**7 + round(17.113999999 / 60 * 1e7)),
                   -(8 * 10**7 + round(33.915877777 / 60 * 1e7)), 499600, 1]


def test_random_bytes_never_raise(mpy, tmp_path):
    rnd = random.Random(7)
    alphabet = b"$*,.0123456789ABCDEFGNPRSVWabc\x00\xff\r \t-"
    lines = [bytes(rnd.choice(alphabet) for _ in range(rnd.randint(0, 200))) for _ in range(2000)]
    # Well-framed sentences with hostile fields: checksums made valid so the fields get parsed.
    for _ in range(1000):
        kind = rnd.choice(["GPGGA", "GNRMC", "GPGSA", "GNGNS", "GPVTG", "GPGLL", "GPZDA", "GPGSV"])
        fields = ["".join(rnd.choice("0123456789.-+NSEWAV") for _ in range(rnd.randint(0, 12)))
                  for _ in range(rnd.randint(0, 45))]
        lines.append(_checksum(",".join([kind, *fields])).encode())
    lines = [line.replace(b"\n", b"") for line in lines]
    got = _run(mpy, tmp_path, lines)
    s = got["stats"]
    pieces = _pieces(lines)
    no_dollar = sum(1 for p in pieces if b"$" not in p)
    accounted = s["parsed"] + s["unsupported"] + s["bad_checksum"] + s["truncated"] + s["malformed"]
    assert s["lines"] == len(pieces)
    assert accounted + no_dollar == s["lines"]  # every line lands in exactly one counter
    assert s["malformed"] > 0 and s["bad_fields"] > 0 and s["parsed"] > 500
