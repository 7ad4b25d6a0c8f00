"""`urelief server --sms-gateway kannel:…` against a real Kannel (Debian's bearerbox + smsbox)
and Kannel's own fake SMSC (kannel-extras' fakesmsc) standing in for the operator: a terminal's
SOS comes in through the sms-service get-url as binary user data, its ack goes back through
sendsms as one 8-bit SMS, each guardian's 200+-character Hangul text leaves as a concatenated
UCS-2 SMS that smspdudecoder reassembles to the exact text, and the fake SMSC's delivery reports
(dlr-url) mark the notifications delivered on the API. An English text leaves as concatenated
GSM-7 (coding=0); an operator that refuses a number makes Kannel report failure (type 16), the
server retries with back-off, and the dashboard in real Chromium shows both states."""

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
STRANGER = "+821099990000"  # a phone that texts the police number


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
{smsc_extra}

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
get-url = "{server}/sms/kannel/inbound?token={token}&from=%p&to=%P&coding=%c&data=%b&udh=%u"
"""


class Kannel:
    """bearerbox + smsbox on free ports, and fakesmsc connected to the bearerbox as the
    operator's SMSC; `received` is what the operator got (fakesmsc's lines: from to type …)."""

    def __init__(self, workdir: Path, server_http: str, smsc_extra: str = ""):
        admin, box, self.smsc, sendsms = _free_ports(4)
        self.sendsms = f"http://urelief:secret@127.0.0.1:{sendsms}/cgi-bin/sendsms"
        conf = workdir / "kannel.conf"
        conf.write_text(KANNEL_CONF.format(admin=admin, box=box, smsc=self.smsc, sendsms=sendsms,
                                           dir=workdir, server=server_http, token=GATEWAY_TOKEN,
                                           smsc_extra=smsc_extra))
        self.dir, self.procs, self.received = workdir, [], []
        self._spawn("bearerbox", "-v", "4", str(conf))
        until(lambda: _listening(box))
        self._spawn("smsbox", "-v", "4", str(conf))
        until(lambda: _listening(sendsms))
        self._fake, self.sent = None, 0

    def _spawn(self, *argv: str, **kw) -> subprocess.Popen:
        log = open(self.dir / f"{Path(argv[0]).name}.out", "ab")  # noqa: SIM115 (kept by Popen)
        proc = subprocess.Popen(argv, stdout=log, stderr=kw.pop("stderr", log), **kw)
        self.procs.append(proc)
        return proc

    def operator_connects(self) -> None:
        """fakesmsc connects to the bearerbox as the operator's SMSC (interactive: each line on
        its stdin is one SMS to Kannel) and prints what Kannel sends it."""
        if self._fake is None:
            self._fake = self._spawn(FAKESMSC, "-H", "127.0.0.1", "-r", str(self.smsc),
                                     stdin=subprocess.PIPE, stderr=subprocess.PIPE)
            threading.Thread(target=self._read, args=(self._fake.stderr,), daemon=True).start()

    def operator_sends(self, sender: str, to: str, data: bytes, udh: bytes = b"") -> None:
        """One 8-bit SMS (with `udh`: one part of a concatenated one) from `sender` to Kannel."""
        self.operator_connects()
        body = f"data {quote_from_bytes(data, safe='')}" if not udh else (
            f"udh {quote_from_bytes(udh, safe='')} {quote_from_bytes(data, safe='')}")
        line = f"{sender} {to} {body}\n".encode()
        assert len(line) < 256, "fakesmsc reads at most 255 bytes a line"
        sent = self.sent
        self._fake.stdin.write(line)
        self._fake.stdin.flush()
        # fakesmsc select()s its stdin then fgets(): a second line written before it took the
        # first would sit in stdio's buffer unseen, so each waits for "sent message N".
        until(lambda: self.sent > sent, 10)

    def _read(self, out) -> None:
        """fakesmsc logs each SMS Kannel sends it as `Got message N: <from to type data>`, type
        data (8-bit, url-encoded) or text, or `… udh UDH data DATA` for a part with a header."""
        with open(self.dir / "fakesmsc.out", "ab") as log:
            for line in out:
                log.write(line)
                text = line.decode("latin-1")
                sent = re.search(r"fakesmsc: sent message (\d+)", text)
                if sent:
                    self.sent = int(sent.group(1))
                got = re.search(r"Got message \d+: <(.*)>", text)
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

        # A concatenated SMS from a phone: Kannel joins the parts, and the server refuses the
        # joined 8-bit message (a packet is always one SMS), texting nothing back; a part that
        # reached it alone (Kannel not joining) is refused by name.
        for k in (1, 2):
            kannel.operator_sends(STRANGER, POLICE, b"x" * 120, udh=bytes([5, 0, 3, 0x42, 2, k]))
        until(lambda: 'reason="concatenated"} 1.0' in httpx.get(f"{server.http}/metrics").text)
        lone = httpx.get(f"{server.http}/sms/kannel/inbound", params={
            "token": GATEWAY_TOKEN, "from": STRANGER, "coding": "1", "data": "x" * 120,
            "udh": bytes([5, 0, 3, 0x43, 2, 1]).decode("latin-1")})
        assert lone.status_code == 422 and lone.json()["detail"]["reason"] == "sms_part", lone.text
        assert "part 1 of 2 (reference 67)" in lone.json()["detail"]["detail"]

        inc = next(i for i in api.get("/api/incidents").json()["items"]
                   if i["device_id"] == DEVICE)
        assert len(api.get("/api/incidents").json()["items"]) == 1
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
    assert not [m for m in kannel.received if m[1] == STRANGER]  # nothing texted back

    # What the operator got for each guardian, read by an independent decoder.
    for number in PARENTS:
        got = [m for m in kannel.received if m[1] == number]
        assert len(got) == n_parts and all(m[2] == "udh" and m[4] == "data" for m in got), got
        series = [_submit_hex(number, _octets(m[3]), _octets(m[5]))
                  for m in got]
        assert reassemble(series) == want


# An English template: GSM-7, over one SMS, with characters of the GSM-7 extension table (two
# septets each: ESC + code) so the split has to count septets, not characters.
LONG_EN = ("U-Relief: {child} pressed SOS [incident {incident}]. The police have the alert and "
           "are responding; do not call the device. Questions: 112 | the school office. "
           "Replies to this number are not read {{no €}}.")
REFUSED = PARENTS[1]  # the operator's SMSC for this number refuses every message


class RefusingSmsc:
    """The operator's HTTP SMSC for REFUSED, as Kannel's `smsc = http` (system-type kannel) calls
    it: each submit is answered 400, so Kannel reports SMSC failure (type 16) through dlr-url."""

    def __init__(self):
        import http.server

        self.got: list[dict[str, str]] = []
        got = self.got

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                from urllib.parse import parse_qsl, urlsplit

                got.append(dict(parse_qsl(urlsplit(self.path).query, encoding="latin-1")))
                body = b"Rejected: subscriber barred"
                self.send_response(400)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.smsc_conf = SMSC_HTTP.format(send=self.http.server_address[1], mo=_free_ports(1)[0],
                                          number=REFUSED)

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


SMSC_HTTP = """\
denied-prefix = "{number}"

group = smsc
smsc = http
smsc-id = refuser
system-type = kannel
send-url = "http://127.0.0.1:{send}/"
port = {mo}
connect-allow-ip = 127.0.0.1
smsc-username = urelief
smsc-password = secret
allowed-prefix = "{number}"
"""


def _gsm7_submit_hex(to: str, udh: bytes, text: str) -> str:
    """The SMS-SUBMIT an SMSC driver makes of one of Kannel's 7-bit parts (coding=0, its text
    UTF-8 in Kannel), packed by smspdudecoder's own GSM-7 codec: the header's septets (fill
    bits zero) then the text's."""
    from smspdudecoder.codecs import GSM

    hsept = (len(udh) * 8 + 6) // 7
    packed = bytes.fromhex(GSM.encode("@" * hsept + text))  # '@' is septet 0: zero bits
    septets = hsept + sum(2 if ch in GSM.ALPHABET_EXT_INV else 1 for ch in text)
    ud = udh + packed[len(udh):]
    tpdu = (bytes([0x01 | 0x40, 0]) + pdus.encode_address(to) + bytes([0x00, 0x00, septets])
            + ud)
    return (b"\x00" + tpdu).hex().upper()


def test_gsm7_text_a_refused_guardian_and_the_dashboard(tmp_path):
    """An English guardian text leaves Kannel as concatenated GSM-7 (coding=0) that the
    independent decoder reassembles; the operator refuses the other guardian's, Kannel's
    failure report (dlr-url type 16) marks it failed and the server retries it with back-off;
    the dispatcher's dashboard (real Chromium) shows one delivered, the other failed and its
    retry, live from the delivery reports."""
    _kannel_or_skip()
    from browserkit import ARTIFACTS, CHROMIUM, chromium
    from srvkit import PASSWORD

    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian chromium")
    db_url = f"sqlite:///{tmp_path / 'urelief.db'}"
    s = seed(db_url)
    templates = tmp_path / "templates.json"
    templates.write_text(json.dumps({"en": {"opened": LONG_EN}}))
    (http_port,) = _free_ports(1)
    server_http = f"http://127.0.0.1:{http_port}"
    refuser = RefusingSmsc()
    kannel = Kannel(tmp_path, server_http, smsc_extra=refuser.smsc_conf)
    server = ServerProc(tmp_path, db_url, {
        "URELIEF_SMS_GATEWAY": f"kannel:{kannel.sendsms}?from={quote(POLICE)}",
        "URELIEF_KANNEL_DLR_URL": f"{server_http}/sms/kannel/status?token={GATEWAY_TOKEN}",
        "URELIEF_SMS_TEMPLATES": str(templates), "URELIEF_SMS_RETRY_BASE_S": "1"})
    try:
        server.start(http_port=http_port)
        kannel.operator_connects()
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.goto(server.http + "/")
            page.fill("#username", "disp")
            page.fill("#password", PASSWORD)
            page.click("#login-button")
            page.wait_for_selector("#live-state.on", timeout=10_000)
            dev = Device(DEVICE, SECRET, server, counter=900)
            assert dev.exchange(dev.seal(p.Sos(report=report()))).ok  # over data (UDP)
            page.locator("#incidents li").first.click(timeout=10_000)
            delivered = f"#d-notes li:has-text('{PARENTS[0]}'):has-text('delivered')"
            retried = (f"#d-notes li:has-text('{REFUSED}'):has-text('failed')"
                       ":has-text('attempts'):has-text('retry at')")
            page.wait_for_selector(delivered, timeout=15_000)
            page.wait_for_selector(retried, timeout=15_000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard-kannel-dlr.png"))
            page.close()
        api = httpx.Client(base_url=server.http, timeout=10,
                           headers={"Authorization": f"Bearer {s.tokens['disp']}"})
        inc = next(i for i in api.get("/api/incidents").json()["items"]
                   if i["device_id"] == DEVICE)
        notes = {n["to"]: n for n in api.get(f"/api/incidents/{inc['id']}").json()["notifications"]}
        api.close()
    finally:
        server.stop()
        kannel.close()
        refuser.close()

    want = LONG_EN.format(child="Kim Minji", incident=inc["id"])
    assert notes[PARENTS[0]]["status"] == "delivered" and notes[PARENTS[0]]["attempts"] == 1
    bad = notes[REFUSED]
    assert bad["status"] == "failed" and "16" in bad["error"], bad
    assert bad["attempts"] >= 2 and bad["next_attempt_at"], bad  # retried, and again later
    # Kannel handed the refusing SMSC each attempt as 7-bit parts with our headers.
    assert {q["coding"] for q in refuser.got} == {"0"}, refuser.got
    assert len({q["udh"] for q in refuser.got}) >= 2 * 2, refuser.got  # >= 2 attempts x 2 parts
    got = [m for m in kannel.received if m[1] == PARENTS[0]]
    assert len(got) == 2 and all(m[2] == "udh" and m[4] == "data" for m in got), got
    series = [_gsm7_submit_hex(PARENTS[0], _octets(m[3]), _octets(m[5]).decode("utf-8"))
              for m in got]
    assert reassemble(series) == want
