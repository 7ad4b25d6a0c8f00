"""The virtual board's whole SPI NOR flash chip, as the ROM bootloader (and esptool) see it.

Layout (MicroPython's ESP32 4 MB partition table): bootloader at 0x1000 (ESP32) or 0x0 (ESP32-S3),
partition table 0x8000, nvs 0x9000, phy_init 0xF000, the application (MicroPython) at 0x10000,
and the `vfs` partition at 0x200000 — the littlefs image file the board mounts. The vfs region
is that file itself, so what esptool writes there is what MicroPython mounts next boot; the rest
lives in a sparse side file created the first time anything writes outside vfs. Until then the
chip is as it left the factory line: MicroPython installed (the VM stands in for the app).

NOR semantics: an erase sets 4 KB sectors to 0xFF; a program can only clear bits (new = old AND
data), so writing without erasing first corrupts, as on the chip.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

SECTOR = 0x1000
APP_OFFSET = 0x10000
VFS_OFFSET = 0x200000
# An image built with ROMFS (MicroPython's ports/esp32/partitions-4MiB-romfs.csv): the romfs
# partition (data, subtype 0x8f) right below vfs.
ROMFS_OFFSET = 0x1E0000
ROMFS_SIZE = 0x20000
IMAGE_MAGIC = 0xE9  # first byte of an ESP application / bootloader image
CHIP_IDS = {"esp32": 0, "esp32s3": 9}  # the image's extended header chip id (ESP-IDF)
BOOTLOADER_OFFSET = {"esp32": 0x1000, "esp32s3": 0x0}
# JEDEC RDID answer (0x9F): a Winbond W25Q32 (manufacturer 0xEF, type 0x40, 2^22 bytes)
JEDEC_ID = (0xEF, 0x40, 0x16)


class FlashError(ValueError):
    pass


class SpiFlash:
    def __init__(self, vfs_image: Path, vfs_size: int, size: int = 4 * 1024 * 1024):
        if VFS_OFFSET + vfs_size > size:
            raise FlashError("the vfs partition does not fit the chip")
        self.vfs = Path(vfs_image)
        self.vfs_size = vfs_size
        self.size = size
        self.rest = self.vfs.with_name(self.vfs.name + ".rom")  # everything but vfs

    @property
    def factory(self) -> bool:
        """Nothing written outside vfs yet: the factory-installed MicroPython is in place."""
        return not self.rest.exists()

    # -- byte access -----------------------------------------------------------------------
    def _spans(self, addr: int, n: int):
        """(file, file offset, flash addr, length) pieces of [addr, addr+n)."""
        if addr < 0 or n < 0 or addr + n > self.size:
            raise FlashError(f"0x{addr:x}+0x{n:x} is outside the {self.size >> 20} MB chip")
        end = addr + n
        while addr < end:
            if addr < VFS_OFFSET:
                stop = min(end, VFS_OFFSET)
                yield self.rest, addr, addr, stop - addr
            elif addr < VFS_OFFSET + self.vfs_size:
                stop = min(end, VFS_OFFSET + self.vfs_size)
                yield self.vfs, addr - VFS_OFFSET, addr, stop - addr
            else:
                stop = end
                yield self.rest, addr - self.vfs_size, addr, stop - addr
            addr = stop

    def _materialise(self) -> None:
        if self.rest.exists():
            return
        with open(self.rest, "wb") as f:  # erased chip, sparse until written
            f.truncate(self.size - self.vfs_size)
            f.seek(0)
            blank = b"\xff" * 65536
            for _ in range((self.size - self.vfs_size) // len(blank)):
                f.write(blank)

    def romfs_partition(self, soc: str) -> tuple[Path, int, int]:
        """(file, offset, size) of the romfs partition of an image built with ROMFS; a chip
        fresh from the factory line gets that image (bootloader and app) written first."""
        if self.factory:
            self._materialise()
            self._write_raw(BOOTLOADER_OFFSET[soc], merged_image(soc))
        return self.rest, ROMFS_OFFSET, ROMFS_SIZE

    def write_romfs(self, soc: str, image: bytes) -> None:
        """Put a ROMFS image in the romfs partition (as `esptool write_flash 0x1e0000` or
        `mpremote romfs deploy` would)."""
        if len(image) > ROMFS_SIZE:
            raise FlashError(f"the ROMFS image ({len(image)} B) exceeds its partition ({ROMFS_SIZE} B)")
        self.romfs_partition(soc)
        self.erase(ROMFS_OFFSET, len(image))
        self.program(ROMFS_OFFSET, image)

    def read(self, addr: int, n: int) -> bytes:
        out = bytearray()
        for path, off, _, ln in self._spans(addr, n):
            if path == self.rest and not path.exists():
                out += b"\xff" * ln  # factory: never written through the ROM
                continue
            with open(path, "rb") as f:
                f.seek(off)
                chunk = f.read(ln)
            out += chunk + b"\xff" * (ln - len(chunk))
        return bytes(out)

    def _write_raw(self, addr: int, data: bytes) -> None:
        pos = 0
        for path, off, _, ln in self._spans(addr, len(data)):
            if path == self.rest:
                self._materialise()
            fd = os.open(path, os.O_RDWR | os.O_CREAT)
            try:
                os.pwrite(fd, data[pos:pos + ln], off)
                os.fsync(fd)
            finally:
                os.close(fd)
            pos += ln

    def program(self, addr: int, data: bytes) -> None:
        """Page program: bits can only go from 1 to 0."""
        old = self.read(addr, len(data))
        self._write_raw(addr, bytes(a & b for a, b in zip(old, data, strict=True)))

    def erase(self, addr: int, n: int) -> None:
        """Erase the 4 KB sectors covering [addr, addr+n)."""
        if addr % SECTOR:
            raise FlashError(f"erase at 0x{addr:x}: not on a sector boundary")
        n = -(-n // SECTOR) * SECTOR
        for a in range(addr, addr + n, 0x10000):
            ln = min(0x10000, addr + n - a)
            self._write_raw(a, b"\xff" * ln)

    def erase_all(self) -> None:
        self._materialise()
        self.erase(0, self.size)

    def md5(self, addr: int, n: int) -> bytes:
        return hashlib.md5(self.read(addr, n)).digest()

    # -- what the ROM checks at boot -------------------------------------------------------
    def boot_check(self, soc: str) -> str | None:
        """None if the second-stage bootloader and the app would start; else the ROM's complaint."""
        if self.factory:
            return None
        for what, off in (("bootloader", BOOTLOADER_OFFSET[soc]), ("app", APP_OFFSET)):
            head = self.read(off, 24)
            if head[0] != IMAGE_MAGIC:
                return f"invalid header: 0x{struct.unpack('<I', head[:4])[0]:08x} ({what} at 0x{off:x})"
            chip = struct.unpack_from("<H", head, 12)[0]
            if chip != CHIP_IDS[soc]:
                return f"{what} image at 0x{off:x} is for chip id {chip}, not this {soc}"
        return None


def esp_image(soc: str, payload: bytes, load_addr: int = 0x3FC90000) -> bytes:
    """A minimal valid ESP application image (esp-idf's format: header, extended header with
    the chip id, one segment, the XOR checksum on a 16-byte boundary), to stand for a
    bootloader or MicroPython when flashing the virtual board; the VM runs in its place."""
    payload += b"\x00" * (-len(payload) % 4)
    head = struct.pack("<BBBBI", IMAGE_MAGIC, 1, 2, 0x20, 0x40080000)  # DIO, 4 MB @ 40 MHz
    ext = struct.pack("<B3sHBHH4sB", 0xEE, b"\x00" * 3, CHIP_IDS[soc], 0, 0, 0xFFFF,
                      b"\x00" * 4, 0)
    body = head + ext + struct.pack("<II", load_addr, len(payload)) + payload
    body += b"\x00" * (15 - len(body) % 16)
    chk = 0xEF
    for b in payload:
        chk ^= b
    return body + bytes([chk])


def merged_image(soc: str) -> bytes:
    """What a MicroPython .bin for `soc` is laid out like, from its bootloader offset: the
    bootloader, erased flash up to 0x10000, the application."""
    boot = esp_image(soc, b"second stage bootloader")
    app = esp_image(soc, b"MicroPython application" * 64)
    gap = APP_OFFSET - BOOTLOADER_OFFSET[soc] - len(boot)
    return boot + b"\xff" * gap + app
