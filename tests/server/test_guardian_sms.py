"""Guardian SMS as a family gets them: on open, dispatch and resolve / false alarm, never for a
drill, only with the pupil's guardian_sms consent and the guardian's `sms` preference; a failure
is retried with back-off until it expires; with no gateway configured nothing claims "sent"."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import create_engine, text
from srvkit import DEVICE2, SECRET2, Device, report
from urelief import protocol as p

# No SMS gateway (the default), and fast retries so the test sees several.
SERVER_ENV = {"URELIEF_SMS_GATEWAY": "log", "URELIEF_SMS_RETRY_BASE_S": "0.2",
              "URELIEF_SMS_RETRY_MAX_S": "0.4", "URELIEF_GUARDIAN_SMS_EXPIRE_S": "2.5"}


@pytest.fixture(scope="module")
def dev(server):
    return Device(DEVICE2, SECRET2, server, counter=5000)


def open_incident(dev, api, drill=False) -> dict:
    assert dev.exchange(dev.seal(p.Sos(report=report(drill=drill)))).ok
    items = api().get("/api/incidents?state=all").json()["items"]
    return next(i for i in items if i["device_id"] == dev.id and i["open_counter"] == dev.counter)


def close(dev, api, iid) -> None:
    api().post(f"/api/incidents/{iid}/resolve")
    assert isinstance(dev.recv_type(p.MsgType.STAND_DOWN).message, p.StandDown)  # read: not the next exchange's ack


def incident_when(api, iid, pred, timeout_s=10.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        got = api().get(f"/api/incidents/{iid}").json()
        if pred(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_no_gateway_never_says_sent_retries_then_expires(server, dev, api):
    assert "guardian_sms_without_gateway" in server.log_tail(20000)  # warned at start
    health = httpx.get(server.http + "/healthz").json()["sms_gateway"]
    assert health == {"name": "log", "ok": False, "detail": "not sent: no gateway configured"}
    inc = open_incident(dev, api)
    got = incident_when(api, inc["id"], lambda d: len(d["notifications"]) == 2
                        and all(n["attempts"] >= 3 for n in d["notifications"]))
    for n in got["notifications"]:
        assert n["status"] == "failed" and n["attempts"] >= 3  # tried again, with back-off
        assert n["error"] == "not sent: no gateway configured"
    got = incident_when(api, inc["id"], lambda d: all(
        n["next_attempt_at"] is None for n in d["notifications"]))
    for n in got["notifications"]:  # given up after guardian_sms_expire_s
        assert n["status"] == "failed" and n["error"].startswith("expired after")
        assert n["next_attempt_at"] is None
    attempts = [n["attempts"] for n in got["notifications"]]
    assert max(attempts) <= 8  # 0.2 s, 0.4 s, 0.4 s … within 2.5 s: back-off, not a hot loop
    time.sleep(0.6)
    again = api().get(f"/api/incidents/{inc['id']}").json()["notifications"]
    assert [n["attempts"] for n in again] == attempts  # expired ones stay given up
    close(dev, api, inc['id'])


def test_consent_and_preference_decide_who_is_texted(server, dev, api):
    eng = create_engine(server.seed.db_url)
    with eng.begin() as c:  # the father asked for a phone call, not SMS
        c.execute(text("UPDATE guardians SET notify = 'call' WHERE phone = '+821055500002'"))
    inc = open_incident(dev, api)
    got = incident_when(api, inc["id"], lambda d: len(d["notifications"]) >= 1)
    assert [n["to"] for n in got["notifications"]] == ["+821055500001"]
    close(dev, api, inc['id'])
    with eng.begin() as c:  # consent withdrawn: no SMS at all, and the dispatcher sees why
        c.execute(text("UPDATE consents SET withdrawn_at = CURRENT_TIMESTAMP "
                       "WHERE scope = 'guardian_sms'"))
    try:
        inc = open_incident(dev, api)
        got = incident_when(api, inc["id"], lambda d: any(
            e["kind"] == "notification" for e in d["events"]))
        assert got["notifications"] == []
        why = [e["payload"] for e in got["events"] if e["kind"] == "notification"]
        assert [{**w, "reason": w["reason"].split(" for ")[0]} for w in why] == [{
            "to": "+821055500001", "guardian": "Kim Jiwoo", "stage": "opened",
            "status": "not_sent", "reason": "no active guardian_sms consent recorded"}]
        close(dev, api, inc['id'])
    finally:
        with eng.begin() as c:
            c.execute(text("UPDATE consents SET withdrawn_at = NULL"))
            c.execute(text("UPDATE guardians SET notify = 'sms'"))
        eng.dispose()


def test_a_drill_texts_nobody(server, dev, api):
    inc = open_incident(dev, api, drill=True)
    assert inc["is_drill"]
    close(dev, api, inc['id'])
    sos = open_incident(dev, api)  # a real SOS after it: its SMS are queued, the drill's never
    incident_when(api, sos["id"], lambda d: len(d["notifications"]) == 2)
    assert api().get(f"/api/incidents/{inc['id']}").json()["notifications"] == []
    close(dev, api, sos['id'])
