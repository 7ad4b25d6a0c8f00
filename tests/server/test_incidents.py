"""Incident lifecycle and API over real HTTP, with the device on real UDP: role checks, the
downlinks each action sends, questions answered by presses, drills, guardian SMS, audit."""

from __future__ import annotations

import time

import pytest
from srvkit import DEVICE2, OTHER_SCHOOL_DEVICE, SECRET2, SECRET3, Device, report
from urelief import protocol as p

BOTH_BACKENDS = True  # SQLite, and PostgreSQL when URELIEF_TEST_PG_URL is set


@pytest.fixture(scope="module")
def dev(server):
    return Device(DEVICE2, SECRET2, server, counter=1000)


def open_incident(dev, api, drill=False) -> dict:
    assert dev.exchange(dev.seal(p.Sos(report=report(drill=drill)))).ok
    items = api().get("/api/incidents").json()["items"]
    hit = [i for i in items if i["device_id"] == dev.id and i["open_counter"] == dev.counter]
    assert hit, (dev.counter, [(i["id"], i["device_id"], i["open_counter"], i["status"]) for i in items])
    return hit[0]


def test_lifecycle_with_downlinks_questions_and_answers(server, dev, api):
    inc = open_incident(dev, api)
    assert inc["status"] == "open" and inc["child"] == "Kim Minji"
    c = api("disp")
    r = c.post(f"/api/incidents/{inc['id']}/acknowledge", json={"note": "on it"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    seen = dev.recv_type(p.MsgType.ACK, lambda m: m.level == p.AckLevel.SEEN)
    assert seen.message == p.Ack(acked_counter=inc["open_counter"], level=p.AckLevel.SEEN)

    r = c.post(f"/api/incidents/{inc['id']}/question",
               json={"text": "Are you hurt?", "kind": "yes_no", "timeout_s": 60})
    assert r.status_code == 200 and r.json()["downlink"] == "udp"
    q = dev.recv_type(p.MsgType.QUESTION).message
    assert isinstance(q, p.Question) and q.kind == p.QuestionKind.YES_NO
    assert dev.exchange(dev.seal(p.TapReply(report=report(), question_id=q.question_id,
                                            presses=2))).ok

    assert c.post(f"/api/incidents/{inc['id']}/dispatch").json()["status"] == "dispatched"
    assert dev.recv_type(p.MsgType.ACK, lambda m: m.level == p.AckLevel.DISPATCHED)
    # Later packets of this alert are acked at the level reached: the child feels "help sent".
    assert dev.exchange(dev.seal(p.Position(report=report()))).message.level == \
        p.AckLevel.DISPATCHED
    assert c.post(f"/api/incidents/{inc['id']}/acknowledge").status_code == 409
    r = c.post(f"/api/incidents/{inc['id']}/resolve", json={"note": "child safe with police"})
    assert r.json()["status"] == "resolved" and r.json()["closed_at"]
    assert dev.recv_type(p.MsgType.STAND_DOWN).message == p.StandDown(reason=p.StandDownReason.RESOLVED,
                                             sos_counter=inc["open_counter"])

    full = c.get(f"/api/incidents/{inc['id']}").json()
    kinds = [e["kind"] for e in full["events"]]
    assert {"status", "position", "question", "answer", "notification"} <= set(kinds)
    answer = next(e for e in full["events"] if e["kind"] == "answer")
    assert answer["payload"] == {"question_id": q.question_id, "presses": 2}
    card = full["subscriber"]
    assert card["full_name"] == "Kim Minji" and card["school"]["name"] == "Hanbit Elementary"
    assert [g["phone"] for g in card["guardians"]] == ["+821055500001", "+821055500002"]
    assert inc["id"] not in [i["id"] for i in c.get("/api/incidents").json()["items"]]
    assert inc["id"] in [i["id"] for i in c.get("/api/incidents?state=closed").json()["items"]]


def notes_when(api, iid, pred, timeout_s=10.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        notes = api().get(f"/api/incidents/{iid}").json()["notifications"]
        if pred(notes) or time.monotonic() > deadline:
            return notes
        time.sleep(0.05)


def test_guardians_get_an_sms_with_delivery_status(server, dev, api):
    inc = open_incident(dev, api)
    notes = notes_when(api, inc["id"], lambda ns: len(ns) == 2
                       and all(n["status"] == "queued" and n["gateway_ref"] for n in ns))
    assert sorted(n["to"] for n in notes) == ["+821055500001", "+821055500002"]
    # The outbox gateway holds them until the external gateway says what became of them.
    assert all(n["status"] == "queued" and n["gateway_ref"] for n in notes)
    assert {n["stage"] for n in notes} == {"opened"} and all(n["attempts"] == 1 for n in notes)
    sms = {m["ref"]: m for m in api("boss").get("/api/sms/outbox").json()["items"]}
    assert "Kim Minji pressed SOS" in sms[notes[0]["gateway_ref"]]["text"]
    ref = notes[0]["gateway_ref"]
    assert api().post("/sms/status", json={"ref": ref, "status": "sent"}).status_code == 200
    assert api().get(f"/api/incidents/{inc['id']}").json()["notifications"][0]["status"] == "sent"
    r = api().post("/sms/status", json={"ref": ref, "status": "delivered"})
    assert r.status_code == 200
    notes = api().get(f"/api/incidents/{inc['id']}").json()["notifications"]
    assert notes[0]["status"] == "delivered"
    assert api().post("/sms/status", json={"ref": "nope", "status": "sent"}).status_code == 404
    # Dispatch and the false alarm each tell both guardians too.
    api().post(f"/api/incidents/{inc['id']}/dispatch")
    assert dev.recv_type(p.MsgType.ACK, lambda m: m.level == p.AckLevel.DISPATCHED)  # (read, or the next exchange
    api().post(f"/api/incidents/{inc['id']}/false_alarm")     # would take it for its ack)
    assert isinstance(dev.recv_type(p.MsgType.STAND_DOWN).message, p.StandDown)
    assert api().get(f"/api/incidents/{inc['id']}").json()["status"] == "false_alarm"
    notes = notes_when(api, inc["id"], lambda ns: len(ns) == 6)
    assert [n["stage"] for n in notes] == ["opened"] * 2 + ["dispatched"] * 2 + ["false_alarm"] * 2
    sms = {m["ref"]: m for m in api("boss").get("/api/sms/outbox").json()["items"]}
    assert "false alarm; Kim Minji is safe" in sms[notes[-1]["gateway_ref"]]["text"]


def test_a_resolved_alert_tells_each_guardian_the_child_is_safe(server, dev, api):
    inc = open_incident(dev, api)
    notes_when(api, inc["id"], lambda ns: len(ns) == 2)
    api("disp").post(f"/api/incidents/{inc['id']}/resolve", json={"note": "found at home"})
    assert isinstance(dev.recv_type(p.MsgType.STAND_DOWN).message, p.StandDown)
    notes = notes_when(api, inc["id"], lambda ns: len(ns) == 4)
    assert [n["stage"] for n in notes] == ["opened"] * 2 + ["resolved"] * 2
    assert sorted(n["to"] for n in notes[2:]) == ["+821055500001", "+821055500002"]
    sms = {m["ref"]: m for m in api("boss").get("/api/sms/outbox").json()["items"]}
    for n in notes[2:]:
        assert sms[n["gateway_ref"]]["text"] == (
            f"U-Relief: the alert for Kim Minji is closed; Kim Minji is safe (incident {inc['id']}).")


def test_drill_is_never_dispatched_and_closes_as_drill(server, dev, api):
    inc = open_incident(dev, api, drill=True)
    assert inc["is_drill"]
    c = api("disp")
    r = c.post(f"/api/incidents/{inc['id']}/dispatch")
    assert r.status_code == 409 and "drill" in r.json()["detail"]
    assert c.post(f"/api/incidents/{inc['id']}/resolve").json()["status"] == "drill"
    assert isinstance(dev.recv_type(p.MsgType.STAND_DOWN).message, p.StandDown)
    time.sleep(0.3)  # the sender would have queued them by now
    assert c.get(f"/api/incidents/{inc['id']}").json()["notifications"] == []  # no guardian SMS


def test_duress_cancel_keeps_the_alert_live_and_flags_it(server, dev, api):
    inc = open_incident(dev, api)
    assert dev.exchange(dev.seal(p.Cancel(report=report(), duress=True))).ok
    got = api().get(f"/api/incidents/{inc['id']}").json()
    assert got["status"] == "open" and got["duress"] is True
    api().post(f"/api/incidents/{inc['id']}/resolve")


def test_roles_and_school_scope(server, dev, api):
    inc = open_incident(dev, api)
    other = Device(OTHER_SCHOOL_DEVICE, SECRET3, server)
    assert other.exchange(other.seal(p.Sos(report=report()))).ok
    # A school admin sees only their own school's incidents …
    mine = api("s2admin").get("/api/incidents").json()["items"]
    assert mine and all(i["school_id"] == server.seed.other_school_id for i in mine)
    # Another school's incident is refused (403, as the registry refuses another school's
    # pupil), never answered as if it did not exist, and the refusal is audited.
    r = api("s2admin").get(f"/api/incidents/{inc['id']}")
    assert r.status_code == 403 and "another school" in r.json()["detail"]
    assert "Kim Minji" not in r.text
    r = api("s2admin").post(f"/api/incidents/{inc['id']}/acknowledge")
    assert r.status_code == 403
    assert api("s2admin").get("/api/incidents/999999").status_code == 404
    # … and neither they nor an auditor may act; a bad token is 401.
    assert api("s2admin").post(f"/api/incidents/{mine[0]['id']}/acknowledge").status_code == 403
    assert api("aud").post(f"/api/incidents/{inc['id']}/acknowledge").status_code == 403
    assert api("aud").get(f"/api/incidents/{inc['id']}").status_code == 200
    import httpx

    r = httpx.get(server.http + "/api/incidents", headers={"Authorization": "Bearer urt_x_y"})
    assert r.status_code == 401
    assert api("disp").post(f"/api/incidents/{inc['id']}/teleport").status_code == 404
    r = api("disp").post(f"/api/incidents/{inc['id']}/question", json={"kind": "yes_no"})
    assert r.status_code == 422  # what was asked is required
    # Every access and action is in the audit log, denials included.
    api("disp").post(f"/api/incidents/{inc['id']}/acknowledge")
    log = api("aud").get("/api/audit", params={"limit": 500}).json()["items"]
    actions = {(e["action"], e["outcome"], e["username"]) for e in log}
    assert ("incident.acknowledge", "ok", "disp") in actions
    assert ("incident.read", "ok", "aud") in actions
    assert ("incident.acknowledge", "denied", "aud") in actions
    refused = [(e["action"], e["object_id"], e["school_id"]) for e in log
               if e["username"] == "s2admin" and e["outcome"] == "denied"]
    assert sorted(refused) == [("incident.acknowledge", str(inc["id"]), server.seed.school_id),
                               ("incident.acknowledge", str(mine[0]["id"]), server.seed.other_school_id),
                               ("incident.read", str(inc["id"]), server.seed.school_id)]
    assert api("aud").get("/api/audit/verify").json()["intact"] is True


def test_pagination(server, api):
    page1 = api().get("/api/incidents", params={"state": "all", "limit": 2}).json()
    page2 = api().get("/api/incidents", params={"state": "all", "limit": 2, "offset": 2}).json()
    assert page1["total"] == page2["total"] >= 4
    assert len(page1["items"]) == 2
    assert not {i["id"] for i in page1["items"]} & {i["id"] for i in page2["items"]}
    assert api().get("/api/incidents", params={"limit": 0}).status_code == 422
