"""Outbound SMS gateways: the host PDU codec (urelief.sms.pdu) both ways round and against an
independent decoder/encoder (smspdudecoder); the USB-modem gateway over pyserial on a real
pseudo-terminal, against the project's modem emulator (A7670 dialect, SMS network behind it)
and against a scripted modem for the +CDS delivery reports the emulator does not send; and the
simulator-network gateway."""

from __future__ import annotations

import asyncio
import os
import threading
import tty

import pytest
from modem_rig import Handset, ModemOnPty
from smspdudecoder.easy import read_incoming_sms, read_outgoing_sms
from urelief.server.modem import AtModemGateway
from urelief.sim.modem.network import Sms, SmsNetwork
from urelief.sim.sms_gateway import SimNetworkGateway
from urelief.sms import pdu as pdus

BODIES = [b"\x11\x01" + bytes(range(60)), "UR1:EQEAwP/uAAAAAQ", "Hello [U-Relief] {x} €",
          "김민지 SOS"]


@pytest.mark.parametrize("body", BODIES, ids=["8bit", "text-form", "gsm7-ext", "ucs2"])
def test_submit_reads_back_here_and_in_smspdudecoder(body):
    pdu, n = pdus.encode_submit("+821055500001", body)
    assert n == len(pdu) - 1  # AT+CMGS counts the TPDU only
    assert read_outgoing_sms(pdu.hex()) == {"recipient": "+821055500001", "content": body}
    sub = pdus.decode_submit(pdu)
    assert (sub.number, sub.body) == ("+821055500001", body)


@pytest.mark.parametrize("body", BODIES, ids=["8bit", "text-form", "gsm7-ext", "ucs2"])
def test_deliver_from_the_network_side_decodes(body):
    pdu = pdus.encode_deliver("+447700900123", body)
    got = pdus.decode(pdu)
    assert (got.sender, got.body) == ("+447700900123", body)
    assert read_incoming_sms(pdu.hex())["content"] == body


def test_too_long_and_truncated_are_refused():
    with pytest.raises(pdus.PduError):
        pdus.encode_submit("+8210", bytes(141))
    with pytest.raises(pdus.PduError):
        pdus.encode_submit("+8210", "x" * 161)
    pdu = pdus.encode_deliver("+8210", "hello there")
    with pytest.raises(pdus.PduError):
        pdus.decode(pdu[:-3])


def status_report(mr: int, status: int) -> bytes:
    """SMS-STATUS-REPORT as +CDS carries it (23.040 §9.2.2.3), written out by hand."""
    ra = bytes([12, 0x91]) + bytes.fromhex("281055050010")  # +821055500001
    ts = bytes.fromhex("62112311000000")
    return b"\x00" + bytes([0x06, mr]) + ra + ts + ts + bytes([status])


class FakeModem:
    """A scripted modem on the master side of a pty: answers the init commands, takes one
    AT+CMGS (or refuses it), and can push +CMT/+CDS."""

    def __init__(self, fail_cmgs: bool = False, answers: dict[str, str] | None = None):
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self.slave = slave
        self.fail_cmgs = fail_cmgs
        self.answers = answers or {}  # command -> what the modem writes instead of OK
        self.commands: list[str] = []
        self.pdus: list[bytes] = []
        threading.Thread(target=self._run, daemon=True).start()

    def write(self, text: str) -> None:
        os.write(self.master, text.encode())

    def _run(self) -> None:
        buf = b""
        while True:
            try:
                buf += os.read(self.master, 1024)
            except OSError:
                return
            while True:
                if b"\x1a" in buf and self.commands and self.commands[-1].startswith("AT+CMGS"):
                    hexpdu, buf = buf.split(b"\x1a", 1)
                    self.pdus.append(bytes.fromhex(hexpdu.decode()))
                    self.write("\r\n+CMGS: 42\r\n\r\nOK\r\n")
                    continue
                cut = buf.find(b"\r")
                if cut < 0:
                    break
                cmd, buf = buf[:cut].decode(), buf[cut + 1:]
                self.commands.append(cmd)
                if cmd.startswith("AT+CMGS="):
                    self.write("\r\n+CMS ERROR: 331\r\n" if self.fail_cmgs else "\r\n> ")
                elif cmd in self.answers:
                    self.write(self.answers[cmd])
                else:
                    self.write("\r\nOK\r\n")

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


def test_usb_modem_gateway_sends_receives_and_tracks_delivery():
    modem = FakeModem()
    gw = AtModemGateway(modem.port)
    inbound: list[tuple[str, object]] = []
    statuses: list[tuple[str, str]] = []
    gw.on_status = lambda ref, status, error: statuses.append((ref, status))

    async def main():
        got = asyncio.Event()

        async def on_sms(sender, payload):
            inbound.append((sender, payload))
            got.set()

        await gw.start(asyncio.get_running_loop(), on_sms)
        assert modem.commands[:6] == ["AT", "ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,1,0,1,0",
                                      "AT+CMGL=4"]  # SMS to the SIM store, the store read
        r = await gw.send("+821055500001", b"\x11\x81ack")
        assert r.ok and r.ref == "mr42"
        assert pdus.decode_submit(modem.pdus[-1]).body == b"\x11\x81ack"
        # A device's packet arrives (+CMT), then the delivery report for our message (+CDS).
        deliver = pdus.encode_deliver("+821099990001", b"\x11\x01payload")
        modem.write(f"\r\n+CMT: ,{len(deliver) - 1}\r\n{deliver.hex().upper()}\r\n")
        report = status_report(42, 0x00)
        modem.write(f"\r\n+CDS: {len(report) - 1}\r\n{report.hex().upper()}\r\n")
        await asyncio.wait_for(got.wait(), 5)
        for _ in range(100):
            if statuses:
                break
            await asyncio.sleep(0.02)
        await gw.close()

    try:
        asyncio.run(main())
    finally:
        modem.close()
    assert inbound == [("+821099990001", b"\x11\x01payload")]
    assert statuses == [("mr42", "delivered")]


def test_usb_modem_gateway_sorts_whole_lines():
    """A +CMTI that the modem writes inside a command's answer is a URC, not part of the answer
    (lines sorted whole, as the firmware's AT engine does); the SMS it names is then read."""
    deliver = pdus.encode_deliver("+821099990001", b"\x11\x01stored")
    modem = FakeModem(answers={
        "AT+CSQ": '\r\n+CMTI: "SM",3\r\n+CSQ: 20,99\r\n\r\nOK\r\n',
        "AT+CMGR=3": f"\r\n+CMGR: 0,,{len(deliver) - 1}\r\n{deliver.hex().upper()}\r\n\r\nOK\r\n"})
    gw = AtModemGateway(modem.port)
    inbound: list = []

    async def main():
        async def on_sms(sender, payload):
            inbound.append((sender, payload))
            return {"status": "accepted"}

        await gw.start(asyncio.get_running_loop(), on_sms)
        answer = await asyncio.to_thread(gw.command, "AT+CSQ")
        for _ in range(100):
            if "AT+CMGD=3" in modem.commands:
                break
            await asyncio.sleep(0.02)
        await gw.close()
        return answer

    try:
        answer = asyncio.run(main())
    finally:
        modem.close()
    assert answer == ["+CSQ: 20,99"]
    assert inbound == [("+821099990001", b"\x11\x01stored")]
    assert modem.commands.index("AT+CMGR=3") < modem.commands.index("AT+CMGD=3")


def test_usb_modem_gateway_reports_a_refused_submit():
    modem = FakeModem(fail_cmgs=True)
    gw = AtModemGateway(modem.port)

    async def main():
        await gw.start(asyncio.get_running_loop(), None)
        r = await gw.send("+821055500001", "hello")
        await gw.close()
        return r

    try:
        r = asyncio.run(main())
    finally:
        modem.close()
    assert not r.ok and "+CMS ERROR: 331" in r.error



def test_usb_modem_gateway_against_the_modem_emulator():
    net = SmsNetwork(delivery_ms=20)
    rig = ModemOnPty(net, msisdn="+821099900000")
    parent = Handset()
    net.attach("+821055500001", parent, rig.clock)
    gw = AtModemGateway(rig.port)

    async def main():
        got: asyncio.Queue = asyncio.Queue()

        async def on_sms(sender, payload):
            await got.put((sender, payload))

        rig.wait(lambda: rig.modem.ready and rig.modem.registered)
        await gw.start(asyncio.get_running_loop(), on_sms)
        sent = [await gw.send("+821055500001", b"\x11\x81ack"),
                await gw.send("+821055500001", "U-Relief: 김민지 pressed SOS")]
        # A device's SMS to the gateway's number lands in the SIM store, announced by +CMTI
        # (AT+CNMI=2,1 took effect), read by +CMGR and deleted once the server has it.
        assert net.deliver("+821099900000", b"\x11\x01payload", sender="+821077700007")
        inbound = await asyncio.wait_for(got.get(), 5)
        # Out of coverage: the module refuses the submit and the gateway says so.
        rig.call(lambda: rig.modem.set_coverage(False))
        rig.wait(lambda: not rig.modem.registered)
        refused = await gw.send("+821055500001", "hello")
        await gw.close()
        return sent, inbound, refused

    try:
        sent, inbound, refused = asyncio.run(main())
        rig.wait(lambda: len(parent.inbox) == 2)
    finally:
        rig.close()
    assert [(r.ok, r.ref) for r in sent] == [(True, "mr1"), (True, "mr2")]
    assert [(m.sender, m.body) for m in parent.inbox] == [
        ("+821099900000", b"\x11\x81ack"), ("+821099900000", "U-Relief: 김민지 pressed SOS")]
    assert inbound == ("+821077700007", b"\x11\x01payload")
    assert not refused.ok and "+CMS ERROR: 331" in refused.error
    commands = [text.strip() for _, way, text in rig.modem.log if way == "rx"]
    assert commands[:5] == ["AT", "ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,1,0,1,0"]
    assert "AT+CMGR=0" in commands and "AT+CMGD=0" in commands and rig.modem.storage == {}
    assert rig.errors == []


def test_sim_network_gateway_both_ways():
    net = SmsNetwork()
    gw = SimNetworkGateway(net, number="+82112")
    got: list = []

    class Phone:
        def sms_delivered(self, sms):
            got.append(sms)

    class Clock:  # delivers at once, on the caller's thread
        def post(self, fn):
            fn()

        def call_later(self, ms, fn):
            fn()

    net.attach("+821012345678", Phone(), Clock())

    async def main():
        seen = []

        async def on_sms(sender, payload):
            seen.append((sender, payload))

        await gw.start(asyncio.get_running_loop(), on_sms)
        ok = await gw.send("+821012345678", b"\x11\x81")
        missing = await gw.send("+820000", "x")
        net.submit(Sms("+821012345678", "+82112", b"\x11\x01up"))
        await asyncio.sleep(0.05)
        return ok, missing, seen

    ok, missing, seen = asyncio.run(main())
    assert ok.ok and not missing.ok
    assert got[0].body == b"\x11\x81" and got[0].sender == "+82112"
    assert seen == [("+821012345678", b"\x11\x01up")]
