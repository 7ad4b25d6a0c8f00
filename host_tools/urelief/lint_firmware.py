"""Type-check the firmware against MicroPython's own stubs (micropython-esp32-stubs).

The firmware is checked as MicroPython sees it: MicroPython's stdlib stubs replace CPython's
typeshed, the ESP32 port's modules (`machine`, `esp32`, `micropython`) come from the port stubs,
and the firmware tree is the import root, as on the board's flash.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from urelief.paths import FIRMWARE


def main() -> int:
    site = Path(sysconfig.get_paths()["purelib"])
    if not (site / "stdlib" / "VERSIONS").exists():
        print("micropython-stdlib-stubs missing: pip install -e '.[dev]'", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        stubs = Path(tmp) / "port"
        stubs.mkdir()
        for pyi in site.glob("*.pyi"):  # the ESP32 port's modules, away from CPython's packages
            (stubs / pyi.name).symlink_to(pyi)
        shed = site / "_mpy_shed"
        if shed.is_dir():
            (stubs / "_mpy_shed").symlink_to(shed)
        cfg = Path(tmp) / "mypy.ini"
        # The stubs carry their own typing slips: checked against, never reported on.
        quiet = sorted({p.stem for p in site.glob("*.pyi")} | {"_mpy_shed", "_mpy_shed.*"})
        sections = "".join(f"\n[mypy-{m}]\nignore_errors = True\n" for m in quiet)
        cfg.write_text(
            "[mypy]\n"
            f"mypy_path = {FIRMWARE}:{stubs}\n"
            f"custom_typeshed_dir = {site}\n"
            "no_site_packages = True\n"
            "explicit_package_bases = True\n"
            "check_untyped_defs = True\n"
            "warn_unused_ignores = False\n" + sections
        )
        proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(cfg), str(FIRMWARE)])
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
