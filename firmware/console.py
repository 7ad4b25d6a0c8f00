"""Console events: the lines the terminal prints that tools read, from one formatter.

    urelief: <event> <key>=<value> ... [-- <note>]

<event> and <key> are lowercase words (a-z, 0-9, _); a value has no spaces; the note after " -- "
is free text for a reader (an error's repr). docs/console-events.md lists every event and its
fields; urelief.sim.events parses them on the host."""


def event(name, fields="", note=None):
    """-> the console line of event `name`; fields: "key=value key=value" (may be empty)."""
    line = "urelief: " + name
    if fields:
        line += " " + fields
    if note is not None:
        line += " -- " + note
    return line


def flag(v):
    """A yes/no field value: 1 or 0."""
    return 1 if v else 0


def opt(v):
    """A field value that may be unknown: "-" for None."""
    return "-" if v is None else v
