"""The dashboard tells the truth and cannot be turned against the dispatcher, in real headless
Chromium (Debian's `chromium`, driven by Playwright) against a real server:

- a hostile roster name (HTML with an `onerror` payload that closes incidents) renders as text
  in the list, the map tooltip, the title and the card, and no script of it runs; the page's
  CSP forbids inline script even if some future code put markup on the page;
- Hangul renders (not tofu), the fix's age and trust are shown, the alarm repeats until
  acknowledged, survives a reload and lists every alarming incident; a repeat SOS and a plain
  cancel are visible; an answer reads yes / no; an SOS sent while the live stream was down
  (server restart) appears when the stream comes back."""

from __future__ import annotations

import httpx
import pytest
from browserkit import chromium, marks
from srvkit import PASSWORD, SERVER_KEY, Device, report
from urelief import protocol as p
from urelief.registry.db import Database
from urelief.registry.keys import ServerKey
from urelief.registry.service import Registry, cli_actor

HOSTILE = ('<img src=x onerror="window.__pwned=1;fetch(\'/api/incidents/1/false_alarm\','
           '{method:\'POST\',credentials:\'same-origin\'})"><script>window.__pwned=2</script>'
           '김민지')
KOREAN = "이서준"
HOSTILE_DEV, KOREAN_DEV = 0x00D0_0001, 0x00D0_0002
SECRET_H, SECRET_K = bytes(range(100, 132)), bytes(range(132, 164))

pytestmark = marks


@pytest.fixture(scope="module")
def pupils(server):
    """A hostile roster name, as a school admin could type it, and a Korean one, each with a
    terminal."""
    db = Database(server.db_url)
    reg = Registry(db, ServerKey(bytes.fromhex(SERVER_KEY)))
    for name, dev, secret in ((HOSTILE, HOSTILE_DEV, SECRET_H), (KOREAN, KOREAN_DEV, SECRET_K)):
        sub = reg.create_subscriber(cli_actor(), {
            "school_id": server.seed.school_id, "pupil_ref": f"H-{dev}", "full_name": name,
            "class_name": "<b>5-1</b>", "guardians": []})
        reg.record_consent(cli_actor(), sub["id"], {"given_by": "guardian", "scope": "location"})
        reg.register_device(cli_actor(), dev, secret, subscriber_id=sub["id"], board="virtual")
    db.dispose()
    return {"hostile": Device(HOSTILE_DEV, SECRET_H, server),
            "korean": Device(KOREAN_DEV, SECRET_K, server)}


@pytest.fixture(scope="module")
def browser():
    with chromium("--autoplay-policy=no-user-gesture-required") as b:  # sound without a click
        yield b


@pytest.fixture
def page(server, browser):
    pg = browser.new_page(viewport={"width": 1400, "height": 860})
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("dialog", lambda d: (pg.errors.append("dialog: " + d.message), d.dismiss()))
    pg.console = []
    pg.on("console", lambda m: pg.console.append(f"{m.type}: {m.text}"))
    pg.goto(server.http + "/")
    pg.fill("#username", "disp")
    pg.fill("#password", PASSWORD)
    pg.click("#login-button")
    pg.wait_for_selector("#live-state.on", timeout=10_000)
    yield pg
    pg.close()


def incidents(api, state="open") -> list[dict]:
    return api().get(f"/api/incidents?state={state}").json()["items"]


def row(page, text: str):
    loc = page.locator("#incidents li", has_text=text).first
    loc.wait_for(timeout=10_000)
    return loc


def test_security_headers(server):
    r = httpx.get(server.http + "/dashboard/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and r.headers["x-frame-options"] == "DENY"
    api = httpx.get(server.http + "/healthz")
    assert "default-src 'none'" in api.headers["content-security-policy"]
    assert api.headers["x-content-type-options"] == "nosniff"


def test_hostile_roster_name_is_text_and_no_script_runs(server, pupils, page, api):
    dev = pupils["hostile"]
    assert dev.exchange(dev.seal(p.Sos(report=report(37.5701, 126.9831)))).ok
    r = row(page, "김민지")
    assert r.locator(".who").inner_text() == HOSTILE  # the markup, as text
    page.hover(".incident-marker")  # the tooltip that once rendered the name as HTML
    page.wait_for_selector(".leaflet-tooltip")
    assert HOSTILE in page.inner_text(".leaflet-tooltip")
    r.click()
    page.wait_for_selector("#card .child")
    assert page.inner_text("#card .child") == HOSTILE
    assert HOSTILE in page.inner_text("#d-title")
    assert "<b>5-1</b>" in page.inner_text("#card")
    page.wait_for_timeout(1000)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#app img[src=x], #app script").count() == 0
    open_ids = {i["id"] for i in incidents(api)}
    assert all(i["status"] == "open" for i in incidents(api) if i["id"] in open_ids)
    assert len(open_ids) >= 1

    # Even markup that some future code slipped onto the page runs no script: the CSP.
    page.evaluate("""() => {
        window.__violations = 0;
        document.addEventListener('securitypolicyviolation', () => window.__violations++);
        document.body.insertAdjacentHTML('beforeend', '<img src=x onerror="window.__csp=1">');
        const s = document.createElement('script'); s.textContent = 'window.__csp = 2';
        document.body.append(s);
    }""")
    page.wait_for_timeout(500)
    assert page.evaluate("window.__csp") is None
    assert page.evaluate("window.__violations") >= 1
    assert not page.errors, page.errors


def test_hangul_is_not_tofu(server, pupils, page):
    """Two different syllables drawn in the page's font differ; tofu boxes are all alike."""
    pixels = page.evaluate("""() => {
        const font = getComputedStyle(document.querySelector('#incidents') || document.body).fontFamily;
        const draw = (ch) => {
            const c = document.createElement('canvas'); c.width = 64; c.height = 64;
            const g = c.getContext('2d'); g.font = `40px ${font}`; g.fillText(ch, 4, 48);
            return Array.from(g.getImageData(0, 0, 64, 64).data).join(',');
        };
        return [draw('김'), draw('민'), draw('\\uE000'), draw('\\uE001')];
    }""")
    kim, min_, tofu1, tofu2 = pixels
    assert tofu1 == tofu2, "the check itself: two unknown code points draw the same box"
    assert kim != min_, "Hangul draws as identical boxes (no CJK font in the page's stack)"


def test_alarm_repeats_lists_all_survives_reload_and_stops_on_acknowledge(
        server, pupils, page, api):
    dev = pupils["korean"]
    assert dev.exchange(dev.seal(p.Sos(report=report(37.5650, 126.9770)))).ok
    r = row(page, KOREAN)
    assert "old" in r.locator(".where").inner_text()  # "3 s old, trusted"
    assert "trusted" in r.locator(".where").inner_text()
    page.wait_for_selector(f"#alarm button:has-text('{KOREAN}')")
    assert page.locator("#alarm button").count() >= 2  # the hostile one's too: none hidden
    n = page.evaluate("window.urelief.alarmCount")
    page.wait_for_function("(n) => window.urelief.alarmCount >= n", arg=n + 2,
                           timeout=15_000)  # repeats
    page.reload()
    page.wait_for_selector("#live-state.on", timeout=10_000)
    page.wait_for_selector(f"#alarm button:has-text('{KOREAN}')")  # still alarming
    page.wait_for_function("() => window.urelief.alarmCount >= 1")
    row(page, KOREAN).click()
    page.click("button[data-action=acknowledge]")
    page.wait_for_timeout(1000)
    assert not page.errors, (page.errors, page.console)
    page.wait_for_selector("#d-status:has-text('acknowledged')")
    page.wait_for_selector(f"#alarm button:has-text('{KOREAN}')", state="detached")
    assert page.locator("#alarm button").count() >= 1  # the other incident still alarms

    # A repeat SOS after the acknowledgement alarms again and shows; a plain cancel shows.
    assert dev.exchange(dev.seal(p.Sos(report=report(37.5651, 126.9771)))).ok
    page.wait_for_selector(f"#alarm button:has-text('REPEAT SOS'):has-text('{KOREAN}')")
    page.wait_for_selector(f"#incidents li:has-text('{KOREAN}') .badge.repeat:has-text('SOS ×2')")
    assert dev.exchange(dev.seal(p.Cancel(report=report(), duress=False))).ok
    page.wait_for_selector(f"#incidents li:has-text('{KOREAN}') .badge.cancel")

    # A yes/no question answered with 2 presses reads "no".
    row(page, KOREAN).click()
    page.click("button[data-action=question]")
    page.fill("#q-text", "Are you alone?")
    page.click("#q-send")
    page.wait_for_selector("#d-events:has-text('Are you alone?')")
    q = None
    while q is None or q.type != p.MsgType.QUESTION:
        q = dev.recv()
        assert q is not None, "no question reached the device"
    assert dev.exchange(dev.seal(p.TapReply(report=report(), question_id=q.message.question_id,
                                            presses=2))).ok
    page.wait_for_selector(f"#d-events li:has-text('#{q.message.question_id}: no')")
    assert not page.errors, page.errors


def test_sos_while_the_stream_was_down_appears_when_it_is_back(server, pupils, page, api):
    page.wait_for_selector("#incidents li")
    udp, http = server.udp[1], int(server.http.rsplit(":", 1)[1])
    server.stop()
    page.wait_for_selector("#live-state:not(.on)", timeout=10_000)
    server.start(udp_port=udp, http_port=http)
    dev = Device(pupils["korean"].id, SECRET_K, server, counter=10_000)
    # Right after the restart, before the page's stream reconnects: the push goes nowhere.
    assert dev.exchange(dev.seal(p.Position(report=report(37.5660, 126.9790, acc=5)))).ok
    ids = {i["id"] for i in incidents(api)}
    for inc in incidents(api):
        if inc["device_id"] == HOSTILE_DEV:
            api().post(f"/api/incidents/{inc['id']}/resolve")  # changes the list behind its back
    page.wait_for_selector("#live-state.on", timeout=15_000)
    page.wait_for_function(
        "(n) => document.querySelectorAll('#incidents li').length === n",
        arg=len(ids) - 1, timeout=10_000)  # refetched on `hello`, not on a later push
