"""Provisioning fits the firmware to the board's MicroPython image: a ROMFS image where the board's
image has ROMFS, .mpy files otherwise, and a board whose image cannot run the firmware refused
before anything is written, with the image to flash named. Real mpremote, virtual boards."""

import json

import pytest
from provkit import ROSTER, mpremote, server_verifies
from urelief.provisioning import fit
from urelief.sim import events

ENTRY = {"boot.py", "main.py", "board.json", "device.json", "ctr"}


def _ls(port: str) -> set[str]:
    """Every file on the board's littlefs, listed by the board (a mounted /rom left out)."""
    code = ("import os\n"
            "def w(d):\n"
            "    for e in os.ilistdir(d):\n"
            "        p = d + e[0] if d == '/' else d + '/' + e[0]\n"
            "        if p != '/rom':\n"
            "            w(p) if e[1] == 0x4000 else print('F', p[1:])\n"
            "w('/')\n")
    r = mpremote(port, "exec", code)
    assert r.returncode == 0, r.stderr
    return {ln[2:] for ln in r.stdout.splitlines() if ln.startswith("F ")}


def test_a_romfs_image_gets_the_firmware_as_romfs_and_runs_it_from_rom(bench, police, provision_cli,
                                                                        tmp_path, built_firmware):
    ids = police.import_roster(ROSTER)
    board = bench.board("acm0", image="romfs").plug()
    r = provision_cli("device", "--port", board.port, "--subscriber", str(ids["P-001"]))
    assert r.exit_code == 0, r.output
    assert "deploying as ROMFS image" in r.output
    (dev,) = police.devices()
    assert dev["status"] == "provisioned"

    # littlefs holds only the entry points and the device's own files; the modules are in the
    # romfs partition, byte for byte the build's, and imported from /rom.
    board.dev.power_cycle()
    assert board.dev.wait_output(events.line("boot", board="sim", reset="power_on"), 60_000)
    on_fs = _ls(board.port)
    assert ENTRY <= on_fs and {f for f in on_fs if f.endswith((".py", ".mpy"))} == {"boot.py", "main.py"}
    q = mpremote(board.port, "romfs", "query")
    assert q.returncode == 0 and "ROMFS0 partition" in q.stdout, q.stdout + q.stderr
    code = ("import alarm.feedback as m, sys\n"
            "f = open('/rom/alarm/feedback.mpy', 'rb'); b = f.read(); f.close()\n"
            "print('AT', m.__file__, len(b))\n")
    r2 = mpremote(board.port, "exec", code)
    assert r2.returncode == 0, r2.stderr
    path, size = r2.stdout.split("AT ", 1)[1].split()
    assert path == "/rom/alarm/feedback.mpy"
    assert int(size) == (built_firmware / "alarm" / "feedback.mpy").stat().st_size
    boot = events.since(board.dev.output, "boot", reset="power_on").split("raw REPL", 1)[0]
    assert not events.events(boot, "cannot_send") and not events.events(boot, "crash")

    # the key it holds is the one the police hold
    got = mpremote(board.port, "fs", "cat", ":device.json")
    assert server_verifies(police, json.loads(got.stdout)).ok


def test_a_board_without_the_heap_is_refused_before_anything_is_written(bench, police,
                                                                       provision_cli):
    ids = police.import_roster(ROSTER)
    board = bench.board("acm0", heap_kb=96).plug()  # a PSRAM board flashed with a non-SPIRAM image
    before = _ls(board.port)
    r = provision_cli("device", "--port", board.port, "--subscriber", str(ids["P-001"]))
    assert r.exit_code == 1
    assert "KB of free heap" in r.output and "ESP32_GENERIC_S3-SPIRAM_OCT" in r.output, r.output
    assert police.devices() == []
    assert _ls(board.port) == before and "device.json" not in before


def test_romfs_asked_of_a_stock_image_is_refused(bench, police, provision_cli):
    ids = police.import_roster(ROSTER)
    board = bench.board("acm0").plug()
    r = provision_cli("device", "--port", board.port, "--subscriber", str(ids["P-001"]),
                      "--deploy", "romfs")
    assert r.exit_code == 1
    assert "has no ROMFS" in r.output and "--deploy files" in r.output, r.output
    assert police.devices() == []


def test_files_on_a_romfs_image_clear_the_romfs(bench, police, provision_cli):
    ids = police.import_roster(ROSTER)
    board = bench.board("acm0", image="romfs").plug()
    assert provision_cli("device", "--port", board.port, "--subscriber", str(ids["P-001"])).exit_code == 0
    r = provision_cli("device", "--port", board.port, "--subscriber", str(ids["P-001"]),
                      "--replace", "--deploy", "files")
    assert r.exit_code == 0, r.output
    assert "deploying as .mpy files on littlefs (asked for)" in r.output
    assert "alarm/feedback.mpy" in _ls(board.port)
    code = ("import vfs, os\n"
            "try:\n"
            "    vfs.mount(vfs.VfsRom(vfs.rom_ioctl(2, 0)), '/rom')\n"
            "except OSError:\n"
            "    pass  # mounted at boot\n"
            "print('ROM', os.listdir('/rom'))\n")
    out = mpremote(board.port, "exec", code).stdout
    assert "ROM []" in out, out


PROBE = {"version": "1.25.0", "mpy": 0x0B06, "asyncio": True, "crypto": True,
         "heap_free": 4_000_000, "romfs": None, "word": 4}
S3 = {"soc": "esp32s3", "psram": "octal"}
PLAIN = {"soc": "esp32", "psram": "none"}


@pytest.mark.parametrize("probe, board, want, expect", [
    ({}, S3, "auto", "files"),
    ({"romfs": 131072}, S3, "auto", "romfs"),
    ({"romfs": 131072}, S3, "files", "files"),
    ({"romfs": 1024}, S3, "auto", "files"),  # partition too small for the image
    ({"romfs": 131072, "heap_free": 155 * 1024}, PLAIN, "auto", "romfs"),
    ({"romfs": 131072, "heap_free": 110 * 1024}, PLAIN, "auto", "romfs"),  # a plain ESP32's heap
])
def test_plan_chooses_the_deployment(probe, board, want, expect):
    assert fit.plan({**PROBE, **probe}, board, 6, 60_000, want).deploy == expect


@pytest.mark.parametrize("probe, board, want, says", [
    ({"mpy": 0x0A05}, S3, "auto", ".mpy v5"),
    ({"mpy": None}, S3, "auto", "no .mpy version"),
    ({"crypto": False}, S3, "auto", "cryptolib AES-ECB"),
    ({"asyncio": False}, S3, "auto", "no asyncio"),
    ({"heap_free": 96 * 1024}, PLAIN, "auto", "built with ROMFS"),
    ({"heap_free": 96 * 1024, "romfs": 131072}, PLAIN, "auto", "needs 103 KB as a ROMFS image"),
    # the 64-bit VM's objects are larger: the measured figure itself
    ({"heap_free": 110 * 1024, "romfs": 131072, "word": 8}, PLAIN, "auto", "needs 145 KB as a ROMFS image"),
    ({}, S3, "romfs", "has no ROMFS"),
    ({"romfs": 1024}, S3, "romfs", "romfs partition 1024"),
])
def test_plan_refuses_with_what_to_flash(probe, board, want, says):
    with pytest.raises(fit.Unfit, match=".*") as e:
        fit.plan({**PROBE, **probe}, board, 6, 60_000, want)
    assert says in str(e.value)
