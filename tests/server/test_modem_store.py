"""The USB-modem gateway loses nothing: SMS wait in the modem's SIM store until the server's
database has them. `urelief server --sms-gateway modem:LINK` is killed (-9) while a terminal's
SMS keep arriving, restarted, then the modem's USB is pulled and put back mid-stream: every
packet the modem received is stored exactly once, and /healthz shows the outage."""

from __future__ import annotations

import httpx
from modem_rig import Handset, ModemOnPty
from sqlalchemy import create_engine, select
from srvkit import DEVICE, SECRET, Device, ServerProc, report, seed
from test_modem_server import PARENTS, POLICE, TERMINAL, until
from urelief import protocol as p
from urelief.registry.models import DevicePacket
from urelief.sim.modem.network import SmsNetwork


def _stored(db_url: str) -> list[int]:
    eng = create_engine(db_url)
    with eng.connect() as c:
        rows = [r[0] for r in c.execute(select(DevicePacket.counter)
                                        .where(DevicePacket.device_id == DEVICE))]
    eng.dispose()
    return rows


def _health(server) -> dict:
    return httpx.get(server.http + "/healthz", timeout=5).json()["sms_gateway"]


def test_kill_and_unplug_lose_no_sms(tmp_path):
    net = SmsNetwork(delivery_ms=20)
    rig = ModemOnPty(net, msisdn=POLICE, link=str(tmp_path / "ttyUSB-modem"))
    for number in (TERMINAL, *PARENTS):
        net.attach(number, Handset(), rig.clock)
    rig.wait(lambda: rig.modem.ready and rig.modem.registered)
    db_url = f"sqlite:///{tmp_path / 'urelief.db'}"
    seed(db_url)
    env = {"URELIEF_SMS_GATEWAY": f"modem:{rig.port}", "URELIEF_GUARDIAN_SMS": "0"}
    server = ServerProc(tmp_path, db_url, env)
    sent: list[int] = []

    def arrive(n: int) -> None:  # n of the terminal's position reports reach the modem
        for _ in range(n):
            pkt = dev.seal(p.Position(report=report()))
            sent.append(dev.counter)
            assert net.deliver(POLICE, pkt, sender=TERMINAL)

    try:
        server.start()
        dev = Device(DEVICE, SECRET, server, counter=1000)
        arrive(5)
        until(lambda: len(_stored(db_url)) >= 2)
        server.kill()  # kill -9 with SMS still coming
        arrive(5)
        rig.wait(lambda: len(rig.modem.storage) >= 5)  # waiting on the SIM, not lost
        server = ServerProc(tmp_path, db_url, env)
        server.start()
        until(lambda: sorted(_stored(db_url)) == sent)
        assert rig.modem.storage == {}  # each deleted after its commit

        rig.unplug()  # mid-stream: the cable out, SMS still arriving at the modem
        arrive(4)
        health = until(lambda: (h := _health(server))["state"] == "unplugged" and h)
        assert health["ok"] is False and health["outages"] == 1
        rig.replug()
        arrive(3)
        until(lambda: sorted(_stored(db_url)) == sent, 15)
        health = until(lambda: (h := _health(server))["state"] == "ready" and h)
        assert health["ok"] is True and health["outages"] == 1
    finally:
        server.stop()
        rig.close()
    got = _stored(db_url)
    assert sorted(got) == sent and len(got) == len(set(got)) == 17  # each exactly once
    assert rig.errors == []
