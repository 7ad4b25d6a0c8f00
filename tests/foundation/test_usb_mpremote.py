"""The real mpremote against the virtual board's USB serial port."""

import os
import subprocess
import sys

import pytest
from urelief.sim.device import SOFT_RESET

FOREVER_MAIN = """
import time
n = 0
while True:
    n += 1
    time.sleep_ms(50)
"""
COUNTING_BOOT = """
try:
    n = int(open('boots.txt').read())
except OSError:
    n = 0
with open('boots.txt', 'w') as f:
    f.write(str(n + 1))
"""


def mpremote(port: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def board(tmp_path, tree):
    """A started virtual board on a real clock with its USB port open; yields (dev, port)."""
    from urelief.sim.device import VirtualDevice

    made = []

    def make(**files):
        dev = VirtualDevice(flash=tmp_path / "flash.img", firmware=tree(**files), clock="real")
        made.append(dev)
        port = dev.console.open_usb()
        dev.start()
        return dev, port

    yield make
    for d in made:
        d.stop()


def test_exec_reports_micropython(board):
    dev, port = board(main_py="print('main up')\n")
    r = mpremote(port, "exec", "import sys; print(sys.implementation.name)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "micropython"


def test_ctrl_c_interrupts_a_running_main(board):
    dev, port = board(main_py=FOREVER_MAIN)
    dev.run_for(500)
    r = mpremote(port, "resume", "exec", "print('n =', n > 0)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "n = True"  # main.py's globals: it ran, then was interrupted
    assert "KeyboardInterrupt" in dev.output


@pytest.mark.parametrize("main", [
    # asyncio idling while the board samples its heap (a collection before each idle)
    "import asyncio\nasync def m():\n    while True:\n        b = bytearray(3000)\n"
    "        await asyncio.sleep_ms(1)\nasyncio.run(m())\n",
    "n = 0\nwhile True:\n    n += 1\n",  # a busy loop that never waits: a SIGINT ends it
], ids=["asyncio", "busy"])
def test_ctrl_c_is_safe_in_any_loop(board, main):
    """Ctrl-C lands as KeyboardInterrupt, never as a crash of the VM (a SIGINT that landed in
    the heap sampling's garbage collection left the heap locked: 'FATAL: uncaught NLR')."""
    for _ in range(3):
        dev, port = board(main_py=main)
        dev.run_for(300)
        r = mpremote(port, "exec", "print('alive')")
        assert r.returncode == 0 and r.stdout.strip() == "alive", r.stdout + r.stderr + dev.output[-500:]
        assert "FATAL" not in dev.output and "heap is locked" not in dev.output
        assert "KeyboardInterrupt" in dev.output


def test_fs_cp_round_trips_byte_identical(board, tmp_path):
    dev, port = board(main_py="print('idle')\n")
    blob = os.urandom(20_000) + bytes(range(256))
    src, back = tmp_path / "blob.bin", tmp_path / "back.bin"
    src.write_bytes(blob)
    r = mpremote(port, "fs", "mkdir", "data", "+", "fs", "cp", str(src), ":data/blob.bin",
                 "+", "fs", "cp", ":data/blob.bin", str(back), "+", "fs", "ls", "data")
    assert r.returncode == 0, r.stderr
    assert back.read_bytes() == blob
    assert f"{len(blob)} blob.bin" in r.stdout
    r = mpremote(port, "fs", "rm", "data/blob.bin", "+", "fs", "rmdir", "data", "+", "fs", "ls")
    assert r.returncode == 0 and " data/" not in r.stdout.split("ls :")[1]


def test_files_written_by_mpremote_survive_power_cycle(board, tmp_path):
    dev, port = board(main_py="print('idle')\n")
    (tmp_path / "cfg.json").write_text('{"hold_ms": 2000}')
    assert mpremote(port, "fs", "cp", str(tmp_path / "cfg.json"), ":cfg.json").returncode == 0
    dev.power_cycle()
    dev.run_until(lambda: dev.boots == 2 and dev.output.count("idle") == 2, timeout_ms=5000)
    r = mpremote(port, "fs", "cat", "cfg.json")
    assert r.stdout.strip() == '{"hold_ms": 2000}'


def test_soft_reset_reruns_boot_py(board):
    dev, port = board(boot_py=COUNTING_BOOT, main_py=FOREVER_MAIN)
    dev.run_for(300)
    r = mpremote(port, "soft-reset", "exec", "print(open('boots.txt').read())")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "2"
    assert "MPY: soft reboot" in dev.output


def test_reset_restarts_the_board(board):
    dev, port = board(main_py="import machine\nprint('cause', machine.reset_cause())\n")
    dev.wait_output("cause 1", timeout_ms=3000)
    r = mpremote(port, "reset")
    assert r.returncode == 0, r.stderr
    dev.run_until(lambda: f"cause {SOFT_RESET}" in dev.output, timeout_ms=5000)
    assert dev.reset_cause == SOFT_RESET


def test_run_executes_a_host_script_on_the_board(board, tmp_path):
    dev, port = board(main_py="print('idle')\n")
    script = tmp_path / "probe.py"
    script.write_text("import machine, os\nprint('board', len(machine.unique_id()), 'main.py' in os.listdir())\n")
    r = mpremote(port, "run", str(script))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "board 6 True"
