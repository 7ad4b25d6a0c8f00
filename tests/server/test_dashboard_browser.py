"""The dashboard in real headless Chromium (Debian's `chromium`, driven by Playwright): log in,
a real signed SOS sent over UDP appears live in the list and on the map, the guardians' SMS
with their delivery status, acknowledge, ask a question (the device receives it), resolve.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import httpx
import pytest
from browserkit import ARTIFACTS, chromium, marks
from srvkit import DEVICE, GW, PASSWORD, SECRET, Device, report
from urelief import protocol as p

pytestmark = marks


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def test_dispatcher_sees_a_live_sos_and_works_it(server, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.http + "/")
    page.fill("#username", "disp")
    page.fill("#password", "wrong")
    page.click("#login-button")
    page.wait_for_selector("#login-error:has-text('wrong username or password')")
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    page.wait_for_selector("#live-state.on", timeout=10_000)
    assert page.locator("#offline").is_visible()  # no tile URL: usable offline

    dev = Device(DEVICE, SECRET, server, counter=5000)
    assert dev.exchange(dev.seal(p.Sos(report=report(37.5700, 126.9830, acc=12)))).ok
    row = page.locator("#incidents li").first
    row.wait_for(timeout=10_000)  # pushed live (SSE), no reload
    assert "Kim Minji" in row.inner_text() and "open" in row.inner_text()
    page.wait_for_selector("#alarm:not([hidden])")
    assert page.evaluate("window.urelief.alarmCount") >= 1
    page.wait_for_selector("path.incident-marker")  # on the map
    # A fresher fix moves the marker and makes a track with accuracy circles.
    assert dev.exchange(dev.seal(p.Position(report=report(37.5712, 126.9851, acc=25)))).ok
    row.click()
    page.wait_for_selector("#card:has-text('+821055500001')")
    page.wait_for_selector("path.incident-track")
    assert "asthma" in page.inner_text("#card")
    # The guardians' SMS and their delivery status, updated live: queued with the (test's)
    # gateway, then its delivery report arrives.
    page.wait_for_selector("#d-notes li:has-text('+821055500002'):has-text('queued')")
    boss = httpx.Client(base_url=server.http, timeout=10, headers={
        "Authorization": f"Bearer {server.seed.tokens['boss']}", **GW})
    iid = boss.get("/api/incidents").json()["items"][0]["id"]
    note = next(n for n in boss.get(f"/api/incidents/{iid}").json()["notifications"]
                if n["to"] == "+821055500002")
    assert boss.post("/sms/status", json={"ref": note["gateway_ref"], "status": "delivered"}
                     ).status_code == 200
    boss.close()
    page.wait_for_selector("#d-notes li:has-text('+821055500002'):has-text('delivered')")
    page.screenshot(path=str(ARTIFACTS / "dashboard-new-sos.png"))

    page.click("button[data-action=acknowledge]")
    page.wait_for_selector("#d-status:has-text('acknowledged')")
    assert dev.recv_type(p.MsgType.ACK).message.level == p.AckLevel.SEEN

    page.click("button[data-action=question]")
    page.fill("#q-text", "Are you hurt?")
    page.click("#q-send")
    page.wait_for_selector("#d-events:has-text('Are you hurt?')")
    q = dev.recv_type(p.MsgType.QUESTION).message
    assert isinstance(q, p.Question)
    assert dev.exchange(dev.seal(p.TapReply(report=report(37.5712, 126.9851), question_id=q.question_id,
                                            presses=1))).ok
    page.wait_for_selector(f"#d-events li:has-text('#{q.question_id}: yes')")  # yes/no: 1 press = yes
    page.screenshot(path=str(ARTIFACTS / "dashboard-question.png"))

    page.click("button[data-action=resolve]")
    page.wait_for_selector("#d-status:has-text('resolved')")
    assert dev.recv_type(p.MsgType.STAND_DOWN).message.reason == p.StandDownReason.RESOLVED
    page.wait_for_selector("#empty:not([hidden])")
    page.screenshot(path=str(ARTIFACTS / "dashboard-resolved.png"))

    # A drill looks different: purple, striped, labelled DRILL.
    assert dev.exchange(dev.seal(p.Sos(report=report(37.5650, 126.9750, drill=True)))).ok
    page.wait_for_selector("#incidents li.drill")
    page.locator("#incidents li.drill").first.click()
    page.wait_for_selector(".drillbanner")
    assert page.locator("button[data-action=dispatch]").is_disabled()
    page.screenshot(path=str(ARTIFACTS / "dashboard-drill.png"))
    page.click("button[data-action=resolve]")
    page.wait_for_selector("#d-status:has-text('drill')")
    assert not errors, errors
    page.close()
