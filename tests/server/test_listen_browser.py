"""The listen-in (silent call) on the dashboard, in real headless Chromium: the button says why it
cannot be used (acknowledge first; a terminal without a voice path), a dispatcher asks for it
after the acknowledgement, the terminal receives LISTEN_IN, and the call's states it reports
(dialling, connected, ended) appear on the incident. Screenshot in test-artifacts/."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from browserkit import ARTIFACTS, chromium, marks
from srvkit import DEVICE, PASSWORD, SECRET, SERVER_KEY, Device, report
from urelief import protocol as p
from urelief.registry.db import Database
from urelief.registry.keys import ServerKey
from urelief.registry.models import Consent
from urelief.registry.service import Registry, cli_actor

pytestmark = marks
VOICE_DEVICE = 0x00A76700
VOICE_SECRET = bytes(range(96, 128))


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def voice_terminal(server):
    """A T-A7670 for the seeded pupil, whose guardian consented to a silent call."""
    db = Database(server.seed.db_url)
    reg = Registry(db, ServerKey(bytes.fromhex(SERVER_KEY)))
    reg.register_device(cli_actor(), VOICE_DEVICE, VOICE_SECRET,
                        subscriber_id=server.seed.subscriber_id, board="lilygo-t-a7670")
    with db.session() as s:
        s.add(Consent(subscriber_id=server.seed.subscriber_id, given_by="Kim Jiwoo",
                      scope="silent_call", given_at=datetime(2026, 3, 2, tzinfo=UTC)))
    db.dispose()
    return Device(VOICE_DEVICE, VOICE_SECRET, server, counter=100)


def next_of(dev: Device, kind: type, tries: int = 6):
    """The next downlink of this kind (repeats of earlier ones are skipped)."""
    for _ in range(tries):
        res = dev.recv()
        if res is not None and res.ok and isinstance(res.message, kind):
            return res.message
    raise AssertionError(f"no {kind.__name__} downlink")


def open_incident(page, dev: Device) -> None:
    assert dev.exchange(dev.seal(p.Sos(report=report()))).ok
    page.locator("#incidents li:has-text('Kim Minji')").first.wait_for(timeout=10_000)
    page.locator("#incidents li").first.click()
    page.wait_for_selector("#d-status:has-text('open')")


def test_listen_in_from_the_dashboard_shows_the_call(server, browser, voice_terminal):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.http + "/")
    page.fill("#username", "disp")
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    page.wait_for_selector("#live-state.on", timeout=10_000)

    dev = voice_terminal
    open_incident(page, dev)
    sos = dev.counter
    assert page.locator("#listen-in").is_disabled()
    page.wait_for_selector("#listen-in-why:has-text('acknowledge it first')")
    page.click("button[data-action=acknowledge]")
    page.wait_for_selector("#d-status:has-text('acknowledged')")
    assert next_of(dev, p.Ack).level == p.AckLevel.SEEN
    page.wait_for_selector("#listen-in:not([disabled])")
    assert page.locator("#listen-in-why").count() == 0

    page.click("#listen-in")
    msg = next_of(dev, p.ListenIn)
    page.wait_for_selector("#d-events li:has-text('asked: the terminal calls the centre, up to 600 s')")
    assert msg.sos_counter == sos and msg.mode == p.ListenMode.DIAL and msg.max_s == 600
    for state, reason in ((p.CallStatus.DIALLING, p.CallReason.NONE),
                          (p.CallStatus.CONNECTED, p.CallReason.NONE)):
        dev.send(dev.seal(p.CallState(report=report(), state=state, reason=reason)))
    page.wait_for_selector("#d-flags .badge.call:has-text('Silent call connected')")
    page.screenshot(path=str(ARTIFACTS / "dashboard-silent-call.png"))
    dev.send(dev.seal(p.CallState(report=report(), state=p.CallStatus.ENDED,
                                  reason=p.CallReason.CENTRE_HUNG_UP)))
    page.wait_for_selector("#d-events li:has-text('silent call ended — centre hung up')")
    page.wait_for_selector("#d-flags .badge.call:has-text('ended')")
    page.click("button[data-action=resolve]")
    page.wait_for_selector("#d-status:has-text('resolved')")

    # The seeded terminal's board has no voice path: the dashboard says so once acknowledged.
    plain = Device(DEVICE, SECRET, server, counter=9000)
    open_incident(page, plain)
    page.click("button[data-action=acknowledge]")
    page.wait_for_selector("#d-status:has-text('acknowledged')")
    page.wait_for_selector("#listen-in-why:has-text('no known voice path')")
    assert page.locator("#listen-in").is_disabled()
    assert not errors, errors
    page.close()
