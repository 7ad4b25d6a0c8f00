"""The SMS gateway beside the police server (sim/rig.py SmsGateway) never loses what the SMS
network handed it: a server that is down is retried until it takes the message, and after a
restart (whose outbox numbers its refs from 1 again) the new acks still reach the devices. Each
modem holds its own number, so a device is handed only the SMS addressed to it."""

import threading

import httpx
import pytest
from urelief.sim.modem.network import Sms, SmsNetwork
from urelief.sim.rig import GATEWAY_NUMBER, SmsGateway, msisdn_for


class Clock:
    def __init__(self):
        self.holds = 0

    def hold_realtime(self):
        self.holds += 1
        return self

    def release(self):
        self.holds -= 1

    def post(self, fn):
        fn()


class Server:
    """The police server's webhook and outbox, down when told."""

    def __init__(self):
        self.down = False
        self.runs = 1
        self.inbound: list[dict] = []
        self.outbox: list[dict] = []
        self.api = httpx.Client(base_url="http://police", transport=httpx.MockTransport(self.handle))

    def handle(self, req: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=req)
        if req.url.path == "/sms/inbound":
            import json
            self.inbound.append(json.loads(req.content))
            return httpx.Response(200, json={"status": "stored"})
        return httpx.Response(200, json={"items": list(self.outbox)})


class Handset:
    def __init__(self):
        self.got: list[Sms] = []

    def sms_delivered(self, sms):
        self.got.append(sms)


class DirectClock(Clock):
    def call_later(self, ms, fn):
        fn()


@pytest.fixture
def world():
    net, server, clock = SmsNetwork(delivery_ms=0), Server(), Clock()
    gw = SmsGateway(net, server, clock)
    gw.RETRY_S = (0.01,)
    phones = {}
    for dev in ("dev-a", "dev-b"):
        phones[dev] = Handset()
        net.attach(msisdn_for(dev), phones[dev], DirectClock())
    yield net, server, clock, gw, phones
    gw.close()


def test_a_server_that_is_down_is_retried_until_it_takes_the_sms(world):
    net, server, clock, gw, _ = world
    server.down = True
    net.submit(Sms(msisdn_for("dev-a"), GATEWAY_NUMBER, b"\x11sos"))
    threading.Event().wait(0.2)
    assert server.inbound == [] and gw.retries > 0 and clock.holds == 1  # still with us
    server.down = False
    for _ in range(200):
        if server.inbound and clock.holds == 0:
            break
        threading.Event().wait(0.01)
    assert server.inbound == [{"from": msisdn_for("dev-a"), "data_hex": b"\x11sos".hex()}]
    assert clock.holds == 0


def test_each_ack_reaches_only_its_own_device_and_a_restart_does_not_silence_them(world):
    _, server, _, gw, phones = world
    a, b = msisdn_for("dev-a"), msisdn_for("dev-b")
    assert a != b
    server.outbox = [{"ref": "outbox-1", "to": a, "data_hex": "aa"},
                     {"ref": "outbox-2", "to": b, "data_hex": "bb"}]
    assert gw.pump() == 2 and gw.pump() == 0
    assert [m.body for m in phones["dev-a"].got] == [b"\xaa"]
    assert [m.body for m in phones["dev-b"].got] == [b"\xbb"]
    server.runs, server.outbox = 2, [{"ref": "outbox-1", "to": a, "data_hex": "cc"}]  # restarted
    assert gw.pump() == 1
    assert [m.body for m in phones["dev-a"].got] == [b"\xaa", b"\xcc"]


def test_a_number_is_one_modem_s():
    net = SmsNetwork()
    net.attach("+821000000001", Handset(), DirectClock())
    with pytest.raises(ValueError):
        net.attach("+821000000001", Handset(), DirectClock())
