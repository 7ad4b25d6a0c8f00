"""Real headless Chromium for the page tests: Debian's `chromium`, driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"  # screenshots (gitignored)
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync")
# A camera that draws a moving test pattern, and camera/microphone prompts answered "allow".
FAKE_MEDIA = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")

marks = [pytest.mark.browser,
         pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]


@contextmanager
def chromium(*extra: str) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra], headless=True)
        try:
            yield b
        finally:
            b.close()
