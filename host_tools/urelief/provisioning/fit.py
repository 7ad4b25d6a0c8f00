"""Does this build of the firmware fit this board's MicroPython, and how is it deployed?

Judged before anything is written, from what the board itself says (its probe):
- its .mpy version must be the build's (bytecode-only .mpy: the version must match, the
  sub-version is ignored — MicroPython's "MicroPython .mpy files" reference);
- it must have `asyncio`, `cryptolib` AES-ECB (the firmware's CTR is built on it) and
  `hashlib` SHA-256 (HMAC), which the firmware runs on;
- the deployment: the firmware's modules as a ROMFS image where the image has a romfs
  partition large enough (MicroPython >= 1.25 built with MICROPY_VFS_ROM; stock Espressif
  images have none), else as .mpy files on littlefs;
- its free heap must hold the firmware's peak live heap for that deployment.
A board that fails is refused with the image to flash instead, named for the board's chip
and PSRAM (boards/*.json `soc`, `psram`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from urelief.sim.vm import WORD_RATIO

# The firmware's peak live heap in the SOS scenario, KB of the 64-bit VM (bench/heap.py on the
# virtual T-SIM7080G-S3, the largest build, 2026-12-07: 201 KB as .mpy files, 138 KB imported
# from ROMFS), with ~5 % to spare. A 32-bit chip (the probe's `word`: 4 bytes) needs WORD_RATIO
# of it: bench/heap.py weighs the firmware's modules on a real 32-bit MicroPython (the
# WebAssembly port) and on the 64-bit VM, 0.71 of the VM's bytes.
NEED_HEAP_KB = {"files": 211, "romfs": 145}


def need_kb(deploy: str, word: int | None) -> int:
    """The free heap the firmware needs, KB, on a board whose MicroPython words are `word`
    bytes (None: not said, the 64-bit figure, a bound from above)."""
    return round(NEED_HEAP_KB[deploy] * (WORD_RATIO if word == 4 else 1))

DEPLOYS = ("auto", "romfs", "files")

# The stock MicroPython image per chip and PSRAM (micropython.org/download, board ESP32_GENERIC
# and ESP32_GENERIC_S3 variants).
STOCK_IMAGE = {
    ("esp32", "quad"): "ESP32_GENERIC-SPIRAM",
    ("esp32s3", "quad"): "ESP32_GENERIC_S3 (it detects quad SPIRAM at start)",
    ("esp32s3", "octal"): "ESP32_GENERIC_S3-SPIRAM_OCT",
}


class Unfit(ValueError):
    """The board cannot run this build as it is; the message says what to flash."""


@dataclass(frozen=True)
class Plan:
    deploy: str  # "romfs" | "files"
    why: str  # one line for the operator and the log


def image_for(board: dict) -> str:
    """The MicroPython image this board needs, in words."""
    stock = STOCK_IMAGE.get((board.get("soc"), board.get("psram")))
    if stock:
        return f"MicroPython >= 1.25 {stock}"
    return ("a MicroPython >= 1.25 image built with ROMFS (MICROPY_VFS_ROM and a romfs "
            "partition: hw/micropython/URELIEF_ESP32_ROMFS, docs/provisioning.md): no stock "
            "image has the heap for the firmware on a chip without PSRAM")


def mpy_version(firmware: Path) -> int:
    """The .mpy version of a build (byte 1 of any .mpy header: b'M', version, flags, ...)."""
    for p in sorted(Path(firmware).rglob("*.mpy")):
        head = p.read_bytes()[:4]
        if len(head) == 4 and head[:1] == b"M":
            return head[1]
    raise Unfit(f"{firmware} holds no .mpy files: run `make build`")


def plan(probe: dict, board: dict, build_mpy: int, romfs_bytes: int, want: str = "auto") -> Plan:
    """The board's own report (BoardInfo.caps with its "version") -> how to deploy, or Unfit
    with what to flash. romfs_bytes: the size of the firmware's ROMFS image."""
    if want not in DEPLOYS:
        raise ValueError(f"deploy must be one of {', '.join(DEPLOYS)}")
    flash = f"flash {image_for(board)}"
    version = probe.get("version") or "?"
    mpy = probe.get("mpy")
    if not isinstance(mpy, int) or mpy & 0xFF != build_mpy:
        has = f".mpy v{mpy & 0xFF}" if isinstance(mpy, int) else "no .mpy version it reports"
        raise Unfit(f"MicroPython {version} on the board loads {has}; this build is .mpy "
                    f"v{build_mpy}: {flash}")
    missing = [name for name in ("asyncio", "crypto") if not probe.get(name)]
    if missing:
        what = {"asyncio": "asyncio", "crypto": "cryptolib AES-ECB with hashlib SHA-256"}
        raise Unfit(f"MicroPython {version} on the board has no "
                    f"{' or '.join(what[m] for m in missing)}: {flash}")
    rom = probe.get("romfs")  # the romfs partition's size in bytes, or None: no ROMFS
    if want == "romfs" and not rom:
        raise Unfit(f"MicroPython {version} on the board has no ROMFS (`mpremote romfs "
                    f"query`: not enabled); {flash}, or deploy as files (--deploy files)")
    if rom and want != "files" and romfs_bytes > rom:
        if want == "romfs":
            raise Unfit(f"the firmware's ROMFS image is {romfs_bytes} bytes, the board's romfs "
                        f"partition {rom}")
        rom = None  # too small a partition: files
    deploy = "romfs" if rom and want != "files" else "files"
    free_kb = (probe.get("heap_free") or 0) // 1024
    need = need_kb(deploy, probe.get("word"))
    if free_kb < need:
        alt = ("" if deploy == "romfs" else
               f", {need_kb('romfs', probe.get('word'))} KB from ROMFS")
        raise Unfit(f"the board has {free_kb} KB of free heap; the firmware needs "
                    f"{need} KB as {'a ROMFS image' if deploy == 'romfs' else '.mpy files'}"
                    f"{alt}: {flash}")
    why = (f"ROMFS image of {romfs_bytes} bytes into the board's {rom}-byte romfs partition"
           if deploy == "romfs" else
           ".mpy files on littlefs" + (" (the board's image has no ROMFS)" if not probe.get("romfs")
                                       else " (asked for)" if want == "files" else
                                       " (the romfs partition is too small)"))
    return Plan(deploy, f"{why}; {free_kb} KB heap free, {need} KB needed")
