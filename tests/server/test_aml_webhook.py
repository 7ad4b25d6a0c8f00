"""AML over real HTTP: every published SMS sample through the SMS gateway webhook (text, and
the Android data SMS as packed GSM-7 bytes) and the HTTPS bodies, HMAC checked."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from srvkit import GW

SAMPLES = json.loads((Path(__file__).parents[1] / "data/aml/aml_samples.json").read_text())
SERVER_ENV = {"URELIEF_AML_HMAC_KEY": "AML"}
BOTH_BACKENDS = True  # SQLite, and PostgreSQL when URELIEF_TEST_PG_URL is set


@pytest.mark.parametrize("s", SAMPLES["sms_samples"], ids=lambda s: s["id"])
def test_aml_sms_opens_an_incident_and_warns_on_wrong_ml(server, api, s):
    r = httpx.post(server.http + "/sms/inbound", headers=GW, json={"from": "+447700900123", "text": s["text"]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == "accepted" and out["incident_id"]
    if s.get("ml_matches_length") is False:
        assert any(w.startswith("ml=") for w in out["warnings"])
    inc = api().get(f"/api/incidents/{out['incident_id']}").json()
    assert inc["source"] == "aml" and inc["trigger"] == "aml"
    if s["fields"].get("pm") != "N":
        assert inc["last_lat"] == pytest.approx(out["location"]["lat"])


def test_android_data_sms_packed_gsm7(server):
    s = next(x for x in SAMPLES["sms_samples"] if "packed_user_data_hex" in x)
    r = httpx.post(server.http + "/sms/inbound", headers=GW,
                   json={"from": "+13105550100", "data_hex": s["packed_user_data_hex"]})
    assert r.json()["location"]["lat"] == 37.42175
    assert r.json()["location"]["imei"] == "358239059042542"


def test_same_caller_joins_the_open_incident(server, api):
    v2 = SAMPLES["sms_samples"][2]
    a = httpx.post(server.http + "/sms/inbound", headers=GW, json={"from": "+1555", "text": v2["text"]}).json()
    b = httpx.post(server.http + "/sms/inbound", headers=GW, json={"from": "+1555", "text": v2["text"]}).json()
    assert a["incident_id"] == b["incident_id"]  # v2 carries the caller's number (en=)
    inc = api().get(f"/api/incidents/{a['incident_id']}").json()
    assert inc["caller_msisdn"] == "+15555555555"
    assert sum(e["kind"] == "position" for e in inc["events"]) >= 2
    v1 = SAMPLES["sms_samples"][1]["text"]  # v1 has no number: the SMS sender's is used
    c = httpx.post(server.http + "/sms/inbound", headers=GW, json={"from": "+449999", "text": v1}).json()
    assert api().get(f"/api/incidents/{c['incident_id']}").json()["caller_msisdn"] == "+449999"


def test_https_bodies_with_and_without_hmac(server, api):
    plain, signed = SAMPLES["https_samples"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = httpx.post(server.http + "/aml", content=plain["body"], headers=form)
    assert r.status_code == 401 and r.json()["detail"]["reason"] == "no_hmac"  # a key is set
    r = httpx.post(server.http + "/aml", content=signed["body"], headers=form)
    assert r.status_code == 200 and r.json()["location"]["authenticated"] is True
    assert r.json()["location"]["method"] == "gnss"
    tampered = signed["body"].replace("0.85732", "1.85732")
    r = httpx.post(server.http + "/aml", content=tampered, headers=form)
    assert r.status_code == 401 and r.json()["detail"]["reason"] == "bad_hmac"


def test_unusable_aml_is_rejected_with_a_reason(server):
    r = httpx.post(server.http + "/sms/inbound", headers=GW, json={"from": "+1", "text": 'A"ML=1;rd=5'})
    assert r.status_code == 422 and r.json()["detail"]["reason"] == "no_position"
    r = httpx.post(server.http + "/aml", content="hello=1")
    assert r.status_code == 422 and r.json()["detail"]["reason"] == "not_aml"
    metrics = httpx.get(server.http + "/metrics").text
    assert 'urelief_packets_rejected_total{reason="aml_no_position"} 1.0' in metrics
    assert 'urelief_aml_received_total{result="ok",transport="sms"}' in metrics
