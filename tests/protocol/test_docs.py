"""docs/protocol.md agrees with the code and the vectors: sizes, worked examples, keys."""

import json
import re

from urelief import protocol as p
from urelief.paths import ROOT, TESTS
from urelief.protocol import codec

DOC = (ROOT / "docs" / "protocol.md").read_text()
VEC = json.loads((TESTS / "vectors" / "protocol_v1.json").read_text())


def _size(mtype: p.MsgType) -> int:
    return codec.HEADER_LEN + codec.LAYOUTS[mtype].size + p.TAG_LEN


def _text_len(n: int) -> int:
    return len(p.to_text(bytes(n)))


def test_message_tables_give_the_real_sizes():
    for mtype in p.MsgType:
        if mtype == p.MsgType.CONFIG:
            continue
        name = mtype.name
        row = re.search(rf"^\| 0x{mtype:02x} \| {name} \|.*\| \**(\d+)\** \|$", DOC, re.M)
        assert row and int(row[1]) == _size(mtype), name
        label = "CANCEL / duress cancel" if mtype == p.MsgType.CANCEL else name
        row = re.search(rf"^\| {label} \| (\d+) \| (\d+) % \| (\d+) \|", DOC, re.M)
        assert row, label
        assert int(row[1]) == _size(mtype) and int(row[3]) == _text_len(_size(mtype)), label
        assert int(row[2]) == round(100 * _size(mtype) / 140), label


def test_worked_examples_are_vector_packets():
    packets = {v["packet"] for v in VEC["uplink"] + VEC["downlink"]}
    texts = {v["text"] for v in VEC["uplink"] + VEC["downlink"]}
    shown = re.findall(r"\b(1[01][0-9a-f]{38,})\b", DOC)
    assert len(shown) >= 4 and set(shown) <= packets
    shown_texts = re.findall(r"(UR1:[A-Za-z0-9+/]{20,})", DOC)
    assert len(shown_texts) >= 2 and set(shown_texts) <= texts
    for key in ("secret", "enc_key", "mac_key"):
        assert VEC["keys"][key] in DOC


def test_limits_stated_in_the_doc_are_the_code_s():
    assert f"**{p.MAX_PACKET} bytes**" in DOC and _text_len(p.MAX_PACKET) == 154
    assert "154 characters" in DOC
