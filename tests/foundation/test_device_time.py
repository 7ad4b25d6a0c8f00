"""Device time never depends on host scheduling: a board waiting for the host is paused, not
skipped ahead (the fleet lost 73 of 2,508 holds to a host pause of >= 1 s before this held)."""

import os
import signal
import threading
import time

import pytest
from urelief.sim.models.button import HumanButton

SIM_BUTTON, SIM_MOTOR = 1, 10  # boards/sim.json
HOLD_MS = 3000  # the sim board's hold gesture


def slow_host_call(dev, at_ms: float, wall_s: float) -> None:
    """A model callback that takes wall_s of real time (a server call, a starved host thread)
    at device time at_ms from now: the host loop answers nothing meanwhile."""
    dev.clock.post(lambda: dev.clock.call_later(at_ms, lambda: time.sleep(wall_s)))


def board_descheduled(dev, at_ms: float, wall_s: float) -> None:
    """The machine gives the board's VM no CPU for wall_s (SIGSTOP, then SIGCONT), from device
    time at_ms from now."""
    def stop():
        pid = dev.chip_run.proc.pid
        os.kill(pid, signal.SIGSTOP)
        threading.Timer(wall_s, lambda: os.kill(pid, signal.SIGCONT)).start()
    dev.clock.post(lambda: dev.clock.call_later(at_ms, stop))


@pytest.mark.parametrize("pause", [(slow_host_call, 1900), (slow_host_call, 3500),
                                   (board_descheduled, 1900), (board_descheduled, 3500)],
                         ids=["slow-host-before-the-press", "slow-host-during-the-hold",
                              "board-stopped-before-the-press", "board-stopped-during-the-hold"])
def test_a_pause_neither_hides_a_hold_nor_moves_its_vibration(device, built_firmware, pause):
    dev = device(firmware=built_firmware)
    dev.wait_output("reset cause", timeout_ms=5000)
    motor = []
    dev.pin(SIM_MOTOR).on_change(lambda level, t_ms: motor.append((level, t_ms)))
    t0 = dev.clock.now_ms()
    pause[0](dev, pause[1], 1.2)
    HumanButton(dev, SIM_BUTTON).press(3500, after_ms=2000)
    dev.run_for(8000)
    gestures = [line for line in dev.output.splitlines() if "gesture" in line]
    assert len(gestures) == 1 and "hold" in gestures[0], dev.output[-1500:]
    on = [t - t0 for level, t in motor if level == 1]
    # this unprovisioned board feels the hold as CANNOT_SEND: four pulses, the first on time
    assert len(on) == 4, on
    assert 2000 + HOLD_MS <= on[0] <= 2000 + HOLD_MS + 300
