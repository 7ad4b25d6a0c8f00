"""Console events: the firmware prints only the events docs/console-events.md lists (and each
listed one is printed somewhere), through its one formatter; urelief.sim.events reads them."""

import ast
import re

from urelief.paths import FIRMWARE, ROOT
from urelief.sim import events

DOC = (ROOT / "docs" / "console-events.md").read_text()


def documented() -> set[str]:
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", DOC, re.M))


def printed() -> dict[str, set[str]]:
    """event name -> the firmware files that print it, from each console.event(...) call."""
    out: dict[str, set[str]] = {}
    for py in FIRMWARE.rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "event":
                name = node.args[0]
                assert isinstance(name, ast.Constant), f"{py}: an event's name is a literal"
                out.setdefault(name.value, set()).add(py.name)
    return out


def test_every_printed_event_is_documented_and_every_documented_one_printed():
    got = printed()
    assert set(got) - documented() == set(), "printed but not in docs/console-events.md"
    assert documented() - set(got) == set(), "documented but never printed"


def test_no_console_line_bypasses_the_formatter():
    for py in FIRMWARE.rglob("*.py"):
        if py.name == "console.py":
            continue
        assert '"urelief: ' not in py.read_text(), f"{py}: a console line not from console.event"


def test_parse_fields_note_and_other_lines(mpy):
    line = mpy.run("from console import event\nprint(event('sent', 'counter=7 channel=sms try=2'))"
                   "\nprint(event('fault', 'what=modem', \"ModemError('x y')\"))").splitlines()
    e = events.parse(line[0])
    assert (e.name, e.int("counter"), e["channel"], e.int("try")) == ("sent", 7, "sms", 2)
    f = events.parse(line[1])
    assert f.matches("fault", what="modem") and f.note == "ModemError('x y')"
    assert events.parse("Traceback (most recent call last):") is None
    assert events.parse("urelief: free text, not an event") is None
    assert events.parse("urelief: stored kind=sos counter=- fix=0").int("counter") is None


def test_only_complete_lines_count():
    out = "urelief: boot board=sim reset=power_on\nurelief: link state=up\nurelief: sent coun"
    assert [e.name for e in events.events(out)] == ["boot", "link"]
    assert events.first(out, "link", state="up").index == out.index("urelief: link")
    assert events.since(out + "ter=1\nurelief: boot board=sim\n", "boot").startswith(
        "urelief: boot board=sim\n")
    assert events.line("link", state="up") == "urelief: link state=up"
