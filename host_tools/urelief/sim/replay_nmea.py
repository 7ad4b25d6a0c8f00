"""`urelief sim replay-nmea LOG`: run an NMEA log through the firmware's GNSS code on the
MicroPython VM and print one JSON object per epoch (what the device would have concluded)."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import tempfile
from pathlib import Path

import click

from urelief.sim import vm

FIELDS = ("time", "lat", "lon", "alt_msl", "speed", "course", "mode", "hdop", "sats_used")

# Runs on MicroPython: one process for the whole log. Prints per epoch a JSON line with the
# FIELDS plus "lines": [first, last] (1-based line numbers of the log), then {"stats": ...}.
_DRIVER = """
import json
from gnss.service import Gnss
g = Gnss(ticks_ms=lambda: 0)
if %(not_before)r:
    g.epoch.not_before = %(not_before)r
n = 0
first = 1
def out(f):
    global first
    print(json.dumps({"time": f.iso_time(), "lat": f.lat, "lon": f.lon, "alt_msl": f.alt_msl,
        "speed": f.speed, "course": f.course, "mode": f.mode, "hdop": f.hdop,
        "sats_used": f.sats_used, "lines": [first, n - 1]}))
    first = n
g.on_fix = out
with open(%(log)r, "rb") as fh:
    for raw in fh:
        for line in raw.rstrip(b"\\r\\n").split(b"\\r"):  # LF, CR LF or a lone CR end a line
            n += 1
            if line[:1] != b"#":  # gpsd log header, not receiver output
                g.feed_line(line)
n += 1
g.end_epoch()
print(json.dumps({"stats": g.nmea.stats()}))
"""


# gpsd's regression-log header naming the capture day, which gpsd takes as its clock for the log.
_DATE = re.compile(rb"^# Date: (\d{4})-(\d{1,2})-(\d{1,2})", re.M)
_ROLLOVER = dt.timedelta(weeks=1024)


def not_before(log: Path) -> int:
    """The earliest date the log's receiver can truthfully report, yyyymmdd: one GPS week-number
    rollover period (1024 weeks) before the capture day its header names; 0 (the firmware's own
    floor) when it names none."""
    m = _DATE.search(log.read_bytes()[:4096])
    if not m:
        return 0
    day = dt.date(*(int(g) for g in m.groups())) - _ROLLOVER
    return day.year * 10000 + day.month * 100 + day.day


def replay(log: str | Path, *, heap_kb: int = vm.DEFAULT_HEAP_KB) -> tuple[list[dict], dict]:
    """(epochs, parser statistics) for `log`, computed by the firmware on MicroPython."""
    path = Path(log).resolve()
    code = _DRIVER % {"log": str(path), "not_before": not_before(path)}
    out = vm.run(code, heap_kb=heap_kb).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return rows[:-1], rows[-1]["stats"]


@click.command("replay-nmea")
@click.argument("log", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--lines", is_flag=True, help="Add the log line range of each epoch.")
@click.option("--stats", is_flag=True, help="End with the parser's counters as a JSON object.")
def replay_nmea(log: str, lines: bool, stats: bool) -> None:
    """Run LOG (NMEA 0183, one sentence a line; '-' reads stdin, e.g. a receiver's serial port)
    through the firmware GNSS code on MicroPython; one JSON object per epoch."""
    if log == "-":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "stdin.nmea"
            path.write_bytes(sys.stdin.buffer.read())
            epochs, counters = replay(path)
    else:
        epochs, counters = replay(log)
    for e in epochs:
        row = {k: e[k] for k in FIELDS}
        if lines:
            row["lines"] = e["lines"]
        click.echo(json.dumps(row))
    if stats:
        click.echo(json.dumps({"stats": counters}))
