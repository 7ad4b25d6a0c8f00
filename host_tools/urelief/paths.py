"""Where the project's trees live, for host tools run from a checkout or an install."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
BOARDS = ROOT / "boards"
BUILD = ROOT / "build"
BUILD_FIRMWARE = BUILD / "firmware"
TESTS = ROOT / "tests"
