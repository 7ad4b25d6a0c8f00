"""The host's SMS PDU codec (urelief.sms.pdu, CPython) against the same ModemManager vectors that
hold the firmware's codec (test_modem_sms.py): the two are written independently and agree
because both match these."""

import pytest
from modem_vectors import mm_sms
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
