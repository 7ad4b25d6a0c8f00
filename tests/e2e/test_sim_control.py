"""`urelief sim device --police` driven from another shell: the CLI's press on the control port
is the child's hold, and the incident reaches the police server; hostile control lines refused."""

from __future__ import annotations

import json
import time

from click.testing import CliRunner
from urelief.sim.cli import sim
from urelief.sim.control import ControlServer, send


def test_press_from_the_cli_opens_an_incident(rig, police):
    r = rig(clock="real").start()
    r.wait_ready()
    ctl = ControlServer(r).start()
    try:
        before = {i["id"] for i in police.incidents() if i["device_id"] == r.cfg.device_id}
        out = CliRunner().invoke(sim, ["press", str(ctl.port), "--hold", "3.5"])
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)["ok"]
        deadline = time.monotonic() + 30
        new = []
        while time.monotonic() < deadline and not new:
            new = [i for i in police.incidents()
                   if i["device_id"] == r.cfg.device_id and i["id"] not in before]
            time.sleep(0.3)
        assert len(new) == 1, r.dev.output[-1500:]
        # hostile input: not an object, an unknown op, an out-of-range hold -> refused
        assert send(ctl.port, ["press"])["ok"] is False
        assert send(ctl.port, {"op": "launch"})["ok"] is False
        assert send(ctl.port, {"op": "press", "hold_s": 1e9})["ok"] is False
        assert send(ctl.port, {"op": "state"})["ok"] is True
    finally:
        ctl.stop()


def test_standing_device_from_another_shell(built_firmware, tmp_path):
    """The whole command: `urelief sim device --police` prints its control port; another shell's
    `urelief sim press PORT` is an SOS the terminal sends and the police ack."""
    import subprocess
    import sys
    from pathlib import Path

    cli = str(Path(sys.executable).with_name("urelief"))
    proc = subprocess.Popen([cli, "sim", "device", "--police", "--workdir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(proc.stdout.readline())
        time.sleep(3)  # the terminal boots
        subprocess.run([cli, "sim", "press", str(port), "--hold", "3.5"], check=True, timeout=30)
        deadline, acked = time.monotonic() + 30, False
        while time.monotonic() < deadline and not acked:
            time.sleep(0.5)
            state = json.loads(subprocess.run([cli, "sim", "state", str(port)], check=True,
                                              capture_output=True, text=True, timeout=30).stdout)
            acked = any(e["event"] == "ack" for e in state["events"])
        assert acked, state
    finally:
        proc.terminate()
        proc.wait(30)
