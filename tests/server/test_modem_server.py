"""`urelief server --sms-gateway modem:PORT` end to end: the server process opens a pseudo-
terminal behind which the project's modem emulator sits on an emulated SMS network. A terminal's
SOS sent as a data SMS comes in as +CMT, is acked by SMS through +CMGS, and the guardians are
texted through the same modem; an AML SMS from a phone opens an AML incident."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
from modem_rig import Handset, ModemOnPty
from smscheck import reassemble
from srvkit import DEVICE, SECRET, Device, ServerProc, report, seed
from urelief import protocol as p
from urelief.sim.modem.network import SmsNetwork
from urelief.sms import pdu as pdus

POLICE = "+82112"  # the server modem's own number
TERMINAL = "+821077700007"  # the child's terminal
PARENTS = ("+821055500001", "+821055500002")  # the seeded guardians
AML = json.loads((Path(__file__).parents[1] / "data/aml/aml_samples.json").read_text())



def until(predicate, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while not (got := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return got


def sms_world():
    """The SMS network with the police modem on a pty (registered) and a handset for the
    terminal and each parent."""
    net = SmsNetwork(delivery_ms=20)
    rig = ModemOnPty(net, msisdn=POLICE)
    phones = {n: Handset() for n in (TERMINAL, *PARENTS)}
    for number, phone in phones.items():
        net.attach(number, phone, rig.clock)
    rig.wait(lambda: rig.modem.ready and rig.modem.registered)
    return net, rig, phones


def test_server_on_a_usb_modem(tmp_path):
    net, rig, phones = sms_world()
    db_url = f"sqlite:///{tmp_path / 'urelief.db'}"
    s = seed(db_url)
    server = ServerProc(tmp_path, db_url, {"URELIEF_SMS_GATEWAY": f"modem:{rig.port}"})
    try:
        server.start()
        api = httpx.Client(base_url=server.http, timeout=10,
                           headers={"Authorization": f"Bearer {s.tokens['disp']}"})
        dev = Device(DEVICE, SECRET, server, counter=300)
        sos = dev.seal(p.Sos(report=report()))
        assert net.deliver(POLICE, sos, sender=TERMINAL)

        # The ack comes back by SMS, as 8-bit data, sealed for the terminal.
        ack_sms = until(lambda: phones[TERMINAL].inbox)[0]
        assert ack_sms.sender == POLICE and isinstance(ack_sms.body, bytes)
        ack = p.decode_downlink(ack_sms.body, device_id=DEVICE, key_id=1, secret=SECRET,
                                replay=dev.downlinks)
        assert ack.ok and ack.message.acked_counter == dev.counter

        inc = next(i for i in api.get("/api/incidents").json()["items"]
                   if i["device_id"] == DEVICE)
        for number in PARENTS:
            text = until(lambda n=number: phones[n].inbox)[0].body
            assert "Kim Minji pressed SOS" in text and f"incident {inc['id']}" in text

        def notes_sent():
            notes = api.get(f"/api/incidents/{inc['id']}").json()["notifications"]
            return all(n["status"] == "sent" for n in notes) and len(notes) == 2 and notes
        notes = until(notes_sent)
        assert sorted(n["to"] for n in notes) == list(PARENTS)
        assert all(n["gateway_ref"].startswith("mr") for n in notes)  # the modem's +CMGS refs
        events = api.get(f"/api/incidents/{inc['id']}").json()["events"]
        assert any(e["transport"] == "sms" and e["device_counter"] == dev.counter for e in events)

        # A phone's AML SMS through the same modem opens an AML incident.
        sample = min(AML["sms_samples"], key=lambda x: len(x["text"]))
        assert len(sample["text"]) <= 160  # one SMS
        assert net.deliver(POLICE, sample["text"], sender="+447700900123")
        aml = until(lambda: [i for i in api.get("/api/incidents").json()["items"]
                             if i["source"] == "aml"])
        assert aml[0]["caller_msisdn"]
        api.close()
    finally:
        server.stop()
        rig.close()
    assert rig.errors == []


LONG_KO = ("[U-Relief] {child} 학생이 방금 단말기로 긴급 구조 요청을 보냈습니다. 경찰 상황실이 "
           "신고를 접수했고 가장 가까운 순찰차가 학생의 위치로 이동하고 있습니다. 학생에게 "
           "전화하거나 문자를 보내지 마세요. 단말기가 울리면 학생이 위험해질 수 있습니다. "
           "경찰이 학생을 만나면 다시 알려 드리겠습니다. 문의는 112로 하시고 사건 번호 "
           "{incident}번을 말씀해 주세요. 학교에도 같은 내용이 전달되었습니다.")


def test_korean_guardian_text_goes_out_concatenated(tmp_path):
    """The Korean service with a centre's own (long) template: each guardian's text leaves the
    modem as a concatenated UCS-2 SMS that smspdudecoder reassembles to the exact text."""
    net, rig, phones = sms_world()
    db_url = f"sqlite:///{tmp_path / 'urelief.db'}"
    s = seed(db_url)
    templates = tmp_path / "templates.json"
    templates.write_text(json.dumps({"ko": {"opened": LONG_KO}}, ensure_ascii=False))
    server = ServerProc(tmp_path, db_url, {"URELIEF_SMS_GATEWAY": f"modem:{rig.port}",
                                           "URELIEF_SMS_LANGUAGE": "ko",
                                           "URELIEF_SMS_TEMPLATES": str(templates)})
    try:
        server.start()
        api = httpx.Client(base_url=server.http, timeout=10,
                           headers={"Authorization": f"Bearer {s.tokens['disp']}"})
        dev = Device(DEVICE, SECRET, server, counter=700)
        assert net.deliver(POLICE, dev.seal(p.Sos(report=report())), sender=TERMINAL)
        ack = until(lambda: phones[TERMINAL].inbox)[0]
        assert isinstance(ack.body, bytes) and ack.udh == b""  # the ack: one binary SMS
        inc = next(i for i in api.get("/api/incidents").json()["items"]
                   if i["device_id"] == DEVICE)
        want = LONG_KO.format(child="Kim Minji", incident=inc["id"])
        assert len(want) >= 200
        n_parts = -(-len(want) // 67)
        for number in PARENTS:
            got = until(lambda n=number: len(phones[n].inbox) >= n_parts and phones[n].inbox)
            assert len(got) == n_parts and all(m.udh for m in got)

        def delivered_to_modem():
            notes = api.get(f"/api/incidents/{inc['id']}").json()["notifications"]
            return len(notes) == 2 and all(n["status"] == "sent" for n in notes) and notes
        notes = until(delivered_to_modem)
        assert all(len(n["gateway_ref"].split(",")) == n_parts for n in notes)  # a TP-MR each
        api.close()
    finally:
        server.stop()
        rig.close()
    # What the server wrote to the modem, read by an independent decoder, one message per
    # guardian: the exact text, from parts joined by their concatenation headers.
    rx = "".join(text for _, way, text in rig.modem.log if way == "rx")
    submits = re.findall(r"([0-9A-F]{40,})\x1a", rx)
    by_ref: dict[str, list[str]] = {}
    for h in submits:
        sub = pdus.decode_submit(bytes.fromhex(h))
        if sub.udh:
            by_ref.setdefault(f"{sub.number}/{pdus.concat_info(sub.udh)[0]}", []).append(h)
    assert len(by_ref) == 2
    for series in by_ref.values():
        assert reassemble(series) == want
    assert rig.errors == []
