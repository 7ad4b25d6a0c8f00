"""The terminal's main job, end to end: a hold on the button becomes an incident at the police
server, and the police's acks come back as silent vibrations - over UDP, over SMS when there is
no data, across a power cut, and without a GNSS fix; a dispatcher's question is felt and the
child answers it by presses ("Knock Knock")."""

from __future__ import annotations

from urelief.sim import events
from urelief.sim.rig import SEOUL, PoliceServer, pattern_name


def incidents_of(police: PoliceServer, device_id: int) -> list[dict]:
    return [i for i in police.incidents() if i["device_id"] == device_id]


def said(out: str, name: str, **fields) -> bool:
    """The console holds event `name` with these fields (urelief.sim.events)."""
    return events.first(out, name, **fields) is not None


def acked(out: str, counter) -> bool:
    return said(out, "ack", counter=counter)


def felt(rig) -> list[str]:
    return [pattern_name(d) for _, d in rig.patterns()]


def position_events(police, iid: int) -> list[dict]:
    return [e for e in police.incident(iid)["events"] if e["kind"] == "position"]


def test_hold_opens_an_incident_and_the_acks_are_felt(rig, police):
    r = rig().start()
    r.wait_ready()
    r.hold(3500)
    dev = r.dev
    # within a few device seconds: stored, sent over UDP, acked (received), felt
    assert r.until(lambda: said(dev.output, "ack", level=1) and felt(r) == ["SENT"], timeout_ms=5000), \
        dev.output[-1500:]
    incs = incidents_of(police, r.cfg.device_id)
    assert len(incs) == 1
    inc = incs[0]
    assert inc["status"] == "open" and inc["child"] == "Kim Minji" and not inc["is_drill"]
    assert abs(inc["last_lat"] - SEOUL[0]) < 1e-5 and abs(inc["last_lon"] - SEOUL[1]) < 1e-5
    detail = police.incident(inc["id"])
    assert detail["device"]["battery_pct"] == 78  # the cell at 80 % SoC, as the firmware reads it
    pos = position_events(police, inc["id"])[0]["payload"]
    assert pos["trusted"] and pos["fix_age_s"] <= 2 and pos["time_source"] == "gnss"
    assert pos["cell"]["mcc"] == "450" and pos["cell"]["rat"] == "lte_m"
    assert [e["transport"] for e in detail["events"] if e["kind"] == "status"] == ["udp"]
    r.until(lambda: not r.dev.pin(10).level, timeout_ms=2000)
    assert felt(r) == ["SENT"]
    # a dispatcher looks at it: the device feels SEEN
    police.act(inc["id"], "acknowledge")
    assert r.until(lambda: said(dev.output, "ack", level=2), timeout_ms=5000), dev.output[-1500:]
    r.dev.run_for(1500)
    assert felt(r) == ["SENT", "SEEN"]
    assert "Traceback" not in dev.output
    print("heap peak", dev.heap_peak)


def test_without_data_coverage_the_sos_goes_by_sms(rig, police):
    r = rig()
    r.modem.faults.errors["AT+CNACT="] = ["ERROR"] * 100  # the network refuses a data context
    r.start()
    r.dev.wait_line(events.line("link", state="down"), timeout_ms=60_000)
    r.hold(3500)
    dev = r.dev
    assert r.until(lambda: said(dev.output, "ack", level=1), timeout_ms=15_000), dev.output[-1500:]
    assert said(dev.output, "sent", channel="sms") and not said(dev.output, "sent", channel="udp")
    assert r.net.received and r.net.received[0].to == "+82112"
    incs = incidents_of(police, r.cfg.device_id)
    assert len(incs) == 1 and incs[0]["last_lat"] is not None
    status = [e for e in police.incident(incs[0]["id"])["events"] if e["kind"] == "status"]
    assert [e["transport"] for e in status] == ["sms"]
    r.dev.run_for(1500)
    assert felt(r) == ["SENT"]  # the ack came back by SMS


def test_power_cut_after_the_press_the_outbox_sends_it_after_power_on(rig, police):
    r = rig().start()
    r.wait_ready()
    dev = r.dev
    r.modem.faults.no_answer = True  # the modem stalls: the SOS is stored but cannot leave
    r.hold(3500)
    assert r.until(lambda: said(dev.output, "stored", kind="sos"), timeout_ms=6000)
    dev.run_for(200)
    assert incidents_of(police, r.cfg.device_id) == []
    dev.clock.post(r.modem.power_off)  # the board's power cut takes the modem with it
    dev.power_cycle()
    assert r.until(lambda: dev.boots == 2
                   and said(events.since(dev.output, "boot"), "ack", level=1),
                   timeout_ms=40_000), dev.output[-2000:]
    assert said(dev.output, "outbox_resumed", packets=1)
    incs = incidents_of(police, r.cfg.device_id)
    assert len(incs) == 1 and incs[0]["open_counter"] == 1
    r.dev.run_for(1500)
    assert felt(r) == ["SENT"]


def test_without_a_fix_the_sos_goes_at_once_without_position(rig, police):
    r = rig(gnss_ttff_ms=None).start()
    r.wait_ready()
    r.hold(3500)
    dev = r.dev
    assert r.until(lambda: said(dev.output, "ack", level=1), timeout_ms=5000), dev.output[-1500:]
    assert said(dev.output, "stored", kind="sos", fix=0)
    incs = incidents_of(police, r.cfg.device_id)
    assert len(incs) == 1 and incs[0]["last_lat"] is None  # no position: flagged, not invented
    cells = [e["payload"] for e in police.incident(incs[0]["id"])["events"] if e["kind"] == "cell"]
    assert cells and cells[0]["cell"]["mcc"] == "450"  # the serving cell is the location there is
    assert police.incident(incs[0]["id"])["device"]["battery_pct"] is not None


def test_a_lost_fix_goes_as_last_known_with_its_age(rig, police):
    r = rig(gnss_ttff_ms=1000).start()
    r.wait_ready()
    dev = r.dev
    dev.clock.post(lambda: r.gnss.power(False))  # indoors: the receiver hears nothing more
    dev.run_for(30_000)
    r.hold(3500)
    assert r.until(lambda: said(dev.output, "ack", level=1), timeout_ms=5000), dev.output[-1500:]
    incs = incidents_of(police, r.cfg.device_id)
    assert len(incs) == 1
    pos = position_events(police, incs[0]["id"])[0]["payload"]
    assert pos["fix_age_s"] >= 30 and not pos["trusted"]
    assert abs(pos["lat"] - SEOUL[0]) < 1e-5


def _raised(rig, police):
    r = rig().start()
    r.wait_ready()
    r.hold(3500)
    assert r.until(lambda: said(r.dev.output, "ack", level=1) and r.motor, timeout_ms=5000), r.dev.output[-1500:]
    r.dev.run_for(1500)
    (inc,) = incidents_of(police, r.cfg.device_id)
    return r, inc["id"]


def answer_acked(r, what: dict, timeout_ms: float) -> bool:
    """Run until the device stored the answer `what` and the server acked its counter."""
    assert r.until(lambda: said(r.dev.output, "stored", kind="answer", **what), timeout_ms=timeout_ms), \
        r.dev.output[-1500:]
    c = events.first(r.dev.output, "stored", kind="answer", **what)["counter"]
    return r.until(lambda: acked(r.dev.output, c), timeout_ms=5000)


def answers(police, iid: int) -> list[dict]:
    return [e["payload"] for e in police.incident(iid)["events"] if e["kind"] == "answer"]


def test_a_question_is_felt_and_answered_by_presses(rig, police):
    r, iid = _raised(rig, police)
    dev = r.dev
    police.act(iid, "question", kind="yes_no", text="Is the person who hurt you with you now?",
               timeout_s=60)
    assert r.until(lambda: said(dev.output, "question", id=1), timeout_ms=5000), dev.output[-1500:]
    dev.run_for(2000)
    assert felt(r)[-1] == "QUESTION"
    r.child.presses(2, after_ms=500)  # two presses: "no"
    assert answer_acked(r, {"question": 1, "presses": 2}, 10_000)
    assert answers(police, iid) == [{"question_id": 1, "presses": 2}]
    dev.run_for(1500)
    assert felt(r)[-1] == "SENT"  # the answer reached the police
    assert len(incidents_of(police, r.cfg.device_id)) == 1  # the presses raised no new alert
    # a press-N question left unanswered: "no answer" (0 presses) when its timeout passes
    police.act(iid, "question", kind="press_n", choices=4, text="How many people are there?",
               timeout_s=10)
    assert r.until(lambda: said(dev.output, "question", id=2), timeout_ms=5000)
    assert answer_acked(r, {"question": 2, "presses": 0}, 15_000)
    assert answers(police, iid)[1] == {"question_id": 2, "presses": 0}


def _cancellable(rig, police):
    from urelief.provisioning import identity
    from urelief.sim.rig import GATEWAY_NUMBER, SERVER_NAME

    cfg = identity.new_device(server=(SERVER_NAME, police.udp[1]), sms_number=GATEWAY_NUMBER,
                               cancel={"presses": 4, "duress_presses": 5})
    police.provision(cfg)
    r = rig(cfg=cfg).start()
    r.wait_ready()
    r.hold(3500)
    assert r.until(lambda: said(r.dev.output, "ack", level=1) and r.motor, timeout_ms=5000), r.dev.output[-1500:]
    r.dev.run_for(1500)
    (inc,) = incidents_of(police, cfg.device_id)
    return r, inc["id"]


def kinds(police, iid: int) -> list[str]:
    return [e["kind"] for e in police.incident(iid)["events"]]


def test_the_secret_cancel_pattern_cancels_the_alert(rig, police):
    r, iid = _cancellable(rig, police)
    r.child.presses(3, after_ms=300)  # a wrong count does nothing
    r.dev.run_for(3000)
    assert not said(r.dev.output, "stored", kind="cancel")
    r.child.presses(4, after_ms=300)
    assert r.until(lambda: said(r.dev.output, "stored", kind="cancel"), timeout_ms=8000), r.dev.output[-1500:]
    assert r.until(lambda: "cancel" in kinds(police, iid), timeout_ms=10_000)
    r.dev.run_for(1500)
    assert felt(r)[-1] == "CANCEL_ACK"
    assert not police.incident(iid)["duress"]


def test_a_duress_cancel_looks_the_same_but_the_alert_stays_live(rig, police):
    r, iid = _cancellable(rig, police)
    r.child.presses(5, after_ms=300)
    assert r.until(lambda: said(r.dev.output, "stored", kind="cancel"), timeout_ms=8000), r.dev.output[-1500:]
    assert r.until(lambda: "duress" in kinds(police, iid), timeout_ms=10_000)
    r.dev.run_for(1500)
    assert felt(r)[-1] == "CANCEL_ACK"  # what the abuser may notice: the same as a cancel
    assert police.incident(iid)["duress"]
    n_felt = len(felt(r))
    police.act(iid, "acknowledge")  # the police carry on; the device stays silent
    r.dev.run_for(5000)
    assert len(felt(r)) == n_felt and said(r.dev.output, "ack", level=2)


def test_the_heartbeat_and_a_low_battery_reach_the_police(rig, police):
    from urelief.provisioning import identity
    from urelief.sim.rig import GATEWAY_NUMBER, SERVER_NAME

    cfg = identity.new_device(server=(SERVER_NAME, police.udp[1]), sms_number=GATEWAY_NUMBER,
                               checkin_s=600)
    police.provision(cfg)
    r = rig(cfg=cfg).start()
    dev = r.dev
    r.wait_ready()
    # a minute after boot: the first CHECK_IN, acked; the police see battery and firmware
    assert r.until(lambda: said(dev.output, "stored", kind="check_in"), timeout_ms=90_000), \
        dev.output[-1500:]
    n = events.first(dev.output, "stored", kind="check_in")["counter"]
    assert r.until(lambda: acked(dev.output, n), timeout_ms=10_000), dev.output[-1500:]
    devs = {d["id"]: d for d in police.api.get("/api/devices").raise_for_status().json()["items"]}
    seen = devs[cfg.device_id]
    assert seen["firmware_version"] == "0.3.0" and 3700 < seen["battery_mv"] < 4200
    assert police.incidents() == [] or all(i["device_id"] != cfg.device_id for i in police.incidents())
    # the cell runs down: one LOW_BATTERY, felt as its pattern, once the gauge (looked at every
    # 5 min, smoothed) has seen it
    dev.clock.post(lambda: r.battery.set_soc(0.05))
    assert r.until(lambda: said(dev.output, "stored", kind="low_battery"), timeout_ms=1_300_000), \
        dev.output[-1500:]
    n = events.first(dev.output, "stored", kind="low_battery")["counter"]
    assert r.until(lambda: acked(dev.output, n), timeout_ms=10_000), dev.output[-1500:]
    dev.run_for(2000)
    assert "LOW_BATTERY" in felt(r)
    # and the next heartbeat a check-in period later
    assert r.until(lambda: events.count(dev.output, "stored", kind="check_in") >= 2,
                   timeout_ms=1_300_000), dev.output[-1500:]
    assert events.count(dev.output, "stored", kind="low_battery") == 1  # told once, not at every look
