"""Silent-caller links over HTTP against a real server process (log gateway): the token is
random and stored only as a hash, the first phone holds the link, dead links all look alike,
sending is rate-limited per number and audited, hostile bodies are refused with a reason, and
signalling takes one answer per offer."""

from __future__ import annotations

import hashlib
import json
import re

import httpx
from sqlalchemy import create_engine, text
from srvkit import GW

SERVER_ENV = {"URELIEF_KNOCK_LINKS_PER_NUMBER": "2", "URELIEF_KNOCK_LINK_REFILL_S": "3600"}
OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def texted(api, number: str) -> str:
    out = api("boss").get("/api/sms/outbox").json()["items"]
    body = [m["text"] for m in out if m["to"] == number][-1]
    m = re.fullmatch(r"Your link: (http://\S+/k/([A-Za-z0-9_-]{32}))", body)
    assert m, body
    return m.group(1)


def phone(server) -> httpx.Client:
    """A phone's browser: keeps its cookies."""
    return httpx.Client(timeout=10)


def test_link_life_and_what_is_stored(server, api):
    number = "+821011110001"
    r = api().post("/api/knock", json={"msisdn": number})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["sms"]["ok"] and got["incident"]["source"] == "silent_caller"
    url = texted(api, number)
    token = url.rsplit("/", 1)[1]
    eng = create_engine(server.seed.db_url)
    with eng.connect() as c:
        row = c.execute(text("SELECT token_hash, holder_hash FROM caller_links WHERE id=:i"),
                        {"i": got["link_id"]}).one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert row.holder_hash is None
        dump = " ".join(str(v) for t in ("notifications", "incident_events", "audit_entries")
                        for r in c.execute(text(f"SELECT * FROM {t}")) for v in r)
        assert token not in dump  # the link itself is nowhere in the database

    a, b = phone(server), phone(server)
    page = a.get(url)
    assert page.status_code == 200 and "Messages" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "k" in a.cookies
    with eng.connect() as c:
        assert c.execute(text("SELECT holder_hash FROM caller_links WHERE id=:i"),
                         {"i": got["link_id"]}).scalar()
    # A second phone (a forwarded SMS) gets what a wrong token gets: nothing.
    for client, u in ((b, url), (b, url[:-4] + "AAAA"), (a, url[:-4] + "AAAA")):
        dead = client.get(u)
        assert dead.status_code == 404 and "<script" not in dead.text
    assert b.post(url + "/chat", json={"text": "hi"}).status_code == 404

    # Hostile bodies: refused with a reason, nothing stored.
    for body in ({"lat": 91, "lon": 0, "accuracy_m": 5}, {"lat": "37", "lon": 0, "accuracy_m": 5},
                 {"lat": 37.5, "lon": 127}, {"lat": float("nan")}, [], {"lat": True, "lon": 0,
                                                                       "accuracy_m": 1}):
        r = a.post(url + "/position", content=json.dumps(body))
        assert r.status_code == 422, (body, r.text)
    assert a.post(url + "/position", content=b"{not json").status_code == 422
    assert a.post(url + "/position", content=b"[" * 40_000).status_code == 422
    assert a.post(url + "/chat", json={"text": "   "}).status_code == 422
    assert a.post(url + "/position", json={"lat": 37.5, "lon": 127.0,
                                           "accuracy_m": 20}).status_code == 200
    line = a.post(url + "/chat", json={"text": "x" * 2000}).json()
    assert len(line["text"]) == 500

    inc = api().get(f"/api/incidents/{got['incident']['id']}").json()
    assert inc["last_lat"] == 37.5 and inc["last_accuracy_m"] == 20
    kinds = [e["kind"] for e in inc["events"]]
    assert kinds.count("position") == 1 and kinds.count("chat") == 1

    # Signalling: one desk answers an offer; a stale or second answer is refused.
    oid = "abcdefgh1234"
    assert a.post(url + "/signal", json={"type": "offer", "offer_id": oid,
                                         "sdp": OFFER}).status_code == 200
    assert a.post(url + "/signal", json={"type": "offer", "offer_id": oid,
                                         "sdp": "<script>"}).status_code == 422
    sig = f"/api/incidents/{got['incident']['id']}/knock/signal"
    view = api().get(f"/api/incidents/{got['incident']['id']}/knock").json()
    assert view["video"]["offer_id"] == oid and not view["video"]["answered"]
    assert api().post(sig, json={"type": "answer", "offer_id": "zzzzzzzz",
                                 "sdp": OFFER}).status_code == 409
    assert api().post(sig, json={"type": "answer", "offer_id": oid, "sdp": OFFER}).status_code == 200
    assert api("boss").post(sig, json={"type": "answer", "offer_id": oid,
                                       "sdp": OFFER}).status_code == 409
    assert api("aud").post(sig, json={"type": "restart"}).status_code == 403

    # Closing the incident kills the link for its holder too.
    assert api().post(f"/api/incidents/{got['incident']['id']}/resolve").status_code == 200
    assert a.get(url).status_code == 404
    assert a.post(url + "/chat", json={"text": "still there?"}).status_code == 404
    eng.dispose()


def test_sending_is_rate_limited_audited_and_checked(server, api):
    number = "+821011110002"
    assert api("aud").post("/api/knock", json={"msisdn": number}).status_code == 403
    for bad in ("01012345678", "+0123", "+82 10 1234", "+8210<script>"):
        r = api().post("/api/knock", json={"msisdn": bad})
        assert r.status_code == 422, (bad, r.text)
    assert api().post("/api/knock", json={"msisdn": number}).status_code == 200
    assert api().post("/api/knock", json={"msisdn": number}).status_code == 200
    r = api().post("/api/knock", json={"msisdn": number})
    assert r.status_code == 429 and "too many links" in r.json()["detail"]
    audit = api("boss").get("/api/audit", params={"action": "knock.link", "object_id": number,
                                                   "limit": 10}).json()["items"]
    assert [e["outcome"] for e in audit] == ["denied"]  # newest first; the refused one
    sent = api("boss").get("/api/audit", params={"action": "knock.link", "limit": 100}).json()
    sent = [e for e in sent["items"] if e["detail"].get("to") == number]
    assert len(sent) == 2 and all(e["outcome"] == "ok" and e["username"] == "disp" for e in sent)


def test_an_aml_caller_can_be_reached(server, api):
    r = httpx.post(server.http + "/aml", content=(
        "v=1&device_number=%2B821011110003&location_latitude=37.55&location_longitude=126.99"
        "&location_accuracy=30&location_time=1700000000000"),
        headers={"Content-Type": "application/x-www-form-urlencoded", **GW}, timeout=10)
    assert r.status_code in (200, 202), r.text
    aml = next(i for i in api().get("/api/incidents").json()["items"]
               if i["caller_msisdn"] == "+821011110003")
    r = api().post("/api/knock", json={"incident_id": aml["id"]})
    assert r.status_code == 200 and r.json()["incident"]["id"] == aml["id"]
    assert texted(api, "+821011110003")
    device_inc = api().post("/api/knock", json={"incident_id": 999999})
    assert device_inc.status_code == 404

