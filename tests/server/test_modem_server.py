"""`urelief server --sms-gateway modem:PORT` end to end: the server process opens a pseudo-
terminal behind which the project's modem emulator sits on an emulated SMS network. A terminal's
SOS sent as a data SMS comes in as +CMT, is acked by SMS through +CMGS, and the guardians are
texted through the same modem; an AML SMS from a phone opens an AML incident."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from modem_rig import Handset, ModemOnPty
from srvkit import DEVICE, SECRET, Device, ServerProc, report, seed
from urelief import protocol as p
from urelief.sim.modem.network import SmsNetwork

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


def test_server_on_a_usb_modem(tmp_path):
    net = SmsNetwork(delivery_ms=20)
    rig = ModemOnPty(net, msisdn=POLICE)
    phones = {n: Handset() for n in (TERMINAL, *PARENTS)}
    for number, phone in phones.items():
        net.attach(number, phone, rig.clock)
    rig.wait(lambda: rig.modem.ready and rig.modem.registered)
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
