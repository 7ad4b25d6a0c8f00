"""The host's SMS PDU codec (urelief.sms.pdu, CPython) against the same ModemManager vectors that
hold the firmware's codec (test_modem_sms.py): the two are written independently and agree
because both match these."""

import pytest
from modem_vectors import mm_sms
from smscheck import reassemble
from urelief.sms import pdu as pdus

VECTORS = mm_sms()


@pytest.mark.parametrize("v", VECTORS["decode_vectors"], ids=lambda v: v["test"])
def test_decodes_modemmanager_vectors(v):
    raw, want = bytes.fromhex(v["pdu_hex"]), v["expected"]
    kind = v["tpdu_type_derived"]
    if kind.startswith("SMS-SUBMIT"):
        got = pdus.decode_submit(raw)
        assert (got.number, got.body) == (want["number"], want["text"])
        return
    got = pdus.decode(raw)
    if kind == "SMS-STATUS-REPORT":
        assert isinstance(got, pdus.StatusReport) and got.recipient == want["number"]
        return
    assert got.sender == want["number"]
    body = got.body.hex().upper() if isinstance(got.body, bytes) else got.body
    assert body == (want["text"] if want["text"] is not None else want["data_hex"])
    assert bool(got.udh) == want["should_concat"]


@pytest.mark.parametrize("v", VECTORS["invalid_pdus"], ids=lambda v: v["test"])
def test_refuses_modemmanager_invalid_pdus(v):
    raw = bytes.fromhex(v["pdu_hex"])
    with pytest.raises(pdus.PduError):
        (pdus.decode_submit if raw[1 + raw[0]] & 3 == 1 else pdus.decode)(raw)


@pytest.mark.parametrize("v", VECTORS["submit_encode_vectors"], ids=lambda v: v["test"])
def test_encodes_modemmanager_submits_byte_exact(v):
    vp = {0: None, 5: 0x00}[v["validity_relative"]]  # minutes: (VP + 1) * 5
    pdu, n = pdus.encode_submit(v["number"], v["text"], status_report=False, vp=vp,
                                smsc=v["smsc"])
    assert pdu.hex().upper() == v["expected_submit_pdu_hex"]
    assert n == len(pdu) - v["expected_msgstart"]


@pytest.mark.parametrize("v", VECTORS["address_encode_vectors"], ids=lambda v: v["test"])
def test_encodes_modemmanager_addresses(v):
    got = pdus._smsc_block(v["address"]) if v["is_smsc"] else pdus.encode_address(v["address"])
    assert got.hex().upper() == v["expected_hex"]


# -- concatenated text: every PDU read by an independent decoder ---------------------------------

HANGUL = "".join(chr(c) for c in range(0xAC00, 0xAC00 + 7 * 300, 7))  # 300 syllables
TEXTS = {
    "hangul-230": ("김민지 학생이 긴급 SOS를 보냈습니다. " + HANGUL)[:230],
    "gsm7-400": "U-Relief: Kim Minji pressed SOS. " * 13,
    "gsm7-ext-on-boundaries": "{}[]€|^~\\" * 40,  # escape pairs must not straddle parts
    "ucs2-emoji": "도와줘 🚨 " * 30,  # surrogate pairs must not straddle parts
    "exactly-160": "a" * 160,
    "exactly-70-ucs2": "가" * 70,
}


@pytest.mark.parametrize("ref16", [False, True], ids=["ref8", "ref16"])
@pytest.mark.parametrize("name", TEXTS)
def test_any_text_goes_out_in_parts_that_reassemble_exactly(name, ref16):
    text = TEXTS[name]
    if name.startswith("hangul"):
        assert len(text) == 230
    out = pdus.encode_submits("+821055500001", text, ref=0x1234 if ref16 else 0x42, ref16=ref16)
    for pdu, n in out:
        assert len(pdu) - 1 == n and n <= 1 + 1 + 12 + 2 + 1 + 1 + 140  # fits one SMS
        assert len(pdu) - n - 1 == 0
    assert reassemble([pdu.hex().upper() for pdu, _ in out]) == text
    if name.startswith("exactly"):
        assert len(out) == 1  # no header when it fits one SMS
    else:
        assert len(out) == len(pdus.split_text(text, ref16)) >= 2
        infos = [pdus.concat_info(pdus.decode_submit(p).udh) for p, _ in out]
        assert infos == [((0x1234 if ref16 else 0x42), len(out), k) for k in range(1, len(out) + 1)]


def test_split_uses_the_room_a_part_has():
    assert [len(x) for x in pdus.split_text("a" * 400)] == [153, 153, 94]
    assert [len(x) for x in pdus.split_text("a" * 400, ref16=True)] == [152, 152, 96]
    assert [len(x) for x in pdus.split_text("가" * 140)] == [67, 67, 6]
    assert [len(x) for x in pdus.split_text("가" * 140, ref16=True)] == [66, 66, 8]


def test_a_packet_stays_one_binary_sms():
    out = pdus.encode_submits("+821055500001", bytes(140))
    assert len(out) == 1 and pdus.decode_submit(out[0][0]).udh == b""
    with pytest.raises(pdus.PduError):
        pdus.encode_submits("+821055500001", bytes(141))


def test_cli_prints_the_pdus_one_per_line():
    import subprocess
    import sys
    from pathlib import Path

    text = TEXTS["hangul-230"]
    r = subprocess.run([str(Path(sys.executable).parent / "urelief"), "sms", "encode",
                        "--to", "+821055500001", "--text", text],
                       capture_output=True, text=True, check=True)
    lines = r.stdout.split()
    assert len(lines) == 4 and r.stderr.strip() == "4 SMS, UCS-2"
    assert reassemble(lines) == text
    bad = subprocess.run([str(Path(sys.executable).parent / "urelief"), "sms", "encode",
                          "--to", "+82-10", "--text", "x"], capture_output=True, text=True)
    assert bad.returncode != 0 and "bad number" in bad.stderr
