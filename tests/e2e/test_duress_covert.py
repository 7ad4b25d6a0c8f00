"""A duress cancel stays covert (issue 9), on the real firmware against the real server: after
it the terminal gives no feedback at all for that alert — no ack, no question, no stand-down
is felt or lit — while it keeps reporting; the server knows the alert is under
duress, offers no questions and says why."""

from __future__ import annotations

from test_sos_path import _cancellable, kinds, position_events, said
from urelief import protocol as p
from urelief.sim import events
from urelief.sim.rig import GATEWAY_NUMBER, pattern_name


def nothing_felt_after_the_duress_cancel(r) -> bool:
    """The invariant over everything the device did: from the duress cancel on, the only
    pattern played is the cancel's own CANCEL_ACK (identical to a true cancel's), and the
    firmware reports no `felt` event after the cancel was stored."""
    out = r.dev.output
    cancel = events.first(out, "stored", kind="cancel")
    if cancel is None:
        return True
    felt_after = [e for e in events.events(out, "felt") if e.index > cancel.index]
    played = [pattern_name(d) for t, d in r.patterns()]
    start = next(i for i, name in enumerate(played) if name == "CANCEL_ACK")
    return not felt_after and played[start:] == ["CANCEL_ACK"]


def test_after_a_duress_cancel_nothing_is_felt_and_positions_still_arrive(rig, police):
    r, iid = _cancellable(rig, police)
    dev = r.dev
    r.child.presses(5, after_ms=300)  # the duress count
    assert r.until(lambda: "duress" in kinds(police, iid), timeout_ms=15_000), dev.output[-1500:]
    inc = police.incident(iid)
    assert inc["duress"] and not inc["questions_offered"]
    assert "duress" in inc["questions_withheld"]
    # the dispatcher tries to ask: refused, and told why
    q = police.api.post(f"/api/incidents/{iid}/question",
                        json={"kind": "yes_no", "text": "Are you safe?", "timeout_s": 60})
    assert q.status_code == 409 and "duress" in q.text, q.text
    assert "question" not in kinds(police, iid)
    # the police carry on: seen, help dispatched — acks the device takes without a sign
    police.act(iid, "acknowledge")
    police.act(iid, "dispatch")
    assert r.until(lambda: said(dev.output, "ack", level=3), timeout_ms=70_000), dev.output[-1500:]
    # a question that reaches the device anyway (sealed before the server knew of the duress,
    # delivered late by SMS): verified, and withheld
    sealed = p.encode_downlink(
        p.Question(question_id=9, kind=p.QuestionKind.YES_NO, choices=2, timeout_s=60),
        device_id=r.cfg.device_id, key_id=r.cfg.key_id, secret=r.cfg.secret, counter=1_000_000)
    dev.clock.post(lambda: r.net.deliver(r.modem.msisdn, sealed, sender=GATEWAY_NUMBER))
    assert r.until(lambda: said(dev.output, "question_withheld", id=9), timeout_ms=20_000), \
        dev.output[-1500:]
    n_pos = len(position_events(police, iid))
    dev.run_for(130_000)
    assert len(position_events(police, iid)) >= n_pos + 2  # still reporting, silently
    assert not said(dev.output, "question", id=9)
    assert nothing_felt_after_the_duress_cancel(r), (
        [pattern_name(d) for _, d in r.patterns()], dev.output[-2500:])
    assert "Traceback" not in dev.output
