"""`urelief provision batch`: a class from a roster, boards plugged in on a hub (a port glob),
one unplugged in the middle of its copy; re-runs finish the class and then change nothing."""

import json
import os
import threading
import time

from provkit import ROSTER, read_back, server_verifies
from urelief.provisioning.log import ProvisionLog


def _unplug_when_written(board, timeout_s: float = 60) -> threading.Thread:
    """Pull the board's plug as soon as its flash changes: the tool is copying to it."""
    before = board.flash.stat().st_mtime_ns

    def watch():
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if board.flash.stat().st_mtime_ns != before:
                time.sleep(0.1)  # a few files in
                board.unplug()
                return
            time.sleep(0.01)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_batch_resumes_after_an_unplug_and_rerun_is_a_noop(bench, police, provision_cli,
                                                           tmp_path):
    roster = tmp_path / "class-4-2.csv"
    roster.write_text(ROSTER)
    a, b, c = (bench.board(f"tty{i}").plug() for i in range(3))
    ports = str(bench.ports / "tty*")
    watcher = _unplug_when_written(b)  # sorted ports: the 2nd pupil gets board b
    run = ("batch", "--roster", str(roster), "--school", "D1", "--port", ports, "--wait", "15")

    r = provision_cli(*run)
    watcher.join()
    assert r.exit_code == 1, r.output
    assert "1/3 Kim Minji (4-2) ... ok: device 0x" in r.output
    assert "2/3 Lee Hana (4-2) ... FAILED" in r.output
    assert "unplugged" in r.output
    assert "3/3 Park Seo (4-2) ... ok" in r.output
    assert "2/3 provisioned (2 now, 0 before), 1 failed" in r.output
    log = ProvisionLog(tmp_path / "provisioning.db")
    ids = {row["pupil_ref"]: row for row in log.rows()}
    assert ids["P-002"]["status"] == "failed"
    # No half-made device: only the two verified ones are in the registry.
    devices = police.devices()
    assert sorted(d["subscriber_id"] for d in devices) == sorted(
        ids[p]["subscriber_id"] for p in ("P-001", "P-003"))
    assert ids["P-002"]["device_id"] not in {d["id"] for d in devices}

    b.plug()  # the same board back (its flash as the cut left it)
    r = provision_cli(*run)
    assert r.exit_code == 0, r.output
    assert "1/3 Kim Minji (4-2) ... already provisioned" in r.output
    assert "2/3 Lee Hana (4-2) ... ok" in r.output
    assert "3/3 Park Seo (4-2) ... already provisioned" in r.output
    assert "3/3 provisioned (1 now, 2 before), 0 failed" in r.output
    devices = police.devices()
    assert len(devices) == 3 and all(d["status"] == "provisioned" for d in devices)
    hana = next(d for d in devices if d["subscriber_id"] == ids["P-002"]["subscriber_id"])
    on_b = json.loads(read_back(b.port, ["device.json"], tmp_path / "b")["device.json"])
    assert on_b["device_id"] == hana["id"]
    assert server_verifies(police, on_b).ok

    # Once more: nothing to do, no board is touched, the registry is as it was.
    stamps = [x.flash.stat().st_mtime_ns for x in (a, b, c)]
    r = provision_cli(*run)
    assert r.exit_code == 0, r.output
    assert r.output.count("already provisioned") == 3
    assert police.devices() == devices
    assert [x.flash.stat().st_mtime_ns for x in (a, b, c)] == stamps

    status = provision_cli("status")
    assert status.output.count(" done ") == 3


def test_wrong_roster_gives_row_errors_and_does_nothing(bench, police, provision_cli, tmp_path):
    board = bench.board("tty0").plug()
    roster = tmp_path / "bad.csv"
    lines = ROSTER.splitlines()
    lines[2] = lines[2].replace("+821099998888", "12345")  # row 3: not a phone number
    lines.append("P-001,Kim Minji again,4-2,Kim Sora,+821012345678,Kim Sora,2026-03-02")
    roster.write_text("\n".join(lines) + "\n")
    stamp = board.flash.stat().st_mtime_ns
    r = provision_cli("batch", "--roster", str(roster), "--school", "D1", "--port", board.port,
                      "--wait", "1")
    assert r.exit_code == 2
    assert "row 3: guardian1_phone" in r.output
    assert "row 5: pupil_ref: duplicate of row 2" in r.output
    assert "nothing was provisioned" in r.output
    assert police.registry.list_subscribers(police.actor)["items"] == []
    assert police.devices() == []
    assert board.flash.stat().st_mtime_ns == stamp
    assert not os.path.exists(tmp_path / "labels")


def test_one_port_boards_in_turn_a_finished_board_is_not_taken_again(bench, police,
                                                                    provision_cli, tmp_path):
    roster = tmp_path / "two.csv"
    roster.write_text("\n".join(ROSTER.splitlines()[:3]) + "\n")
    first = bench.board("first", port="ttyACM0").plug()
    second = bench.board("second", port="ttyACM0")
    log = ProvisionLog(tmp_path / "provisioning.db")
    swapped = threading.Event()

    def operator():
        # Leaves the finished board in a while (the tool must wait), then swaps it.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                row["status"] == "done" for row in log.rows()):
            time.sleep(0.05)
        time.sleep(2)
        first.unplug()
        second.plug()
        swapped.set()

    t = threading.Thread(target=operator, daemon=True)
    t.start()
    r = provision_cli("batch", "--roster", str(roster), "--school", "D1", "--port", first.port,
                      "--wait", "30", "--centre", "+82-2-3150-2112")
    t.join()
    assert r.exit_code == 0, r.output
    assert swapped.is_set()
    assert "1/2 Kim Minji (4-2) ... ok" in r.output and "2/2 Lee Hana (4-2) ... ok" in r.output
    rows = {row["pupil_ref"]: row for row in log.rows()}
    assert rows["P-001"]["board_uid"] == first.uid.hex()
    assert rows["P-002"]["board_uid"] == second.uid.hex()
    assert len(police.devices()) == 2
    # every board of the class knows the centre's voice line, in E.164
    device = json.loads(read_back(second.port, ["device.json"], tmp_path / "back")["device.json"])
    assert device["centre"] == "+82231502112"


def test_batch_makes_the_same_pupil_checks_as_one_device(bench, police, provision_cli, tmp_path):
    """A pupil whose roster row grants no location consent, one whose location consent was
    withdrawn (re-importing the same form must not give it again), and one the school
    deactivated are refused before a board is asked for; the eligible pupil is provisioned."""
    roster = tmp_path / "class.csv"
    roster.write_text(ROSTER.replace("P-002,Lee Hana,4-2,Lee Dong,+821099998888,Lee Dong,2026-03-03",
                                     "P-002,Lee Hana,4-2,Lee Dong,+821099998888,Lee Dong,2026-03-03,"
                                     "registry;guardian_sms")
                      .replace("consent_date\n", "consent_date,consent_scopes\n", 1)
                      + "P-004,Jung Woo,4-2,Jung Mi,+821033332222,Jung Mi,2026-03-05\n")
    ids = police.import_roster(roster.read_text())
    reg, actor = police.registry, police.actor
    for c in reg.list_consents(actor, ids["P-001"])["items"]:
        if c["scope"] == "location":
            reg.withdraw_consent(actor, c["id"])
    reg.update_subscriber(actor, ids["P-003"], {"active": False})
    bench.board("tty0").plug()  # one board: only one pupil may take it

    r = provision_cli("batch", "--roster", str(roster), "--school", "D1",
                      "--port", str(bench.ports / "tty*"), "--wait", "15")
    assert r.exit_code == 1, r.output
    assert "1/4 Kim Minji (4-2) ... REFUSED: pupil: no active location consent" in r.output
    assert "2/4 Lee Hana (4-2) ... REFUSED: pupil: no active location consent" in r.output
    assert f"3/4 Park Seo (4-2) ... REFUSED: pupil: pupil {ids['P-003']} is not active" in r.output
    assert "4/4 Jung Woo (4-2) ... ok: device 0x" in r.output
    assert r.output.count("plug in a board") == 1
    assert "1/4 provisioned (1 now, 0 before), 3 failed" in r.output
    assert [d["subscriber_id"] for d in police.devices()] == [ids["P-004"]]
