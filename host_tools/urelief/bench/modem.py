"""Modem driver figures.

On the MicroPython VM (96 KB heap, modem package compiled by mpy-cross as on the board): SMS PDU
decode/encode and AT line classification rates, heap taken by each dialect's code. On the virtual
board against the emulated SIM7080G / A7670: device time from power-on to AT-ready and to
registered, UDP round trip to a loopback server, SMS submit (AT+CMGS -> +CMGS), wall time.

The unix VM on a PC runs roughly 20-50x faster than an ESP32 at 240 MHz; device-time figures are
the emulator's datasheet timings plus the driver's own share."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from urelief.build import compile_module
from urelief.paths import FIRMWARE
from urelief.sim import vm

_RATES = r"""
import gc, json, time, binascii
from modem import atlines, pdu
sample = binascii.unhexlify("07912104442961F4040B916171957291F800001120821105050A6AC8B2BC7C9A83C220F6DB7D2ECB41EDF27C1E3E97411BDE06754FD3D1A0F9BB5D0695F1F4B29B5C2683C6E8B03C3CA697E5F34D6AE303D1D1F2F7DD0D4ABB59A0797D8C0685E7A00028EC26832A960B28EC2683BE6050780EBA97D96C17")
packet = bytes(range(64))
lines = ["+CEREG: 1,\"1A2B\",\"01ABCDEF\",7", "OK", "+CSQ: 18,99", "+CMTI: \"SM\",3", "garbage"]
def rate(fn, n):
    gc.collect()
    gc.disable()  # one call with gc off: what it allocates
    a0 = gc.mem_alloc()
    fn()
    alloc = gc.mem_alloc() - a0
    gc.enable()
    t0 = time.ticks_us()
    for _ in range(n):
        fn()
    us = time.ticks_diff(time.ticks_us(), t0)
    return [n * 1000000 // max(us, 1), alloc]
out = {}
out["decode_160char_gsm7"] = rate(lambda: pdu.decode(sample), 200)
out["encode_64B_packet"] = rate(lambda: pdu.encode_submit("+821012345678", packet), 500)
out["classify_line"] = rate(lambda: [atlines.classify(l, "+CSQ:", None, True) for l in lines], 400)
out["classify_line"][0] *= len(lines)
out["classify_line"][1] //= len(lines)  # the list comprehension's own list included
print(json.dumps(out))
"""

_HEAP = r"""
import gc, json
gc.collect()
a0 = gc.mem_alloc()
from modem import dialect
cls = dialect(%r)
gc.collect()
print(json.dumps(gc.mem_alloc() - a0))
"""

_APP = r"""
LOG = lambda s: None
import asyncio, machine, time
from modem import dialect, on_uart
async def main():
    t0 = time.ticks_ms()
    uart = machine.UART(1, 115200, tx=17, rx=18, rxbuf=1024)
    key = machine.Pin(41, machine.Pin.OUT, value=0)
    m = on_uart(dialect(DIALECT), uart, key.value, log=LOG)
    await m.start()
    t1 = time.ticks_ms()
    await m.wait_registered(60000)
    t2 = time.ticks_ms()
    await m.udp_open("sos.test", 7000)
    rtt = []
    for i in range(5):
        a = time.ticks_ms()
        await m.udp_send(b"sos-%d" % i)
        await m.udp_recv(10000)
        rtt.append(time.ticks_diff(time.ticks_ms(), a))
    a = time.ticks_ms()
    await m.send_sms("+82112", bytes(64))
    sms_ms = time.ticks_diff(time.ticks_ms(), a)
    print("B", time.ticks_diff(t1, t0), time.ticks_diff(t2, t0), min(rtt), max(rtt), sms_ms, "end")
asyncio.run(main())
"""


def _compile(root: Path, pkgs=("modem", "gnss")) -> None:
    for pkg in pkgs:
        for py in sorted((FIRMWARE / pkg).glob("*.py")):
            compile_module(py, root / pkg / (py.stem + ".mpy"), f"{pkg}/{py.name}")


def _echo_server() -> tuple[socket.socket, int]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))

    def loop():
        while True:
            try:
                data, addr = s.recvfrom(2048)
            except OSError:
                return
            s.sendto(b"ack:" + data, addr)

    threading.Thread(target=loop, daemon=True).start()
    return s, s.getsockname()[1]


def _device_run(dialect: str, fw: Path, tmp: Path) -> str:
    from urelief.sim.device import VirtualDevice
    from urelief.sim.modem import SmsNetwork, make

    app = tmp / f"fw-{dialect}"
    shutil.copytree(fw, app)
    src = tmp / f"bench_{dialect}.py"
    src.write_text(f"DIALECT = {dialect!r}\n" + _APP)
    compile_module(src, app / "benchapp.mpy")
    (app / "main.py").write_text("import benchapp\n")
    sock, port = _echo_server()
    modem = make(dialect, sms_network=SmsNetwork(), resolve={"sos.test": ("127.0.0.1", port)})
    dev = VirtualDevice(firmware=app, flash=tmp / f"flash-{dialect}.img")
    modem.attach(dev)
    t0 = time.perf_counter()
    dev.start()
    try:
        dev.run_until(lambda: " end" in dev.output or "Traceback" in dev.output,
                      timeout_ms=300_000, timeout_s=60)
    finally:
        wall = time.perf_counter() - t0
        dev.stop()
        modem.close()
        sock.close()
    line = [x for x in dev.output.splitlines() if x.startswith("B ")]
    if not line:
        return f"failed: {dev.output[-300:]!r}"
    ready, reg, rtt_min, rtt_max, sms_ms = line[0].split()[1:6]
    return (f"power-on->AT-ready {ready} ms, ->registered {reg} ms, UDP RTT {rtt_min}-{rtt_max} ms, "
            f"SMS submit {sms_ms} ms (device time); wall {wall:.1f} s")


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fw = tmp / "fw"
        _compile(fw)
        rates = vm.run_json(_RATES, path=(fw,))
        for name, (per_s, alloc) in rates.items():
            print(f"  {name:22s} {per_s:>8d} /s  {alloc:>5d} B allocated each")
        for dialect in ("sim7080", "a7670", "bg95"):
            heap = vm.run_json(_HEAP % dialect, path=(fw,))
            print(f"  heap for {dialect} driver code (64-bit VM): {heap} B")
        for dialect in ("sim7080", "a7670"):
            print(f"  {dialect}: {_device_run(dialect, fw, tmp)}")


if __name__ == "__main__":
    main()
