"""The firmware's GNSS code, on MicroPython, against gpsd's expected output for every gpsd log.

At the end of each epoch our Fix must match gpsd's last TPV of that epoch: lat/lon within 1e-7°,
altMSL within 0.01 m, UTC time, speed within 0.01 m/s, track within 0.01°, mode. Where gpsd and
the firmware differ for a genuine reason, the epoch is listed in EXPLAINED with the fields that
differ and a reason whose claim is checked against the log; any other difference fails, and so
does an explained one that no longer differs. Dates are compared as reported: neo-m8n's header
("# Date = ...") is not the form gpsd reads, so both gpsd and our replay take it for a capture of
today and move its 2015 dates 1024 weeks on, as a week-rollover victim's.
"""

from __future__ import annotations

import re

import gpsd_chk as G
import pytest
from urelief.sim.replay_nmea import replay

# Why gpsd and the firmware may differ; each has a check below that the log says so.
REASONS = {
    "gsa_2d": "the receiver's GSA says 2D fix; gpsd promotes it to 3D because GGA/GNS carries an "
    "altitude (held, in 2D). The firmware believes the receiver's explicit fix type.",
    "gpsd_early": "gpsd emitted its last TPV of the epoch before the epoch's RMC/ZDA arrived (its "
    "learned cycle end came first), so its TPV lacks the date, speed or course they bring.",
    "no_tpv": "gpsd reports only at the sentence it learned ends a cycle (GLL or RMC); this epoch "
    "has none (log cut, end of log, or a dropped sentence in the overflow capture).",
    "rmc_no_date": "no-fix RMC with an empty date field: gpsd drops the time; the firmware keeps "
    "the receiver's time with the date carried from the earlier fix (the clock was set then).",
    "pmgnst": "gpsd decodes Magellan's proprietary $PMGNST after the epoch and drops to mode 1; "
    "the firmware ignores proprietary sentences.",
}

# log -> {first log line of our epoch: (reason, fields that differ)}
EXPLAINED: dict[str, dict[int, tuple[str, set[str]]]] = {
    "beidou-bd": {57: ("gpsd_early", {"time", "speed", "course"})},
    "bt451": {46: ("gpsd_early", {"time"}), 104: ("no_tpv", {"tpv"}), 155: ("no_tpv", {"tpv"})},
    "ch-4711": {
        **{n: ("gsa_2d", {"mode"}) for n in (1, 18, 23, 34, 38, 43, 48)},
        53: ("no_tpv", {"tpv"}),
    },
    "eXplorist210": {
        n: ("pmgnst", {"mode", "lat", "lon", "alt_msl", "speed", "course"}) for n in (47, 59)
    },
    "gp-320fw-2019-04-06-overflow": {28: ("no_tpv", {"tpv"})},
    "magellan-ec10": {n: ("rmc_no_date", {"time"}) for n in range(74, 91, 2)},
    "myguide-3100": {52: ("gpsd_early", {"time", "speed", "course"})},
    "neo-m8n": {296: ("no_tpv", {"tpv"})},
    "sl869": {n: ("gsa_2d", {"mode"}) for n in (100, 111)},
    "telit-pls83-w": {
        n: ("gsa_2d", {"mode"}) for n in (1, 34, 57, 81, 104, 127, 151, 175, 199, 223)
    },
}

def _check_reason(reason: str, lines: list[str], first: int, last: int, tpv_at: int | None) -> None:
    """Assert that what the reason claims is true of the log lines first..last (1-based)."""
    epoch = [(n, lines[n - 1]) for n in range(first, last + 1)]
    if reason == "gsa_2d":
        gsa = [s for _, s in epoch if re.match(r"\$..GSA,", s)]
        assert gsa and all(s.split(",")[2] == "2" for s in gsa), gsa
    elif reason == "gpsd_early":
        late = [n for n, s in epoch if re.match(r"\$..(RMC|ZDA),", s)]
        assert tpv_at is not None and late and tpv_at < max(late)
    elif reason == "no_tpv":
        assert tpv_at is None
    elif reason == "rmc_no_date":
        rmc = [s.split(",") for _, s in epoch if re.match(r"\$..RMC,", s)]
        assert rmc and all(f[2] == "V" and f[9] == "" for f in rmc)
    elif reason == "pmgnst":
        assert tpv_at is not None and lines[tpv_at - 1].startswith("$PMGNST")
    else:
        raise AssertionError(reason)


def test_every_gpsd_log_is_covered():
    names = {p.stem for p in G.logs()}
    assert len(names) == 20 and set(EXPLAINED) <= names


@pytest.mark.parametrize("log", G.logs(), ids=lambda p: p.stem)
def test_epochs_match_gpsd(log):
    tpvs, _dropped = G.tpvs_by_line(log)
    lines = G.log_lines(log)
    epochs, _stats = replay(log)  # one MicroPython process for the whole log
    assert epochs, "no epoch assembled"
    expected = EXPLAINED.get(log.stem, {})
    seen: dict[int, tuple[str, set[str]]] = {}
    compared = 0
    for e in epochs:
        first, last = e["lines"]
        found = G.last_tpv(tpvs, first, last)
        tpv_at, tpv = found if found else (None, None)
        diffs = G.differences(e, tpv)
        if not diffs:
            compared += 1
            continue
        fields = {d.split(":")[0] for d in diffs}
        assert first in expected, f"{log.stem} lines {first}-{last}: {diffs}"
        reason, allowed = expected[first]
        assert fields == allowed, f"{log.stem} lines {first}-{last} ({reason}): {diffs}"
        _check_reason(reason, lines, first, last, tpv_at)
        seen[first] = expected[first]
    assert seen == expected, f"explained but not differing: {set(expected) - set(seen)}"
    assert compared >= len(epochs) - len(expected)
