"""Both implementations against tests/vectors/protocol_v1.json: the server here, the firmware
under the real MicroPython VM (one VM run for all vectors)."""

import json
from pathlib import Path

import pytest
from urelief import protocol as p
from urelief.paths import TESTS
from urelief.protocol import vectors as gen
from urelief.protocol.messages import from_fields, to_fields

HERE = Path(__file__).parent  # mpy_vectors.py: the firmware side, a MicroPython module
VECTORS = TESTS / "vectors" / "protocol_v1.json"


@pytest.fixture(scope="module")
def vectors() -> dict:
    return json.loads(VECTORS.read_text())


def test_committed_vectors_are_current():
    assert VECTORS.read_text() == gen.render(), "run: python -m urelief.protocol.vectors"


def _keystore(vectors) -> p.MemoryKeyStore:
    ks = p.MemoryKeyStore()
    for v in vectors["uplink"]:
        ks.add(v["device_id"], v["key_id"], bytes.fromhex(v["secret"]))
    return ks


# ---- server side -------------------------------------------------------------------------

def test_server_encodes_every_uplink_vector(vectors):
    for v in vectors["uplink"]:
        pkt = p.encode_uplink(from_fields(v["fields"]), device_id=v["device_id"],
                              key_id=v["key_id"], secret=bytes.fromhex(v["secret"]),
                              counter=v["counter"])
        assert pkt.hex() == v["packet"], v["name"]
        assert p.to_text(pkt) == v["text"]


def test_server_decodes_every_uplink_vector_over_udp_and_both_sms_forms(vectors):
    ks = _keystore(vectors)
    for v in vectors["uplink"]:
        for payload in (bytes.fromhex(v["packet"]), v["text"], v["text"].encode()):
            res = p.decode_sms(payload, ks, p.MemoryReplayWindow())
            assert res.ok, (v["name"], res)
            assert res.counter == v["counter"] and res.device_id == v["device_id"]
            assert to_fields(res.message) == v.get("decoded", v["fields"]), v["name"]
            assert not res.warnings


def test_server_encodes_every_downlink_vector(vectors):
    for v in vectors["downlink"]:
        pkt = p.encode_downlink(from_fields(v["fields"]), device_id=v["device_id"],
                                key_id=v["key_id"], secret=bytes.fromhex(v["secret"]),
                                counter=v["counter"])
        assert pkt.hex() == v["packet"], v["name"]


def test_server_rejects_with_the_vector_reason(vectors):
    for v in vectors["reject_uplink"]:
        payload = v["text"] if "text" in v else bytes.fromhex(v["packet"])
        res = p.decode_sms(payload, _keystore(vectors), p.MemoryReplayWindow())
        assert not res.ok and res.reason == v["reason"], (v["name"], res)


def test_server_replay_window_follows_the_sequence(vectors):
    ks, rw = _keystore(vectors), p.MemoryReplayWindow()
    for step in vectors["replay_uplink"]:
        res = p.decode_uplink(bytes.fromhex(step["packet"]), ks, rw)
        got = "accepted" if res.ok else res.reason
        assert got == step["expect"], step["counter"]
        if not res.ok:
            assert res.authentic and res.message is not None  # the server can re-ack it


def test_server_downlink_rejects_match_the_firmware_vectors(vectors):
    d = vectors["device"]
    for v in vectors["reject_downlink"]:
        res = p.decode_downlink(bytes.fromhex(v["packet"]), device_id=d["device_id"],
                                key_id=d["key_id"], secret=bytes.fromhex(d["secret"]))
        assert not res.ok and res.reason == v["reason"], v["name"]


# ---- firmware side, under MicroPython -----------------------------------------------------

@pytest.fixture(scope="module")
def firmware_results(mpy, tmp_path_factory):
    guard = tmp_path_factory.mktemp("guard") / "downlink.ctr"
    code = f"from mpy_vectors import run\nrun({str(VECTORS)!r}, {str(guard)!r})\n"
    out: dict = {}
    for line in mpy.using(HERE).run(code).splitlines():
        kind, name, result = json.loads(line)
        out.setdefault(kind, {})[name] = result
    return out


def test_firmware_encodes_every_uplink_vector_byte_for_byte(vectors, firmware_results):
    # (the device sends SMS as 8-bit data; it reads the server's "UR1:" text form of each back)
    for v in vectors["uplink"]:
        assert firmware_results["uplink"][v["name"]] == [v["packet"], v["packet"]], v["name"]


def test_firmware_opens_every_downlink_vector_binary_and_text(vectors, firmware_results):
    for v in vectors["downlink"]:
        fields, counter, from_text = firmware_results["downlink"][v["name"]]
        assert fields == v.get("decoded", v["fields"]), v["name"]
        assert counter == v["counter"] and from_text == fields


def test_firmware_rejects_with_the_vector_reason(vectors, firmware_results):
    cases = vectors["reject_downlink"] + [v for v in vectors["reject_uplink"] if "text" in v]
    for v in cases:
        assert firmware_results["reject"][v["name"]] == v["reason"], v["name"]


def test_firmware_replay_guard_follows_the_sequence(vectors, firmware_results):
    got = firmware_results["replay"]
    want = vectors["replay_downlink"]
    assert [got[i] for i in range(len(want))] == [s["expect"] for s in want]


def test_cancel_and_duress_cancel_look_the_same_on_the_air(vectors):
    by = {v["name"]: bytes.fromhex(v["packet"]) for v in vectors["uplink"]}
    a, b = by["cancel"], by["cancel_under_duress"]
    assert len(a) == len(b) and a[:2] == b[:2] and a[2:6] == b[2:6]


def test_both_sides_ignore_white_space_in_the_text_form(vectors, firmware_results):
    for v in vectors["text_folded"]:
        assert p.from_text(v["text"]).hex() == v["packet"]
        assert firmware_results["folded"][v["name"]] == v["packet"]
