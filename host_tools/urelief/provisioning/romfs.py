"""The firmware as a ROMFS image, for a board whose MicroPython image has ROMFS (MicroPython
>= 1.25 built with MICROPY_VFS_ROM and a romfs partition): the modules go into the read-only
image, which the board maps from flash and imports in place (their bytecode never copied into
the heap); littlefs keeps what changes or must run from `/`: the entry points and the
device's own files. Stock Espressif images have no ROMFS: there the whole tree goes onto
littlefs as .mpy files."""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path

from mpremote.romfs import make_romfs

ON_LITTLEFS = ("boot.py", "main.py")  # MicroPython runs these from the filesystem root


def split(tree: Path, fs_out: Path, rom_out: Path | None = None) -> bytes:
    """A deployed tree (firmware + device files) -> the ROMFS image of its firmware modules;
    `fs_out` gets what stays on littlefs: the entry points and every non-module file
    (/device.json, /ctr, ...); `rom_out`, if given, the tree the image holds."""
    tree, fs_out = Path(tree), Path(fs_out)
    for d in (fs_out, rom_out):
        if d is not None and Path(d).exists():
            shutil.rmtree(d)
    fs_out.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        rom = Path(rom_out) if rom_out is not None else Path(tmp) / "rom"
        rom.mkdir(parents=True)
        for path in sorted(tree.rglob("*")):
            if path.is_dir():
                continue
            rel = path.relative_to(tree)
            module = path.suffix in (".mpy", ".py") and rel.as_posix() not in ON_LITTLEFS
            dest = (rom if module else fs_out) / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints the tree it packs
            return make_romfs(str(rom), mpy_cross=False)


def empty() -> bytes:
    """A valid ROMFS image holding nothing: deployed where the firmware goes on as files, so
    no module of an earlier ROMFS deployment stays on the board."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        return make_romfs(tmp, mpy_cross=False)
