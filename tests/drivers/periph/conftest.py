"""Fixtures for the peripheral (button, haptics, battery, PMU) tests on the MicroPython VM."""

import pytest


@pytest.fixture
def wait_console():
    """wait_console(dev, pred, timeout_ms) -> bool: run the device until pred(the console's
    complete lines) holds.

    The virtual board's console can trail device time by a moment of real time (an idle board
    jumps ahead at once), so a miss is re-checked for up to 2 s of real time; and it may be in
    the middle of a line, which the predicate never sees."""
    import time

    def whole(out: str) -> str:
        return out[:out.rfind("\n") + 1]

    def wait(dev, pred, timeout_ms):
        if dev.run_until(lambda: pred(whole(dev.output)), timeout_ms=timeout_ms):
            return True
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if pred(whole(dev.output)):
                return True
            time.sleep(0.02)
        return False

    return wait
