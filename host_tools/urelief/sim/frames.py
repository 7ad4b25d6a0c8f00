"""The wire between the host and the virtual board's shims: frame kinds (one table,
`shims/_vframes.py`, read by both ends) and the framing."""

from __future__ import annotations

import struct

from urelief.sim.shims import _vframes as kinds

HEADER = struct.Struct(">BH")  # kind, payload length
STAMP = struct.Struct(">q")  # device us, first in every device->host payload and every event

NAMES = {v: k for k, v in vars(kinds).items() if k.isupper() and isinstance(v, int)}


def pack(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def unpack_all(buf: bytearray) -> list[tuple[int, int, bytes]]:
    """Take every whole device->host frame off the front of buf: [(kind, device us, payload)]."""
    out = []
    while len(buf) >= HEADER.size:
        kind, n = HEADER.unpack_from(buf)
        if len(buf) < HEADER.size + n:
            break
        body = bytes(buf[HEADER.size:HEADER.size + n])
        del buf[:HEADER.size + n]
        out.append((kind, STAMP.unpack_from(body)[0], body[STAMP.size:]))
    return out
