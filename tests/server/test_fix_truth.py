"""What the API tells the dispatcher is true: a fix's time is the event time minus its age, an
older fix (a late packet, a last-known position) never replaces a newer one, on the incident and
on the device; a cell-only alert is placed by the operator's cell file; a dispatcher can ask for
a position now, set the tracking rate, and set a question's choices and timeout."""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest
from srvkit import DEVICE, DEVICE2, SECRET, SECRET2, Device, report
from urelief import protocol as p

BOTH_BACKENDS = True
CELLS = Path(tempfile.mkdtemp(prefix="urelief-cells-")) / "cells.csv"
CELLS.write_text(
    "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n"
    "LTE,450,5,4660,123456789,0,127.0276,37.4979,850,12,1,1500000000,1600000000,0\n"
    "LTE,450,5,oops,1,0,x,y,1,1,1,1,1,0\n")
SERVER_ENV = {"URELIEF_CELL_LOCATIONS": str(CELLS)}


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def aged(lat, lon, age_s, acc=8) -> p.Report:
    return p.Report(**{**report(lat, lon, acc).__dict__, "fix_age_s": age_s})


def incident_of(api, device_id) -> dict:
    items = [i for i in api().get("/api/incidents").json()["items"] if i["device_id"] == device_id]
    return items[0]


def downlink(dev: Device, kind: p.MsgType):
    for _ in range(5):
        m = dev.recv()
        assert m is not None, f"no {kind.name} reached the device"
        if m.type == kind:
            return m.message
    raise AssertionError(f"no {kind.name}")


def test_fix_time_is_event_time_minus_age_and_older_never_replaces(server, api):
    dev = Device(DEVICE, SECRET, server)
    now = time.time()
    assert dev.exchange(dev.seal(p.Sos(report=aged(37.50, 127.00, 900)))).ok
    inc = incident_of(api, DEVICE)
    assert abs(at(inc["last_fix_at"]) - (now - 900)) < 5, inc["last_fix_at"]
    assert inc["summary"]["fix"]["fix_age_s"] == 900
    # A last-known fix older than the one shown (3 h): kept in the track, not shown as latest.
    assert dev.exchange(dev.seal(p.Position(report=aged(37.40, 126.90, 3 * 3600)))).ok
    inc = incident_of(api, DEVICE)
    assert inc["last_lat"] == pytest.approx(37.50) and abs(at(inc["last_fix_at"]) - (now - 900)) < 5
    dev_row = api("boss").get(f"/api/devices/{DEVICE}").json()
    assert dev_row["last_lat"] == pytest.approx(37.50)
    assert abs(at(dev_row["last_fix_at"]) - (now - 900)) < 5
    # A fresh fix moves both.
    assert dev.exchange(dev.seal(p.Position(report=aged(37.51, 127.01, 2)))).ok
    inc = incident_of(api, DEVICE)
    assert inc["last_lat"] == pytest.approx(37.51) and abs(at(inc["last_fix_at"]) - now) < 10
    assert inc["summary"]["fix"]["trusted"] is True
    assert api("boss").get(f"/api/devices/{DEVICE}").json()["last_lat"] == pytest.approx(37.51)


def test_cell_only_alert_is_placed_by_the_cell_file(server, api):
    dev = Device(DEVICE2, SECRET2, server)
    rep = p.Report(time_s=int(time.time()), time_source=p.TimeSource.NETWORK, cell=True,
                   mcc="450", mnc="05", tac=4660, cell_id=123456789, rat=p.Rat.LTE_M,
                   signal_dbm=-97, battery_pct=60)
    assert dev.exchange(dev.seal(p.Sos(report=rep))).ok
    inc = incident_of(api, DEVICE2)
    assert inc["last_lat"] is None
    cell = inc["summary"]["cell"]
    assert cell["mcc"] == "450" and cell["cell_id"] == 123456789
    assert cell["located"] == {"lat": pytest.approx(37.4979), "lon": pytest.approx(127.0276),
                               "range_m": 850}
    # A cell the file does not know stays a cell.
    other = p.Report(**{**rep.__dict__, "cell_id": 42})
    assert dev.exchange(dev.seal(p.Position(report=other))).ok
    assert incident_of(api, DEVICE2)["summary"]["cell"]["located"] is None


def test_position_now_tracking_rate_and_question_settings_reach_the_device(server, api):
    dev = Device(DEVICE2, SECRET2, server, counter=1000)
    assert dev.exchange(dev.seal(p.Position(report=report()))).ok  # fresh route
    inc = incident_of(api, DEVICE2)
    r = api().post(f"/api/incidents/{inc['id']}/locate")
    assert r.status_code == 200 and r.json()["downlink"] == "udp", r.text
    t = downlink(dev, p.MsgType.TRACKING)
    assert t.fast_interval_s == 15 and t.fast_for_s >= 60 and t.slow_interval_s == 0
    r = api().post(f"/api/incidents/{inc['id']}/tracking",
                   json={"fast_interval_s": 30, "fast_for_s": 1800, "slow_interval_s": 300})
    assert r.status_code == 200, r.text
    t = downlink(dev, p.MsgType.TRACKING)
    assert (t.fast_interval_s, t.fast_for_s, t.slow_interval_s) == (30, 1800, 300)
    r = api().post(f"/api/incidents/{inc['id']}/tracking", json={"fast_interval_s": 2})
    assert r.status_code == 422
    r = api().post(f"/api/incidents/{inc['id']}/question",
                   json={"text": "Which floor?", "kind": "press_n", "choices": 5, "timeout_s": 120})
    assert r.status_code == 200, r.text
    q = downlink(dev, p.MsgType.QUESTION)
    assert (q.kind, q.choices, q.timeout_s) == (p.QuestionKind.PRESS_N, 5, 120)
    events = api().get(f"/api/incidents/{inc['id']}").json()["events"]
    sent = [e["payload"] for e in events if e["kind"] == "downlink"]
    assert [s["type"] for s in sent] == ["tracking", "tracking", "question"]
    assert all(s["channel"] == "udp" for s in sent)


def test_no_location_consent_no_position_shown_and_the_reader_is_told_why(server, api):
    """The position is stored but withheld from every reader (list, detail with its track,
    device) while the pupil's location consent is not in force; a new consent shows it."""
    dev = Device(DEVICE, SECRET, server, counter=2000)
    assert dev.exchange(dev.seal(p.Sos(report=report(37.52, 127.02)))).ok
    boss, sid = api("boss"), server.seed.subscriber_id
    location = [c for c in boss.get(f"/api/subscribers/{sid}/consents").json()["items"]
                if c["scope"] == "location" and c["active"]]
    assert location and incident_of(api, DEVICE)["location_withheld"] is None
    for c in location:
        assert boss.post(f"/api/consents/{c['id']}/withdraw").status_code == 200
    try:
        inc = incident_of(api, DEVICE)
        why = inc["location_withheld"]
        assert why and "no active location consent" in why and "Kim Minji" in why
        assert (inc["last_lat"], inc["last_lon"], inc["summary"]["fix"]) == (None, None, None)
        detail = api().get(f"/api/incidents/{inc['id']}").json()
        assert detail["last_lat"] is None and detail["location_withheld"] == why
        tracks = [e["payload"] for e in detail["events"] if e["kind"] in ("position", "cell")]
        assert tracks and all(t == {"withheld": why} for t in tracks)
        assert detail["device"]["last_lat"] is None and detail["device"]["location_withheld"]
        dev_row = boss.get(f"/api/devices/{DEVICE}").json()
        assert (dev_row["last_lat"], dev_row["location_withheld"]) == (None, why)
        assert '37.52' not in api().get(f"/api/incidents/{inc['id']}").text
    finally:
        r = boss.post(f"/api/subscribers/{sid}/consents",
                      json={"given_by": "Kim Jiwoo", "scope": "location"})
        assert r.status_code == 201, r.text
    inc = incident_of(api, DEVICE)
    assert inc["location_withheld"] is None and inc["last_lat"] == pytest.approx(37.52)
