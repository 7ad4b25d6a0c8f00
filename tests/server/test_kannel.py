"""`urelief server --sms-gateway kannel:…` against a real Kannel (Debian's bearerbox + smsbox)
and Kannel's own fake SMSC (kannel-extras' fakesmsc) standing in for the operator: a terminal's
SOS comes in through the sms-service get-url as binary user data, its ack goes back through
sendsms as one 8-bit SMS, each guardian's 200+-character Hangul text leaves as a concatenated
UCS-2 SMS that smspdudecoder reassembles to the exact text, and the fake SMSC's delivery reports
(dlr-url) mark the notifications delivered on the API."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

import httpx
import pytest
from smscheck import reassemble
from srvkit import DEVICE, GATEWAY_TOKEN, SECRET, Device, ServerProc, report, seed
from test_modem_server import LONG_KO, until
from urelief import protocol as p
from urelief.sms import pdu as pdus

FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
POLICE = "+82112"
TERMINAL = "+821077700007"
PARENTS = ("+821055500001", "+821055500002")


def _kannel_or_skip() -> None:
    missing = [b for b in ("bearerbox", "smsbox") if shutil.which(b) is None]
    missing += [] if os.access(FAKESMSC, os.X_OK) else [FAKESMSC]
    if missing:
        why = f"Kannel missing: {', '.join(missing)} (apt install kannel kannel-extras)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)  # in CI a missing gateway is an error (.ci/run installs it)
        pytest.skip(why)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


KANNEL_CONF = """\
group = core
admin-port = {admin}
admin-password = test
smsbox-port = {box}
box-allow-ip = 127.0.0.1
log-file = "{dir}/bearerbox.log"
log-level = 1
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = operator
port = {smsc}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {box}
sendsms-port = {sendsms}
log-file = "{dir}/smsbox.log"
log-level = 1

group = sendsms-user
username = urelief
password = secret
max-messages = 10

group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "{server}/sms/kannel/inbound?token={token}&from=%p&to=%P&coding=%c&data=%b"
"""


class Kannel:
    """bearerbox + smsbox on free ports, and fakesmsc connected to the bearerbox as the
    operator's SMSC; `received` is what the operator got (fakesmsc's lines: from to type …)."""

    def __init__(self, workdir: Path, server_http: str):
        admin, box, self.smsc, sendsms = _free_ports(4)
        self.sendsms = f"http://urelief:secret@127.0.0.1:{sendsms}/cgi-bin/sendsms"
        conf = workdir / "kannel.conf"
        conf.write_text(KANNEL_CONF.format(admin=admin, box=box, smsc=self.smsc, sendsms=sendsms,
                                           dir=workdir, server=server_http, token=GATEWAY_TOKEN))
        self.dir, self.procs, self.received = workdir, [], []
        self._spawn("bearerbox", "-v", "4", str(conf))
        until(lambda: _listening(box))
        self._spawn("smsbox", "-v", "4", str(conf))
        until(lambda: _listening(sendsms))
        self._fake = None

    def _spawn(self, *argv: str, **kw) -> subprocess.Popen:
        log = open(self.dir / f"{Path(argv[0]).name}.out", "ab")  # noqa: SIM115 (kept by Popen)
        proc = subprocess.Popen(argv, stdout=log, stderr=kw.pop("stderr", log), **kw)
        self.procs.append(proc)
        return proc

    def operator_sends(self, sender: str, to: str, data: bytes) -> None:
        """fakesmsc delivers one binary SMS to Kannel, then stays to print what Kannel sends."""
        msg = f"{sender} {to} data {quote_from_bytes(data, safe='')}"
        self._fake = self._spawn(FAKESMSC, "-H", "127.0.0.1", "-r", str(self.smsc), "-m", "1",
                                 msg, stderr=subprocess.PIPE)
        threading.Thread(target=self._read, args=(self._fake.stderr,), daemon=True).start()

    def _read(self, out) -> None:
        """fakesmsc logs each SMS Kannel sends it as `Got message N: <from to type data>`, type
        data (8-bit, url-encoded) or text, or `… udh UDH data DATA` for a part with a header."""
        with open(self.dir / "fakesmsc.out", "ab") as log:
            for line in out:
                log.write(line)
                got = re.search(r"Got message \d+: <(.*)>", line.decode("latin-1"))
                if got:
                    self.received.append(got.group(1).split(" "))

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _octets(field: str) -> bytes:
    """A fakesmsc field: form-url-encoded ('+' a space octet)."""
    return unquote_to_bytes(field.replace("+", "%20"))


def _submit_hex(to: str, udh: bytes, ucs2: bytes) -> str:
    """The SMS-SUBMIT a handset would have received for one of Kannel's UCS-2 parts."""
    tpdu = (bytes([0x01 | (0x40 if udh else 0), 0]) + pdus.encode_address(to)
            + bytes([0x00, 0x08, len(udh) + len(ucs2)]) + udh + ucs2)
    return (b"\x00" + tpdu).hex().upper()


def test_sos_and_guardians_through_kannel(tmp_path):
    _kannel_or_skip()
    db_url = f"sqlite:///{tmp_path / 'urelief.db'}"
    s = seed(db_url)
    templates = tmp_path / "templates.json"
    templates.write_text(json.dumps({"ko": {"opened": LONG_KO}}, ensure_ascii=False))
    (http_port,) = _free_ports(1)
    server_http = f"http://127.0.0.1:{http_port}"
    kannel = Kannel(tmp_path, server_http)
    server = ServerProc(tmp_path, db_url, {
        "URELIEF_SMS_GATEWAY": f"kannel:{kannel.sendsms}?from={quote(POLICE)}",
        "URELIEF_KANNEL_DLR_URL": f"{server_http}/sms/kannel/status?token={GATEWAY_TOKEN}",
        "URELIEF_SMS_LANGUAGE": "ko", "URELIEF_SMS_TEMPLATES": str(templates)})
    try:
        server.start(http_port=http_port)
        api = httpx.Client(base_url=server.http, timeout=10,
                           headers={"Authorization": f"Bearer {s.tokens['disp']}"})
        dev = Device(DEVICE, SECRET, server, counter=900)
        kannel.operator_sends(TERMINAL, POLICE, dev.seal(p.Sos(report=report())))

        # The ack: one 8-bit SMS from Kannel to the terminal, sealed for it.
        ack = until(lambda: [m for m in kannel.received if m[1] == TERMINAL], 15)[0]
        assert ack[2] == "data"
        opened = p.decode_downlink(_octets(ack[3]), device_id=DEVICE, key_id=1,
                                   secret=SECRET, replay=dev.downlinks)
        assert opened.ok and opened.message.acked_counter == dev.counter

        inc = next(i for i in api.get("/api/incidents").json()["items"]
                   if i["device_id"] == DEVICE)
        events = api.get(f"/api/incidents/{inc['id']}").json()["events"]
        assert any(e["transport"] == "sms" and e["device_counter"] == dev.counter for e in events)
        want = LONG_KO.format(child="Kim Minji", incident=inc["id"])
        assert len(want) >= 200
        n_parts = -(-len(want) // 67)

        # The fake SMSC's reports (8: taken, 1: delivered) come back through dlr-url.
        def delivered():
            notes = api.get(f"/api/incidents/{inc['id']}").json()["notifications"]
            return (len(notes) == 2 and all(n["status"] == "delivered" for n in notes)
                    and notes)
        notes = until(delivered, 15)
        assert sorted(n["to"] for n in notes) == list(PARENTS)
        assert all(len(n["gateway_ref"].split(",")) == n_parts for n in notes)
        api.close()
    finally:
        server.stop()
        kannel.close()

    # What the operator got for each guardian, read by an independent decoder.
    for number in PARENTS:
        got = [m for m in kannel.received if m[1] == number]
        assert len(got) == n_parts and all(m[2] == "udh" and m[4] == "data" for m in got), got
        series = [_submit_hex(number, _octets(m[3]), _octets(m[5]))
                  for m in got]
        assert reassemble(series) == want
