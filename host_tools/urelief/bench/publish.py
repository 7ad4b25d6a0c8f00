"""The figures a `make bench` run measured, and the two documents written from them:
docs/performance.md and docs/reliability.md. A benchmark prints its figures as before and also
records each one here (`figure`), with the goal it is held to and what it is compared with;
`python -m urelief.bench` writes the documents when every benchmark ran, so what they say is
what that run printed. Text the documents carry beside the tables (a profile, what was tried,
what would close a gap) is given by the benchmark with `note`."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

PERFORMANCE, RELIABILITY = "performance", "reliability"
TITLES = {
    PERFORMANCE: "Performance: speed, memory and energy, measured",
    RELIABILITY: "Reliability: campaigns, fuzzing, faults",
}


@dataclass
class Figure:
    doc: str
    bench: str  # the benchmark module that measured it
    name: str
    value: str  # as printed, with its unit
    goal: str = ""
    met: bool | None = None  # None: no goal
    versus: str = ""  # the floor, anchor or datasheet it is compared with


FIGURES: list[Figure] = []
NOTES: dict[tuple[str, str], list[str]] = {}
FAILED: dict[str, str] = {}  # bench -> why it did not finish
_current = {"bench": "?"}


def begin(bench: str) -> None:
    _current["bench"] = bench


def figure(name: str, value: str, *, goal: str = "", met: bool | None = None, versus: str = "",
           doc: str = PERFORMANCE) -> None:
    FIGURES.append(Figure(doc, _current["bench"], name, value, goal, met, versus))


def note(text: str, doc: str = PERFORMANCE) -> None:
    NOTES.setdefault((doc, _current["bench"]), []).append(text.strip())


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from urelief.sim import vm

        out = subprocess.run([vm.micropython_exe(), "-c",
                              "import sys; print('.'.join(str(v) for v in sys.implementation.version[:3]))"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        mpy = f"MicroPython {out} (unix VM)"
    except Exception:  # the figures still stand without the VM's version
        mpy = "MicroPython unix VM"
    return (f"{os.cpu_count()} CPU ({cpu}), Linux {platform.release()}, "
            f"Python {platform.python_version()}, {mpy}")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")  # a table cell stays one cell


def _verdict(f: Figure) -> str:
    return "" if f.met is None else ("met" if f.met else "**missed**")


def render(doc: str, when: str, where: str, command: str) -> str:
    out = [f"# {TITLES[doc]}", "",
           f"Written by `{command}` on {when}, on {where}. Do not edit: every figure here is one",
           "that run printed; change the benchmark (`host_tools/urelief/bench/`) and run it again.",
           ""]
    benches: list[str] = []
    for f in FIGURES:
        if f.doc == doc and f.bench not in benches:
            benches.append(f.bench)
    for b in [b for (d, b) in NOTES if d == doc]:
        if b not in benches:
            benches.append(b)
    for b in benches:
        figs = [f for f in FIGURES if f.doc == doc and f.bench == b]
        out += [f"## {b}", "", f"Command: `python -m urelief.bench {b}`", ""]
        if figs:
            out += ["| figure | measured | goal | verdict | compared with |",
                    "| --- | --- | --- | --- | --- |"]
            out += ["| " + " | ".join(_cell(c) for c in (f.name, f.value, f.goal, _verdict(f),
                                                          f.versus)) + " |" for f in figs]
            out.append("")
        for text in NOTES.get((doc, b), ()):
            out += [text, ""]
    if FAILED:
        out += ["## Not measured in this run", ""]
        out += [f"- {b}: failed ({why})" for b, why in FAILED.items()] + [""]
    missed = [f for f in FIGURES if f.doc == doc and f.met is False]
    out += ["## Goals missed", ""]
    out += ([f"- {f.bench}: {f.name}: {f.value} against {f.goal} (see its section)"
             for f in missed] or ["None in this run."])
    return "\n".join(out).rstrip() + "\n"


def write(docs: Path, command: str = "make bench") -> list[Path]:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = machine()
    written = []
    for doc in (PERFORMANCE, RELIABILITY):
        if not any(f.doc == doc for f in FIGURES) and not any(d == doc for d, _ in NOTES):
            continue
        path = Path(docs) / f"{doc}.md"
        path.write_text(render(doc, when, where, command))
        written.append(path)
    return written


def reset() -> None:
    FIGURES.clear()
    NOTES.clear()
    FAILED.clear()
    _current["bench"] = "?"

