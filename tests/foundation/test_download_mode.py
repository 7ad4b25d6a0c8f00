"""The real esptool against the virtual board's ROM download mode (BOOT held low at reset):
chip and flash identification, reading the flash, erasing it (the board then has nothing to
boot), and writing a bootloader, an application and a littlefs image that the board then boots."""

import subprocess
import sys
import time

import pytest
from urelief.sim.device import BOOT_STRAP_GPIO, FLASH_BLOCKS, VirtualDevice
from urelief.sim.spiflash import APP_OFFSET, BOOTLOADER_OFFSET, VFS_OFFSET, esp_image

MAIN = "print('app from the written flash')\n"


def esptool(port: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """esptool as an operator runs it on a board without auto-reset (BOOT held by hand)."""
    return subprocess.run([sys.executable, "-m", "esptool", "--port", port, "--before", "no-reset",
                           "--after", "no-reset", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def dl(tmp_path, tree):
    """A virtual board (real clock: esptool is a real-time peer) with its USB port open, put into
    download mode as an operator does: hold BOOT, press EN."""
    made = []

    def make():
        dev = VirtualDevice(flash=tmp_path / "flash.img", firmware=tree(main_py=MAIN), clock="real")
        made.append(dev)
        port = dev.console.open_usb()
        dev.pin(BOOT_STRAP_GPIO).drive(0)
        dev.start()
        assert dev.run_until(lambda: dev.state == "download", timeout_ms=3000)
        return dev, port

    yield make
    for d in made:
        d.stop()


def reboot_normally(dev):
    dev.pin(BOOT_STRAP_GPIO).drive(None)  # BOOT released
    dev.hard_reset()


def test_esptool_identifies_the_chip_and_its_flash(dl):
    dev, port = dl()
    assert "waiting for download" in dev.output and dev.boots == 0  # no MicroPython ran
    r = esptool(port, "flash-id")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ESP32-S3" in r.stdout
    mac = ":".join(f"{b:02x}" for b in dev.unique_id)
    assert mac in r.stdout  # the MAC esptool reads from eFuse is machine.unique_id()
    assert "Manufacturer: ef" in r.stdout and "Detected flash size: 4MB" in r.stdout
    # esptool left its stub with "stay in bootloader": a second run finds the ROM loader again
    r = esptool(port, "read-mac")
    assert r.returncode == 0 and mac in r.stdout, r.stdout + r.stderr


def test_the_rom_loader_alone_writes_and_reads_back(dl, tmp_path):
    dev, port = dl()
    app = tmp_path / "app.bin"
    app.write_bytes(esp_image("esp32s3", bytes(range(256)) * 12))
    r = esptool(port, "--no-stub", "write-flash", hex(APP_OFFSET), str(app))
    assert r.returncode == 0 and "Hash of data verified" in r.stdout, r.stdout + r.stderr
    back = tmp_path / "back.bin"
    r = esptool(port, "--no-stub", "read-flash", hex(APP_OFFSET), hex(len(app.read_bytes())), str(back))
    assert r.returncode == 0, r.stdout + r.stderr
    assert back.read_bytes() == app.read_bytes()


def test_read_flash_gives_the_littlefs_partition_byte_for_byte(dl, tmp_path):
    dev, port = dl()
    out = tmp_path / "vfs.bin"
    r = esptool(port, "read-flash", hex(VFS_OFFSET), "0x8000", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.read_bytes() == dev.flash.read_bytes()[:0x8000]


def test_erase_then_write_images_and_a_filesystem_the_board_boots(dl, tmp_path, tree):
    dev, port = dl()
    r = esptool(port, "erase-flash")
    assert r.returncode == 0, r.stdout + r.stderr
    reboot_normally(dev)
    assert dev.run_until(lambda: "invalid header: 0xffffffff" in dev.output, timeout_ms=3000)
    assert dev.state == "halted" and dev.boots == 0  # nothing to boot: no MicroPython runs

    # A littlefs image made on the host with the application, as a factory line would flash it.
    fs = VirtualDevice(flash=tmp_path / "fs.img", firmware=tree(main_py=MAIN))
    fs.format_flash(fs.firmware)
    fs.stop()
    boot = tmp_path / "bootloader.bin"
    boot.write_bytes(esp_image("esp32s3", b"2nd stage bootloader"))
    app = tmp_path / "micropython.bin"
    app.write_bytes(esp_image("esp32s3", b"MicroPython application" * 40))
    info = subprocess.run([sys.executable, "-m", "esptool", "image-info", str(app)],
                          capture_output=True, text=True)
    assert "valid" in info.stdout.lower(), info.stdout + info.stderr  # esptool agrees it is an image

    dev.pin(BOOT_STRAP_GPIO).drive(0)
    dev.hard_reset()
    assert dev.run_until(lambda: dev.state == "download", timeout_ms=3000)
    t0 = time.monotonic()
    r = esptool(port, "write-flash", hex(BOOTLOADER_OFFSET["esp32s3"]), str(boot),
                hex(APP_OFFSET), str(app), hex(VFS_OFFSET), str(tmp_path / "fs.img"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("Hash of data verified") == 3  # esptool's MD5 check of each region
    print(f"write-flash of {4096 * FLASH_BLOCKS >> 10} KB vfs + images: {time.monotonic() - t0:.1f} s")
    assert dev.flash.read_bytes() == (tmp_path / "fs.img").read_bytes()

    reboot_normally(dev)
    assert dev.run_until(lambda: "app from the written flash" in dev.output, timeout_ms=5000), dev.output[-800:]


def test_an_erased_filesystem_is_formatted_at_first_boot(dl, tmp_path):
    dev, port = dl()
    r = esptool(port, "erase-region", hex(VFS_OFFSET), hex(4096 * FLASH_BLOCKS))
    assert r.returncode == 0, r.stdout + r.stderr
    reboot_normally(dev)  # MicroPython is still in place; its filesystem is not
    assert dev.run_until(lambda: "Performing initial setup" in dev.output, timeout_ms=5000), dev.output[-800:]
    assert "app from the written flash" not in dev.output.split("Performing initial setup")[-1]
