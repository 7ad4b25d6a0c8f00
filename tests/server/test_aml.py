"""AML parsing against published samples (tests/data/aml): lenient on `ml`, strict on position."""

import json
from pathlib import Path

import pytest
from urelief.server import aml

SAMPLES = json.loads((Path(__file__).parents[1] / "data/aml/aml_samples.json").read_text())


@pytest.mark.parametrize("s", SAMPLES["sms_samples"], ids=lambda s: s["id"])
def test_sms_samples_parse_and_warn_on_wrong_ml(s):
    loc = aml.parse_sms(s["text"])
    want = s.get("expected_asserted_by_source", {})
    if "latitude" in want:
        assert loc.lat == pytest.approx(want["latitude"])
    if "imei" in want:
        assert loc.imei == want["imei"]
    if s.get("ml_matches_length") is False:
        assert any("ml=" in w for w in loc.warnings)
    elif s.get("ml_matches_length") is True:
        assert not any("ml=" in w for w in loc.warnings)
    if s["fields"].get("pm") == "N":
        assert loc.lat is None and loc.method == "none"


def test_android_packed_data_sms_unpacks_to_the_text():
    s = next(x for x in SAMPLES["sms_samples"] if "packed_user_data_hex" in x)
    packed = bytes.fromhex(s["packed_user_data_hex"])
    assert aml.gsm7_unpack(packed) == s["text"]
    import base64
    assert base64.b64decode(s["packed_user_data_base64_from_readme"]) == packed
    loc = aml.parse_sms(packed)
    assert (loc.lat, loc.lon, loc.imei) == (37.42175, -122.08461, "358239059042542")


def test_v2_position_accuracy_and_number():
    loc = aml.parse_sms(SAMPLES["sms_samples"][2]["text"])
    assert (loc.version, loc.lat, loc.lon, loc.accuracy_m) == (2, -37.42175, -122.08461, 2000.1)
    assert loc.msisdn == "+15555555555" and loc.mcc == "310" and loc.mnc == "260"
    assert loc.time.year == 2020


def test_https_bodies_and_hmac():
    plain, signed = SAMPLES["https_samples"]
    loc = aml.parse_https(plain["body"])
    assert loc.method == "gnss" and loc.msisdn == "+447477593102" and loc.authenticated is None
    assert aml.parse_https(signed["body"], hmac_key=b"AML").authenticated is True
    assert aml.parse_https(signed["body"], hmac_key=b"wrong").authenticated is False
    tampered = signed["body"].replace("0.85732", "0.85733")
    assert aml.parse_https(tampered, hmac_key=b"AML").authenticated is False


@pytest.mark.parametrize("bad,reason", [
    ("hello", "not_aml"),
    ('A"ML=9;lt=1;lg=2', "bad_version"),
    ('A"ML=1;rd=5;ml=12', "no_position"),
    ('A"ML=1;lt=95.0;lg=2;ml=20', "bad_position"),
    ('A"ML=2;lo=abc', "bad_position"),
])
def test_unusable_messages_are_rejected_with_a_reason(bad, reason):
    with pytest.raises(aml.AmlError) as e:
        aml.parse_sms(bad)
    assert e.value.reason == reason
