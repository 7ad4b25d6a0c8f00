"""The real firmware modem driver on the virtual board against the emulated modules: boot via
PWRKEY, register, UDP both ways over a real loopback server, SMS both ways through the SMS network,
a GNSS fix, recovery from an unprompted modem reboot and from a hung modem (power cycle)."""

import shutil
import socket
import textwrap
import threading
from pathlib import Path

import pytest
from urelief.build import compile_module
from urelief.sim.device import VirtualDevice
from urelief.sim.modem import SmsNetwork, make
from urelief.sim.modem.emulator import Timing

# Shared head of the scenarios (MicroPython): console markers "T <key> <value>", a poll helper,
# and the modem on UART1 with PWRKEY on GPIO 41 as boards/sim.json wires it.
PRELUDE = r'''
import asyncio, machine, gc
from modem import dialect, on_uart
from modem.at import AtError
from modem.core import ModemError

def log(*a):
    print("T", *a)

async def until(pred, ms):
    for _ in range(ms // 100):
        if pred():
            return True
        await asyncio.sleep_ms(100)
    return pred()

def modem():
    uart = machine.UART(1, 115200, tx=17, rx=18, rxbuf=1024)
    key = machine.Pin(41, machine.Pin.OUT, value=0)
    return on_uart(dialect(DIALECT), uart, key.value, log=lambda s: print("L", s))
'''

APP = PRELUDE + r'''
async def udp_roundtrip(m, payload):
    await m.udp_open("sos.test", 7000)
    await m.udp_send(payload)
    return await m.udp_recv(10000)

async def main():
    m = modem()
    await m.start()
    log("started", m.name, m.caps)
    s = await m.recv_sms(0)
    log("stored-sms", s and s.body, len(m.inbox))
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
    await m.power_down()
    await asyncio.sleep_ms(5000)
    log("powered-down", m.ready)
    await m.start()
    log("restarted", m.ready, await m.wait_registered(60000), m.resets)
    log("unknown-lines", m.at.stats["unknown"])
    gc.collect()
    log("heap", gc.mem_alloc(), gc.mem_free())
    log("done")

asyncio.run(main())
'''


@pytest.fixture(scope="module")
def firmware_tree(tmp_path_factory, built_firmware) -> Path:
    """The built firmware's modem and gnss packages (bytecode, as on the board)."""
    root = tmp_path_factory.mktemp("fw")
    for pkg in ("modem", "gnss"):
        shutil.copytree(built_firmware / pkg, root / pkg)
    return root


TAIL = b"\r\n\x00\xff\r"


def ack(payload: bytes) -> str:
    return repr(b"ack:" + payload + TAIL)


class EchoServer:
    """The police server's UDP port, stand-in: answers every datagram with b"ack:" + it + a binary
    tail (CR LF, NUL, 0xFF: the drivers must count bytes, not read lines)."""

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
            self.sock.sendto(b"ack:" + data + TAIL, addr)


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


def run_scenario(dialect, app_src, firmware_tree, tmp_path, triggers, stored_sms=None, setup=None,
                 **modem_kw):
    """Boot the board with `app_src` as its application against an emulated `dialect`; `triggers`
    maps a console marker to a fault to inject (fn(modem, net)); setup(modem) runs before the
    board boots. -> (results, modem, net, server)."""
    app = tmp_path / "fw"
    shutil.copytree(firmware_tree, app)
    # The scenario is compiled like the firmware (a board runs bytecode, not source, past main.py).
    src = tmp_path / "modemtest.py"
    src.write_text(f"DIALECT = {dialect!r}\n" + textwrap.dedent(app_src))
    compile_module(src, app / "modemtest.mpy")
    (app / "main.py").write_text("import modemtest\n")
    server = EchoServer()
    net = SmsNetwork()
    net.on_receive = lambda sms: net.deliver(sms.sender, "ACK " + _hex2(sms.body), "+82112")
    modem = make(dialect, sms_network=net, resolve={"sos.test": ("127.0.0.1", server.port)},
                 **modem_kw)
    dev = VirtualDevice(firmware=app, flash=tmp_path / "flash.img")
    modem.attach(dev, uart_id=1, pwrkey_gpio=41)
    if setup:
        setup(modem)
    if stored_sms:
        modem.store_sms("+82112", stored_sms)
    dev.start()
    # Faults are injected from the host loop at the device time the scenario asks for them.
    for marker, fn in triggers.items():
        when_output(dev, "T " + marker, lambda fn=fn: fn(modem, net))
    try:
        dev.run_until(lambda: "T done" in dev.output or "Traceback" in dev.output,
                      timeout_ms=900_000, timeout_s=120)
        assert "T done" in dev.output, dev.output[-3000:]
    finally:
        dev.stop()
        server.stop = True
        modem.close()
    return _results(dev.output), modem, net, server


def _hex2(body) -> str:
    return (body[:2] if isinstance(body, bytes) else body[:2].encode()).hex()


@pytest.mark.parametrize("dialect", ["sim7080", "a7670", "bg95"])
def test_driver_against_emulated_module(dialect, firmware_tree, tmp_path):
    r, modem, net, server = run_scenario(dialect, APP, firmware_tree, tmp_path, {
        "ready-for-reboot": lambda m, n: m.reboot(),
        "ready-for-hang": lambda m, n: setattr(m.faults, "no_answer", True),
    }, stored_sms="while you were off")
    assert r["started"].startswith(dialect)
    assert r["stored-sms"] == "while you were off 0"  # listed (AT+CMGL) and deleted at init
    assert modem.storage == {}  # every stored or announced SMS read and deleted
    assert r["registered"].startswith("True (1, 6699, 28036591, 7)")  # home, TAC 0x1A2B, CI
    assert r["udp"] == ack(b"sos-1") and r["udp-2"] == ack(b"sos-2") and r["udp-3"] == ack(b"sos-3")
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
    assert r["powered-down"] == "False" and r["restarted"] == "True True 2"  # no reset counted
    assert modem.boots == 4  # power-on, the unprompted reboot, the hang's power cycle, restart


APP_START = PRELUDE + r'''
async def main():
    m = modem()
    await m.start()
    log("started", m.ready, m.at.stats["power_cycles"])
    log("done")

asyncio.run(main())
'''


def test_a_slow_boot_is_not_switched_off_by_a_second_blind_press(firmware_tree, tmp_path):
    """PWRKEY toggles and the board has no STATUS line: a module that boots later than the driver
    waits must not be switched off again by the 'on' press (BG95: a 700 ms press also switches
    off). Here the boot URC comes 3.5 s after the release, past the wait the driver once had."""
    slow = Timing(at_ready_ms=4000, pwrkey_on_ms=500, pwrkey_off_ms=650, power_down_ms=1000)
    r, modem, *_ = run_scenario("bg95", APP_START, firmware_tree, tmp_path, {}, timing=slow)
    assert r["started"] == "True 1" and modem.boots == 1 and modem.on


def test_a_module_left_on_and_hung_by_an_mcu_reset_is_cycled_back(firmware_tree, tmp_path):
    """The MCU restarted while the module stayed powered and hung: the first press switches it
    off ("NORMAL POWER DOWN"), the driver waits until it is off, then switches it on."""
    def hung(m):
        m._power_on(at_ready_ms=0)
        m.faults.no_answer = True

    r, modem, *_ = run_scenario("bg95", APP_START, firmware_tree, tmp_path, {}, setup=hung)
    assert r["started"] == "True 1" and modem.boots == 2 and modem.on


APP_FAULTS = PRELUDE + r'''
async def main():
    m = modem()
    await m.start()
    asyncio.create_task(m.supervise())
    log("registered", await m.wait_registered(60000))
    log("ready-garbage")
    await until(lambda: m.at.stats["unknown"] > 0, 5000)
    try:
        await m.signal()
        log("cme", "none")
    except AtError as e:
        log("cme", e.kind, e.code)
    log("signal-after-garbage", (await m.signal())["rssi"])
    log("ready-slow")
    await asyncio.sleep_ms(100)
    log("slow-signal", (await m.signal())["rssi"])
    log("ready-sms-dup")
    await m.send_sms("+82112", "hello")
    a = await m.recv_sms(60000)
    b = await m.recv_sms(60000)
    log("sms-dup", a and a.body, b and b.body)
    log("ready-sms-drop")
    await m.send_sms("+82112", "again")
    log("sms-drop", await m.recv_sms(20000))
    log("ready-sms-late")
    await m.send_sms("+82112", "late")
    s = await m.recv_sms(20000)
    log("sms-late-early", s)
    s = await m.recv_sms(120000)
    log("sms-late", s and s.body)
    log("ready-coverage")
    await until(lambda: not m.registered(), 20000)
    log("lost", m.reg and m.reg[0])
    try:
        await m.udp_open("sos.test", 7000)
        await m.udp_send(b"lost")
        log("udp-nocov", "sent")
    except (AtError, ModemError) as e:
        log("udp-nocov", type(e).__name__)
    log("back", await m.wait_registered(120000))
    await m.udp_close()
    await m.udp_open("sos.test", 7000)
    await m.udp_send(b"sos-4")
    log("udp-back", await m.udp_recv(10000))
    r0 = m.resets
    log("ready-denied")
    await until(lambda: m.resets > r0 and m.ready, 60000)
    log("denied", await m.wait_registered(60000), m.reg and m.reg[0])
    r0 = m.resets
    log("ready-searching")
    await until(lambda: m.resets > r0 and m.ready, 60000)
    log("searching", await m.wait_registered(30000), m.reg and m.reg[0])
    r0 = m.resets
    log("ready-no-sim")
    await until(lambda: m.resets > r0 and m.last_error is not None, 60000)
    log("no-sim", m.ready, repr(m.last_error))
    log("unknown-lines", m.at.stats["unknown"])
    log("done")

asyncio.run(main())
'''


def _slow(m, n):
    m.faults.slow_ms = 1500  # answers 1.5 s late: inside the 2 s deadline


def _late(m, n):
    m.faults.slow_ms = 0
    n.faults.delay_ms = 60_000  # the SMSC holds the reply a minute


def _no_coverage(m, n):
    n.faults.delay_ms = 0
    m.set_coverage(False)
    m.clock.call_later(40_000, lambda: m.set_coverage(True))


def _reboot_with(**faults):
    def fn(m, n):
        for k, v in faults.items():
            setattr(m.faults, k, v)
        m.reboot()
    return fn


@pytest.mark.parametrize("dialect", ["sim7080", "a7670"])
def test_driver_survives_injected_faults(dialect, firmware_tree, tmp_path):
    r, modem, net, server = run_scenario(dialect, APP_FAULTS, firmware_tree, tmp_path, {
        "ready-garbage": lambda m, n: (m.garbage(), m.faults.errors.update({"AT+CSQ": ["+CME ERROR: 100"]})),
        "ready-slow": _slow,
        "ready-sms-dup": lambda m, n: setattr(n.faults, "duplicate", 1),
        "ready-sms-drop": lambda m, n: setattr(n.faults, "drop", 1),
        "ready-sms-late": _late,
        "ready-coverage": _no_coverage,
        "ready-denied": _reboot_with(registration="denied"),
        "ready-searching": _reboot_with(registration="searching"),
        "ready-no-sim": _reboot_with(registration="ok", no_sim=True),
    })
    assert r["registered"] == "True"
    assert r["cme"] == "CME 100"  # +CME ERROR: 100 raised as AtError with its code
    assert r["signal-after-garbage"] == "-77" and r["slow-signal"] == "-77"
    assert r["sms-dup"] == "ACK 6865 ACK 6865"  # a duplicated SMS arrives twice: the app dedups
    assert r["sms-drop"] == "None"
    assert r["sms-late-early"] == "None" and r["sms-late"] == "ACK 6c61"
    assert r["lost"] == "2"  # searching
    assert r["udp-nocov"] in ("AtError", "ModemError")
    assert r["back"] == "True" and r["udp-back"] == ack(b"sos-4")
    assert r["denied"] == "False 3"
    assert r["searching"] == "False 2"
    assert r["no-sim"] == "False ModemError('no SIM (CME 10)',)"
    assert int(r["unknown-lines"]) >= 1  # the garbage was seen and counted, not dropped silently
