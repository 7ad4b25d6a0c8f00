"""Silent caller, end to end in real Chromium (Debian's, driven by Playwright): the dispatcher
texts a number a link through the server's USB-modem gateway (the project's modem emulator on a
pty, an emulated SMS network), the phone's inbox gets it, a phone-sized second context with a
fake camera and an overridden position opens it; its position and track reach the dispatcher's
map, a one-tap reply and an answer cross, the camera's frames are decoded on the dispatcher's
page, hide blanks the phone, a reopened link still works, a forwarded or expired one shows
nothing, and closing the incident stops the page. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from browserkit import ARTIFACTS, FAKE_MEDIA, chromium, marks
from modem_rig import Handset, ModemOnPty
from srvkit import PASSWORD, ServerProc, seed
from urelief.sim.modem.network import SmsNetwork

POLICE = "+82112"
CALLER = "+821012340001"
LATE = "+821012340002"  # gets a link nobody opens in time
TTL_S = 30  # the server's unopened-link lifetime in this test
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2, "permissions": ["geolocation", "camera"]}
HOME = {"latitude": 37.56650, "longitude": 126.97800, "accuracy": 14}
MOVED = {"latitude": 37.56710, "longitude": 126.97920, "accuracy": 9}
LINK = re.compile(r"^Your link: (http://[^ ]+/k/[A-Za-z0-9_-]{32})$")

pytestmark = marks

# Decoded pixels of the dispatcher's <video>: mean and spread of a 64x48 grey-level copy.
PIXELS = """() => {
  const v = document.getElementById('knock-video');
  const c = document.createElement('canvas'); c.width = 64; c.height = 48;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 48);
  const d = g.getImageData(0, 0, 64, 48).data; const ys = [];
  for (let i = 0; i < d.length; i += 4) ys.push((d[i] + d[i + 1] + d[i + 2]) / 3);
  const mean = ys.reduce((a, b) => a + b, 0) / ys.length;
  const sd = Math.sqrt(ys.reduce((a, b) => a + (b - mean) ** 2, 0) / ys.length);
  return {mean, sd, ys, w: v.videoWidth, h: v.videoHeight};
}"""
DECODED = """async () => {
  const pc = window.knockDesk.pc; if (!pc) return 0; let n = 0;
  (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video')
    n = s.framesDecoded; });
  return n;
}"""


def until(predicate, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while not (got := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return got


@pytest.fixture(scope="module")
def browser():
    with chromium(*FAKE_MEDIA) as b:
        yield b


@pytest.fixture
def rig():
    net = SmsNetwork(delivery_ms=20)
    rig = ModemOnPty(net, msisdn=POLICE)
    rig.phones = {n: Handset() for n in (CALLER, LATE)}
    for number, phone in rig.phones.items():
        net.attach(number, phone, rig.clock)
    rig.wait(lambda: rig.modem.ready and rig.modem.registered)
    yield rig
    rig.close()


def link_in(phone: Handset) -> str:
    sms = until(lambda: phone.inbox)[-1]
    assert sms.sender == POLICE and isinstance(sms.body, str)
    m = LINK.match(sms.body)
    assert m, sms.body
    return m.group(1)


def nothing(page, url: str) -> None:
    """A dead link: 404, an empty page, no script."""
    r = page.goto(url)
    assert r.status == 404
    assert page.evaluate("document.body.innerText.trim()") == ""
    assert page.title() == ""
    assert page.locator("script").count() == 0


def test_silent_caller_link(tmp_path, browser, rig):
    ARTIFACTS.mkdir(exist_ok=True)
    db_url = f"sqlite:///{tmp_path / 'urelief.db'}"
    s = seed(db_url)
    server = ServerProc(tmp_path, db_url, {"URELIEF_SMS_GATEWAY": f"modem:{rig.port}",
                                           "URELIEF_KNOCK_LINK_TTL_S": str(TTL_S)})
    server.start()
    errors: list[str] = []
    try:
        api = httpx.Client(base_url=server.http, timeout=10,
                           headers={"Authorization": f"Bearer {s.tokens['disp']}"})
        # A link nobody opens before it expires (checked at the end).
        late_sent = time.monotonic()
        assert api.post("/api/knock", json={"msisdn": LATE}).json()["sms"]["ok"]
        late_url = link_in(rig.phones[LATE])

        desk_ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        desk = desk_ctx.new_page()
        desk.on("pageerror", lambda e: errors.append(f"desk: {e}"))
        desk.goto(server.http + "/")
        desk.fill("#username", "disp")
        desk.fill("#password", PASSWORD)
        desk.click("#login-button")
        desk.wait_for_selector("#live-state.on", timeout=10_000)

        # The dispatcher opens a silent-caller incident for the number; the SMS goes out
        # through the modem (+CMGS) and lands in the phone's inbox.
        desk.click("#knock-open")
        desk.fill("#knock-number", CALLER)
        desk.click("#knock-send")
        desk.wait_for_selector(f"#knock-msg:has-text('link texted to {CALLER}')")
        url = link_in(rig.phones[CALLER])
        inc = next(i for i in api.get("/api/incidents").json()["items"]
                   if i["caller_msisdn"] == CALLER)
        assert inc["source"] == "silent_caller" and inc["last_lat"] is None
        desk.wait_for_selector("#knock:not([hidden])")
        desk.wait_for_selector("#knock-links:has-text('unopened')")

        # The phone opens it: small, neutral, no police mark until the caller acts.
        phone_ctx = browser.new_context(geolocation=HOME, **PHONE)
        phone = phone_ctx.new_page()
        phone.on("pageerror", lambda e: errors.append(f"phone: {e}"))
        sizes: list[int] = []
        phone.on("response", lambda r: sizes.append(len(r.body())) if r.request.resource_type in
                 ("document", "script", "stylesheet") else None)
        phone.goto(url)
        assert phone.title() == "Messages"
        assert phone.inner_text("#who") == "Messages"
        assert phone.locator("img, svg, video").count() == 0
        phone.wait_for_selector("#geo:has-text('Sharing your location with the police (±14 m')")
        assert sum(sizes) < 20_000, sizes  # html + css + js, uncompressed
        desk.wait_for_selector("#knock-links:has-text(', opened')")

        # Its position is on the dispatcher's map, with its accuracy; a move makes a track.
        desk.wait_for_selector(f"path.incident-{inc['id']}")
        desk.wait_for_selector("#d-pos:has-text('37.56650, 126.97800 ±14 m')")
        desk.wait_for_selector("#knock-heard dd[data-heard=position]:not(:has-text('never'))")
        phone_ctx.set_geolocation(MOVED)
        desk.wait_for_selector("#d-pos:has-text('37.56710, 126.97920 ±9 m')")
        desk.wait_for_selector("path.incident-track")

        # One tap on the phone, an answer from the desk; caller text is text, never markup.
        phone.click("#quick button:has-text('he is here')")
        desk.wait_for_selector("#knock-chat li.caller:has-text('he is here')")
        assert phone.inner_text("#who") == "Police 112"
        phone.fill("#text", "<img src=x onerror=window.pwned=1>")
        phone.click("#send")
        desk.wait_for_selector("#knock-chat li.caller:has-text('<img src=x')")
        assert desk.locator("#knock-chat img, #d-events img").count() == 0
        assert desk.evaluate("window.pwned") is None
        desk.fill("#knock-text", "Stay quiet. Help is coming.")
        desk.click("#knock-reply")
        phone.wait_for_selector("#chat li.them:has-text('Stay quiet. Help is coming.')")
        desk.wait_for_selector("#knock-heard dd[data-heard=message]:not(:has-text('never'))")

        # "Show the police": the camera's frames are decoded on the dispatcher's page.
        assert desk.locator("#knock-video").is_hidden()
        phone.click("#show")
        phone.wait_for_selector("#cam:not([hidden])")
        desk.wait_for_selector("#knock-video-state:has-text('live')", timeout=20_000)
        until(lambda: desk.evaluate(DECODED) >= 10, 20)
        first = desk.evaluate(PIXELS)
        assert first["w"] > 0 and first["h"] > 0
        assert first["sd"] > 5, first["sd"]  # a picture, not a flat frame
        time.sleep(1.0)
        second = desk.evaluate(PIXELS)
        assert sum(abs(a - b) for a, b in zip(first["ys"], second["ys"], strict=True)) > 100
        desk.wait_for_selector("#knock-heard dd[data-heard=video]:not(:has-text('never'))")
        desk.screenshot(path=str(ARTIFACTS / "knock-dispatcher.png"))
        phone.screenshot(path=str(ARTIFACTS / "knock-phone.png"))

        # Hide: one tap, a blank page; the camera stops, the position still comes.
        phone.click("#hide")
        assert phone.evaluate("document.body.innerText.trim()") == ""
        assert phone.locator("#blank").is_visible()
        desk.wait_for_selector("#knock-video-state:has-text('stopped by the caller')")
        phone_ctx.set_geolocation(HOME)
        desk.wait_for_selector("#d-pos:has-text('37.56650, 126.97800 ±14 m')")
        phone.screenshot(path=str(ARTIFACTS / "knock-phone-hidden.png"))

        # Reopened on the same phone: the conversation is there. Forwarded: nothing.
        phone.goto(url)
        phone.wait_for_selector("#chat li.me:has-text('he is here')")
        phone.wait_for_selector("#chat li.them:has-text('Help is coming')")
        other_ctx = browser.new_context(**PHONE)
        nothing(other_ctx.new_page(), url)

        # The dispatcher closes the incident: the page stops (no more position, camera off).
        desk.click("button[data-action=resolve]")
        phone.wait_for_selector("#ended:not([hidden])", timeout=10_000)
        assert phone.evaluate("window.knockPage.ended") is True
        sent = phone.evaluate("window.knockPage.sent")
        phone_ctx.set_geolocation(MOVED)
        time.sleep(1.0)
        assert phone.evaluate("window.knockPage.sent") == sent
        nothing(phone_ctx.new_page(), url)

        # The link nobody opened is dead once its time is up.
        time.sleep(max(0.0, late_sent + TTL_S + 1 - time.monotonic()))
        nothing(other_ctx.new_page(), late_url)
        assert not errors, errors
        api.close()
    finally:
        server.stop()
