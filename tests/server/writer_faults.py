"""A flush for the writer child with faults on chosen items (tests/server/test_writer.py)."""

import os


def flush(conn, items):
    if "bug" in items:
        raise RuntimeError("a bug in the commit")
    if "die" in items:
        os._exit(3)  # the child is gone mid-batch (killed, out of memory)
    return [(lambda: None) if it == "unpicklable" else it for it in items]
