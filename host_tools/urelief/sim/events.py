"""The terminal's console events (firmware/console.py, docs/console-events.md), parsed: the one
place tools, tests, the demo, the fleet and provisioning read what the firmware says.

    urelief: <event> <key>=<value> ... [-- <note>]

`parse(line)` -> Event or None; `events(output, name, **fields)` -> the events of a console
transcript (complete lines only: a line still being printed is never half-read), optionally of
one name and with the given field values; `first`/`last`/`count` on top; `line(name, **fields)`
the exact text an event starts with, for a device's `wait_line`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

PREFIX = "urelief: "
_LINE = re.compile(r"urelief: ([a-z0-9_]+)((?: [a-z0-9_]+=\S*)*)(?: -- (.*))?$")


@dataclass(frozen=True)
class Event:
    name: str
    fields: dict[str, str] = field(default_factory=dict)
    note: str | None = None
    index: int = 0  # character offset of the line in the transcript it was read from

    def __getitem__(self, key: str) -> str:
        return self.fields[key]

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.fields.get(key, default)

    def int(self, key: str) -> int | None:
        """The field as an integer; None when it is "-" (unknown) or absent."""
        v = self.fields.get(key)
        return None if v in (None, "-") else int(v)

    def flag(self, key: str) -> bool:
        return self.fields.get(key) == "1"

    def matches(self, name: str | None = None, **want: object) -> bool:
        if name is not None and self.name != name:
            return False
        return all(self.fields.get(k) == str(v) for k, v in want.items())


def parse(line: str, index: int = 0) -> Event | None:
    """One console line -> its Event, None for anything else (a traceback, REPL text)."""
    m = _LINE.search(line.rstrip("\r\n"))
    if not m:
        return None
    fields = dict(kv.split("=", 1) for kv in m.group(2).split())
    return Event(m.group(1), fields, m.group(3), index + m.start())


def _complete(output: str) -> str:
    return output[:output.rfind("\n") + 1]


def iter_events(output: str) -> Iterator[Event]:
    pos = 0
    text = _complete(output)
    for ln in text.splitlines(keepends=True):
        ev = parse(ln, pos)
        if ev is not None:
            yield ev
        pos += len(ln)


def events(output: str, name: str | None = None, **want: object) -> list[Event]:
    return [e for e in iter_events(output) if e.matches(name, **want)]


def first(output: str, name: str, **want: object) -> Event | None:
    return next((e for e in iter_events(output) if e.matches(name, **want)), None)


def last(output: str, name: str, **want: object) -> Event | None:
    got = events(output, name, **want)
    return got[-1] if got else None


def count(output: str, name: str, **want: object) -> int:
    return len(events(output, name, **want))


def since(output: str, name: str, **want: object) -> str:
    """The transcript after the last event `name` (e.g. since the last boot)."""
    ev = last(output, name, **want)
    return output if ev is None else output[ev.index:]


def line(name: str, **fields: object) -> str:
    """The text an event line starts with (fields in the order the firmware prints them)."""
    return PREFIX + name + "".join(f" {k}={v}" for k, v in fields.items())
