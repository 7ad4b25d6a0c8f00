"""The ESP32 / ESP32-S3 serial download mode, so the real esptool can flash the virtual board.

A chip reset with the BOOT strapping pin (GPIO0) held low starts the ROM's serial loader instead
of the application. It speaks SLIP-framed commands (Espressif's "Serial Protocol"): a request is
<u8 0x00, u8 op, u16 len, u32 checksum> + data, a response <u8 0x01, u8 op, u16 len, u32 value>
+ data + status (2 bytes; the ROM adds 2 reserved). esptool normally uploads its "flasher stub"
to RAM and runs it: the stub answers the same commands plus erase/read (ops 0xD0-0xD3) and
replies with 2 status bytes. Here the upload is accepted and, once it is "run", the loader
answers as the stub does. Flash ID comes from a RDID command run through the SPI registers,
as esptool drives it; eFuse reads give the chip's MAC from the board's unique id.

What is not modelled: RAM code is never executed, secure boot / flash encryption, the USB
OTG / Serial-JTAG peculiarities, baud rates (a pty has none).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable

from urelief.sim.spiflash import JEDEC_ID, SECTOR, FlashError, SpiFlash

END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD

# ops
FLASH_BEGIN, FLASH_DATA, FLASH_END = 0x02, 0x03, 0x04
MEM_BEGIN, MEM_END, MEM_DATA = 0x05, 0x06, 0x07
SYNC, WRITE_REG, READ_REG = 0x08, 0x09, 0x0A
SPI_SET_PARAMS, SPI_ATTACH, READ_FLASH_SLOW, CHANGE_BAUDRATE = 0x0B, 0x0D, 0x0E, 0x0F
FLASH_DEFL_BEGIN, FLASH_DEFL_DATA, FLASH_DEFL_END, SPI_FLASH_MD5 = 0x10, 0x11, 0x12, 0x13
GET_SECURITY_INFO = 0x14
ERASE_FLASH, ERASE_REGION, READ_FLASH, RUN_USER_CODE = 0xD0, 0xD1, 0xD2, 0xD3

# status reasons (second status byte)
INVALID_COMMAND, BAD_DATA_LEN, BAD_DATA_CHECKSUM, FAILED_SPI_OP = 0x05, 0xC1, 0xC2, 0xC4
CHECKSUM_SEED = 0xEF  # the data checksum: XOR of the bytes, seeded


class Chip:
    """Per-chip facts the loader answers with (ESP32 / ESP32-S3 technical reference manuals)."""

    def __init__(self, soc: str, mac: bytes):
        self.soc = soc
        self.mac = mac
        if soc == "esp32":
            self.magic = 0x00F01D83  # value at 0x40001000, the chip-detect ROM word
            self.security_info = False  # GET_SECURITY_INFO arrived with the ESP32-S2
            self.spi_base, self.usr2, self.w0 = 0x3FF42000, 0x24, 0x80
            self.uart_clkdiv = 0x3FF40014
            efuse = 0x3FF5A000  # EFUSE_BLK0_RDATA0; words 1, 2 hold the factory MAC
            mac_lo = struct.unpack(">I", mac[2:6])[0]
            mac_hi = struct.unpack(">H", mac[0:2])[0]
            self.regs = {efuse + 4: mac_lo, efuse + 8: mac_hi}
        elif soc == "esp32s3":
            self.magic = None  # identified by GET_SECURITY_INFO's chip id instead
            self.security_info = True
            self.chip_id = 9
            self.spi_base, self.usr2, self.w0 = 0x60002000, 0x20, 0x58
            self.uart_clkdiv = 0x60000014
            efuse_mac = 0x60007044  # EFUSE_RD_MAC_SPI_SYS_0 / _1
            self.regs = {efuse_mac: struct.unpack(">I", mac[2:6])[0],
                         efuse_mac + 4: struct.unpack(">H", mac[0:2])[0]}
        else:
            raise ValueError(f"no download mode model for {soc}")
        # 40 MHz crystal at 115200 Bd: the UART clock divider esptool reads to tell 26/40 MHz
        self.regs[self.uart_clkdiv] = 40_000_000 // 115200
        if self.magic is not None:
            self.regs[0x40001000] = self.magic


def slip(frame: bytes) -> bytes:
    body = frame.replace(bytes([ESC]), bytes([ESC, ESC_ESC])).replace(bytes([END]), bytes([ESC, ESC_END]))
    return bytes([END]) + body + bytes([END])


class RomLoader:
    """Feed it the bytes the host sends; it calls `send(bytes)` with what the chip answers and
    `run_app()` when told to leave download mode."""

    def __init__(self, chip: Chip, flash: SpiFlash, send: Callable[[bytes], None],
                 run_app: Callable[[], None]):
        self.chip = chip
        self.flash = flash
        self.send = send
        self.run_app = run_app
        self.stub = False
        self._frame = bytearray()
        self._in_frame = False
        self._esc = False
        self._regs: dict[int, int] = {}
        self._write: dict | None = None  # the flash write in progress
        self._read: dict | None = None  # a stub READ_FLASH in progress
        self.log: list[str] = []  # what was done, for tests and the console note

    def banner(self) -> bytes:
        return (b"rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"
                b"waiting for download\r\n")

    # -- framing ---------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        for b in data:
            if not self._in_frame:
                if b == END:
                    self._in_frame = True
                    self._frame.clear()
                continue  # noise between frames (a terminal typing) is ignored, as by the ROM
            if b == END:
                if self._frame:
                    self._packet(bytes(self._frame))
                    self._frame.clear()
                continue  # an empty frame: END END, resynchronise
            if self._esc:
                self._esc = False
                self._frame.append({ESC_END: END, ESC_ESC: ESC}.get(b, b))
            elif b == ESC:
                self._esc = True
            else:
                self._frame.append(b)

    def _reply(self, op: int, value: int = 0, data: bytes = b"", status: int = 0,
               reason: int = 0) -> None:
        st = bytes([status, reason]) + (b"" if self.stub else b"\x00\x00")
        body = data + st
        self.send(slip(struct.pack("<BBHI", 1, op, len(body), value) + body))

    def _packet(self, p: bytes) -> None:
        if self._read is not None and len(p) == 4:
            self._read_ack(struct.unpack("<I", p)[0])
            return
        if len(p) < 8 or p[0] != 0:
            return
        _, op, n, chk = struct.unpack_from("<BBHI", p)
        data = p[8:8 + n]
        if len(data) != n:
            self._reply(op, status=1, reason=BAD_DATA_LEN)
            return
        handler = self._HANDLERS.get(op)
        if handler is None or (op >= ERASE_FLASH and not self.stub) or \
                (op == GET_SECURITY_INFO and not self.chip.security_info):
            self._reply(op, status=1, reason=INVALID_COMMAND)
            return
        try:
            handler(self, op, data, chk)
        except (FlashError, struct.error, zlib.error) as e:
            self.log.append(f"op 0x{op:02x} failed: {e}")
            self._reply(op, status=1, reason=FAILED_SPI_OP)

    # -- commands --------------------------------------------------------------------------
    def _sync(self, op, data, chk):
        if data[:4] != b"\x07\x07\x12\x20":
            return
        # A SYNC is answered eight times over; the ROM's value is non-zero, the stub's 0 (so a
        # second esptool run finds the stub still running and skips the upload).
        for _ in range(8):
            self._reply(op, value=0 if self.stub else 0x20120707)

    def _read_reg(self, op, data, chk):
        (addr,) = struct.unpack("<I", data[:4])
        value = self._regs.get(addr, self.chip.regs.get(addr, 0))
        self._reply(op, value=value)

    def _write_reg(self, op, data, chk):
        for i in range(0, len(data) - 15, 16):
            addr, value, mask, _delay = struct.unpack_from("<IIII", data, i)
            old = self._regs.get(addr, 0)
            self._regs[addr] = (old & ~mask) | (value & mask)
            if addr == self.chip.spi_base and value & (1 << 18):
                self._spi_user_command()
        self._reply(op)

    def _spi_user_command(self) -> None:
        """SPI_CMD_REG's USR bit: run the command set up in USR2; RDID answers the JEDEC id."""
        cmd = self._regs.get(self.chip.spi_base + self.chip.usr2, 0) & 0xFFFF
        w0 = self.chip.spi_base + self.chip.w0
        if cmd == 0x9F:  # RDID
            self._regs[w0] = JEDEC_ID[0] | JEDEC_ID[1] << 8 | JEDEC_ID[2] << 16
        elif cmd == 0x05:  # RDSR: not busy
            self._regs[w0] = 0
        self._regs[self.chip.spi_base] = self._regs[self.chip.spi_base] & ~(1 << 18)  # done

    def _ok(self, op, data, chk):
        self._reply(op)

    def _security_info(self, op, data, chk):
        # flags (no secure boot, no secure download), flash crypt count, 7 key purposes,
        # chip id, ROM API version
        self._reply(op, data=struct.pack("<IB7BII", 0, 0, *([0] * 7), self.chip.chip_id, 0))

    def _mem_end(self, op, data, chk):
        no_entry, entry = struct.unpack("<II", data[:8])
        self._reply(op)
        if not no_entry and entry:
            # The uploaded flasher stub starts and greets; it is not executed here, the loader
            # now answers as the stub does.
            self.stub = True
            self.log.append("flasher stub running")
            self.send(slip(b"OHAI"))

    def _flash_begin(self, op, data, chk):
        size, _blocks, block_size, offset = struct.unpack_from("<IIII", data)
        if offset % SECTOR:
            raise FlashError(f"write at 0x{offset:x} is not sector aligned")
        if size:
            self.flash.erase(offset, size)
        self._write = {"offset": offset, "block": block_size, "pos": offset, "seq": 0,
                       "z": zlib.decompressobj() if op == FLASH_DEFL_BEGIN else None}
        self.log.append(f"write at 0x{offset:x} ({size} bytes erased)")
        self._reply(op)

    def _flash_data(self, op, data, chk):
        w = self._write
        size, seq = struct.unpack_from("<II", data)
        block = data[16:16 + size]
        if w is None or seq != w["seq"]:
            self._reply(op, status=1, reason=BAD_DATA_LEN)
            return
        c = CHECKSUM_SEED
        for b in block:
            c ^= b
        if c != chk & 0xFF:
            self._reply(op, status=1, reason=BAD_DATA_CHECKSUM)
            return
        if w["z"] is not None:
            out = w["z"].decompress(block)
        else:
            out = block
        self.flash.program(w["pos"], out)
        w["pos"] += len(out)
        w["seq"] += 1
        self._reply(op)

    def _flash_end(self, op, data, chk):
        # 0: reboot - a CPU reset keeps the boot mode latched at the last chip reset, so the
        # chip comes back in the ROM loader (esptool's "stay in bootloader" after the stub).
        # 1: the ROM jumps to the application ("run user code"); the stub just carries on.
        flag = struct.unpack("<I", data[:4])[0] if len(data) >= 4 else 1
        if self._write is not None:
            self.log.append(f"wrote 0x{self._write['offset']:x}..0x{self._write['pos']:x}")
        self._write = None
        self._reply(op)
        if flag == 0:
            self.stub = False
            self.log.append("CPU reset: back in the ROM loader")
        elif not self.stub:
            self.run_app()

    def _md5(self, op, data, chk):
        addr, size = struct.unpack_from("<II", data)
        d = self.flash.md5(addr, size)
        self.log.append(f"md5 0x{addr:x}+0x{size:x}")
        self._reply(op, data=d if self.stub else d.hex().encode())

    def _read_slow(self, op, data, chk):
        addr, size = struct.unpack_from("<II", data)
        chunk = self.flash.read(addr, min(size, 64))
        self._reply(op, data=chunk + b"\xff" * (64 - len(chunk)))

    def _erase_flash(self, op, data, chk):
        self.flash.erase_all()
        self.log.append("chip erased")
        self._reply(op)

    def _erase_region(self, op, data, chk):
        offset, size = struct.unpack_from("<II", data)
        self.flash.erase(offset, size)
        self.log.append(f"erased 0x{offset:x}+0x{size:x}")
        self._reply(op)

    def _read_flash(self, op, data, chk):
        offset, length, sector, _packet = struct.unpack_from("<IIII", data)
        blob = self.flash.read(offset, length)
        self._reply(op)
        self._read = {"blob": blob, "sector": sector or SECTOR, "sent": 0}
        self._read_next()

    def _read_next(self) -> None:
        r = self._read
        assert r is not None
        chunk = r["blob"][r["sent"]:r["sent"] + r["sector"]]
        r["sent"] += len(chunk)
        self.send(slip(chunk))

    def _read_ack(self, got: int) -> None:
        r = self._read
        assert r is not None
        if got < r["sent"]:
            return  # an ack for an earlier packet
        if r["sent"] < len(r["blob"]):
            self._read_next()
        else:
            self._read = None
            self.send(slip(hashlib.md5(r["blob"]).digest()))

    def _run_user_code(self, op, data, chk):
        self.run_app()

    _HANDLERS = {
        SYNC: _sync, READ_REG: _read_reg, WRITE_REG: _write_reg, SPI_SET_PARAMS: _ok,
        SPI_ATTACH: _ok, CHANGE_BAUDRATE: _ok, GET_SECURITY_INFO: _security_info,
        MEM_BEGIN: _ok, MEM_DATA: _ok, MEM_END: _mem_end,
        FLASH_BEGIN: _flash_begin, FLASH_DATA: _flash_data, FLASH_END: _flash_end,
        FLASH_DEFL_BEGIN: _flash_begin, FLASH_DEFL_DATA: _flash_data, FLASH_DEFL_END: _flash_end,
        SPI_FLASH_MD5: _md5, READ_FLASH_SLOW: _read_slow,
        ERASE_FLASH: _erase_flash, ERASE_REGION: _erase_region, READ_FLASH: _read_flash,
        RUN_USER_CODE: _run_user_code,
    }
