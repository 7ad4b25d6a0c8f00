"""Read gpsd's regression pairs (X.log + X.log.chk) and line our epochs up with gpsd's TPVs.

A .chk file echoes each sentence gpsd read, followed by the JSON reports it emitted after that
sentence. Sentences are matched to the log's non-comment lines in order (checked), so each TPV
is attached to the 1-based log line after which gpsd emitted it.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data" / "gpsd"


def logs() -> list[Path]:
    return sorted(DATA.glob("*.log"))


def log_lines(log: Path) -> list[str]:
    """The log's lines as the replay numbers them: ended by LF, CR LF or a lone CR."""
    raws = log.read_bytes().split(b"\n")
    if raws and not raws[-1]:
        raws.pop()
    return [p.decode("latin-1") for raw in raws for p in raw.rstrip(b"\r\n").split(b"\r")]


def tpvs_by_line(log: Path) -> tuple[dict[int, list[dict]], list[int]]:
    """({log line number: [TPV reports gpsd emitted after reading that line]}, [numbers of the
    log lines gpsd did not echo, i.e. rejected])."""
    sentences = [
        (n, line) for n, line in enumerate(log_lines(log), 1) if line.strip() and line[0] != "#"
    ]
    out: dict[int, list[dict]] = {}
    dropped: list[int] = []
    k = -1
    for raw in (log.with_name(log.name + ".chk")).read_text("latin-1").splitlines():
        if not raw.strip():
            continue
        if raw.startswith("{"):
            report = json.loads(raw)
            if report.get("class") == "TPV":
                assert k >= 0, f"{log.name}: TPV before any sentence"
                out.setdefault(sentences[k][0], []).append(report)
            continue
        k += 1
        while sentences[k][1].strip() != raw.strip():  # gpsd does not echo what it rejected
            dropped.append(sentences[k][0])
            k += 1
    dropped.extend(n for n, _ in sentences[k + 1 :])
    return out, dropped


def last_tpv(tpvs: dict[int, list[dict]], first: int, last: int) -> tuple[int, dict] | None:
    """(log line, gpsd's last TPV) emitted while reading log lines first..last, or None."""
    found = None
    for n in range(first, last + 1):
        if n in tpvs:
            found = (n, tpvs[n][-1])
    return found


def differences(ours: dict, tpv: dict | None) -> list[str]:
    """What differs between our epoch and gpsd's TPV, within the issue's tolerances."""
    if tpv is None:
        return ["tpv: gpsd emitted no TPV in this epoch"]
    diffs = []

    def num(key: str, theirs: str, tol: float) -> None:
        a, b = ours[key], tpv.get(theirs)
        if (a is None) != (b is None) or (a is not None and abs(a - b) > tol):
            diffs.append(f"{key}: ours {a} gpsd {b}")

    if ours["mode"] != tpv["mode"]:
        diffs.append(f"mode: ours {ours['mode']} gpsd {tpv['mode']}")
    if ours["time"] != tpv.get("time"):
        diffs.append(f"time: ours {ours['time']} gpsd {tpv.get('time')}")
    num("lat", "lat", 1e-7)
    num("lon", "lon", 1e-7)
    num("alt_msl", "altMSL", 0.01)
    num("speed", "speed", 0.01)
    num("course", "track", 0.01)
    return diffs
