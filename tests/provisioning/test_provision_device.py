"""`urelief provision device` against a virtual board over its USB port, with the real mpremote."""

import json
import struct

from provkit import ROSTER, read_back, server_verifies
from urelief.paths import BOARDS
from urelief.provisioning.identity import counter_file
from urelief.provisioning.log import ProvisionLog
from urelief.server.devices import DeviceCache
from urelief.sim import events


def test_one_device_end_to_end(bench, police, provision_cli, tmp_path, built_firmware):
    ids = police.import_roster(ROSTER)
    board = bench.board("acm0").plug()
    r = provision_cli("device", "--port", board.port, "--pupil", "Kim Minji/4-2", "--cancel", "4/6",
                      "--centre", "+82 2-3150-2112")
    assert r.exit_code == 0, r.output
    assert "ok: device 0x" in r.output

    # The registry: the pupil's device, its key sealed there, the build recorded.
    (dev,) = police.devices()
    assert dev["subscriber_id"] == ids["P-001"] and dev["board"] == "sim"
    assert dev["status"] == "provisioned" and dev["key_id"] == 1
    assert dev["firmware_version"].startswith("fw-")

    # After a power cut the board's littlefs holds the tree byte for byte, and its identity.
    board.dev.power_cycle()
    assert board.dev.wait_output(events.line("boot", board="sim", reset="power_on"), 60_000)
    names = sorted(p.relative_to(built_firmware).as_posix()
                   for p in built_firmware.rglob("*") if p.is_file())
    got = read_back(board.port, names + ["board.json", "device.json", "ctr"], tmp_path / "back")
    for n in names:
        assert got[n] == (built_firmware / n).read_bytes(), n
    assert got["board.json"] == (BOARDS / "sim.json").read_bytes()
    # the counter file as provisioning made it, or as the running firmware has since reserved
    # further (its first heartbeat, a minute after boot, may already have gone)
    start, comp = struct.unpack(">II", got["ctr"])
    assert comp == start ^ 0xFFFFFFFF and (got["ctr"] == counter_file(1) or start > 1)
    device = json.loads(got["device.json"])
    assert device["device_id"] == dev["id"] and device["key_id"] == 1
    assert device["server"] == {"host": "sos.urelief.test", "port": 7420}
    assert device["sms_number"] == "+82112"
    assert device["cancel"] == {"presses": 4, "duress_presses": 6}
    assert device["centre"] == "+82231502112"  # E.164, as a silent call dials it
    boot = events.since(board.dev.output, "boot", reset="power_on").split("raw REPL", 1)[0]
    assert not events.events(boot, "cannot_send")

    # The police server verifies a packet sealed with the secret on the board.
    res = server_verifies(police, device)
    assert res.ok and res.device_id == dev["id"]

    # The self-test buzzed the motor once; the label names the pupil, never the key.
    assert any(lv for lv, _ in board.motor)
    txt = (tmp_path / "labels" / f"urelief-0x{dev['id']:08x}.txt").read_text()
    svg = (tmp_path / "labels" / f"urelief-0x{dev['id']:08x}.svg").read_text()
    for text in (txt, svg):
        assert f"0x{dev['id']:08x}" in text and "Kim Minji (4-2)" in text
        assert "Demo Elementary" in text
        assert device["secret"] not in text and device["secret"][:16] not in text
    row = ProvisionLog(tmp_path / "provisioning.db").get(ids["P-001"])
    assert row["status"] == "done" and row["check_code"] in txt
    assert row["selftest"]["modem"]["answered"] and row["selftest"]["gnss"]["nmea"]

    # Running it again changes nothing.
    key_before = police.registry.device_key(dev["id"])
    again = provision_cli("device", "--port", board.port, "--subscriber", str(ids["P-001"]))
    assert again.exit_code == 0, again.output
    assert "already provisioned" in again.output
    assert police.registry.device_key(dev["id"]) == key_before
    assert police.devices() == [dev]


def test_selftest_fails_clearly_without_modem_then_rerun_completes(bench, police,
                                                                    provision_cli, tmp_path):
    ids = police.import_roster(ROSTER)
    board = bench.board("acm0", modem=False).plug()
    r = provision_cli("device", "--port", board.port, "--subscriber", str(ids["P-002"]))
    assert r.exit_code == 1
    assert "self-test: modem: no answer to AT" in r.output
    assert "not provisioned" in r.output
    (dev,) = police.devices()  # registered before the self-test, then marked
    assert dev["status"] == "retired"
    log = ProvisionLog(tmp_path / "provisioning.db")
    assert log.get(ids["P-002"])["status"] == "selftest_failed"
    assert not (tmp_path / "labels").exists()

    # The modem fitted, the same command again: the same device, re-keyed, live.
    board.unplug()
    board.with_modem = True
    board.plug()
    r = provision_cli("device", "--port", board.port, "--subscriber", str(ids["P-002"]))
    assert r.exit_code == 0, r.output
    (dev2,) = police.devices()
    assert dev2["id"] == dev["id"] and dev2["key_id"] == 2 and dev2["status"] == "provisioned"
    assert log.get(ids["P-002"])["status"] == "done"


def test_replace_rotates_the_key(bench, police, provision_cli, tmp_path):
    ids = police.import_roster(ROSTER)
    board = bench.board("acm0").plug()
    assert provision_cli("device", "--port", board.port, "--subscriber",
                         str(ids["P-001"])).exit_code == 0
    old = json.loads(read_back(board.port, ["device.json"], tmp_path / "a")["device.json"])

    # Another pupil on a board that is someone's device: refused, nothing changes.
    r = provision_cli("device", "--port", board.port, "--subscriber", str(ids["P-003"]))
    assert r.exit_code == 1
    assert f"already holds device 0x{old['device_id']:08x} for Kim Minji (4-2)" in r.output
    assert "--replace" in r.output
    assert json.loads(read_back(board.port, ["device.json"], tmp_path / "b")["device.json"]) == old

    r = provision_cli("device", "--port", board.port, "--subscriber", str(ids["P-003"]),
                      "--replace")
    assert r.exit_code == 0, r.output
    new = json.loads(read_back(board.port, ["device.json"], tmp_path / "c")["device.json"])
    assert new["device_id"] == old["device_id"] and new["key_id"] == 2
    assert new["secret"] != old["secret"]
    (dev,) = police.devices()
    assert dev["subscriber_id"] == ids["P-003"] and dev["key_id"] == 2
    assert server_verifies(police, new).ok
    # docs/protocol.md §8: the old key stays valid until the device uses the new one ...
    assert server_verifies(police, old).ok
    # ... and is dead once it has (what the ingest does on its first packet under key 2).
    cache = DeviceCache(police.registry.db, police.registry.server_key)
    assert server_verifies(police, new, cache=cache).ok
    cache.drop_previous_key(cache.get(new["device_id"]))
    assert not server_verifies(police, old, cache=cache).ok
    log = ProvisionLog(tmp_path / "provisioning.db")
    assert log.get(ids["P-001"])["status"] == "failed"  # Kim Minji needs a board again
    assert "re-provisioned for Park Seo" in log.get(ids["P-001"])["error"]


def test_esptool_step_is_real_and_refused_by_a_board_without_rom_bootloader(
        bench, police, provision_cli, tmp_path):
    ids = police.import_roster(ROSTER)
    board = bench.board("acm0").plug()
    image = tmp_path / "ESP32_GENERIC_S3.bin"
    image.write_bytes(b"\xe9" + bytes(4095))  # not flashed: the board never gets that far
    r = provision_cli("device", "--port", board.port, "--subscriber", str(ids["P-001"]),
                      "--flash-micropython", str(image))
    assert r.exit_code == 1
    assert "flash: esptool could not write ESP32_GENERIC_S3.bin" in r.output
    assert "no ROM bootloader answered" in r.output
    assert police.devices() == []
    # The board is untouched and still answers.
    files = read_back(board.port, ["board.json"], tmp_path / "back")
    assert files["board.json"] == (BOARDS / "sim.json").read_bytes()


def test_pupil_without_location_consent_is_refused(bench, police, provision_cli):
    sub = police.registry.create_subscriber(police.actor, {
        "school_id": police.school["id"], "pupil_ref": "X-1", "full_name": "Choi Yuna",
        "class_name": "4-2"})
    r = provision_cli("device", "--port", "/nonexistent", "--subscriber", str(sub["id"]))
    assert r.exit_code == 1
    assert "no active location consent" in r.output


def test_bad_settings_are_refused_before_any_board_is_touched(police, provision_cli):
    r = provision_cli("device", "--port", "/nonexistent", "--subscriber", "1", "--cancel", "4/4")
    assert r.exit_code == 1
    assert "device settings: cancel: 3..9 presses, the duress count different" in r.output


def test_a_centre_number_that_is_not_e164_is_refused_before_any_board(police, provision_cli):
    for bad in ("02-3150-2112", "+0231502112", "+112", "+82 2 3150 2112 99999", "+82abc"):
        r = provision_cli("device", "--port", "/nonexistent", "--subscriber", "1",
                          "--centre", bad)
        assert r.exit_code == 2, (bad, r.output)
        assert "--centre" in r.output and "not an E.164 number" in r.output, r.output


def test_esptool_writes_micropython_then_the_board_is_provisioned(
        bench, police, provision_cli, tmp_path):
    import threading
    import time

    from urelief.sim.spiflash import APP_OFFSET, merged_image

    ids = police.import_roster(ROSTER)
    board = bench.board("acm0").plug(boot_held=True)  # BOOT held while plugging in
    assert board.dev.state == "download"
    image = tmp_path / "ESP32_GENERIC_S3.bin"
    image.write_bytes(merged_image("esp32s3"))

    rom_log: list[str] = []

    def operator():  # once esptool has verified what it wrote: let go of BOOT, press EN
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            log = board.dev.rom.log if board.dev.rom else []
            if any(x.startswith("md5") for x in log):
                time.sleep(0.5)
                rom_log.extend(log)
                board.release_boot_and_reset()
                return
            time.sleep(0.05)

    t = threading.Thread(target=operator, daemon=True)
    t.start()
    r = provision_cli("device", "--port", board.port, "--subscriber", str(ids["P-001"]),
                      "--flash-micropython", str(image))
    t.join(5)
    assert r.exit_code == 0, r.output
    assert "flashing" in r.output
    # the whole chip erased before the image went on (MicroPython's install notes)
    assert "chip erased" in rom_log
    assert rom_log.index("chip erased") < next(i for i, x in enumerate(rom_log) if x.startswith("write"))
    written = board.dev.spiflash.read(0, len(image.read_bytes()))
    assert written[APP_OFFSET:] == image.read_bytes()[APP_OFFSET:]  # the application as sent
    assert len(police.devices()) == 1 and board.dev.boots >= 1
