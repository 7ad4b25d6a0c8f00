"""A board on a USB serial port, driven by the real tools: mpremote's command line (one process
per step), mpremote's Python API only to reset the board and read its boot banner on the same
connection, and esptool to write a MicroPython image.

Scripts run on the board print one line "<TAG> {json}"; everything else they print is ignored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

MPREMOTE = [sys.executable, "-m", "mpremote"]
ESPTOOL = [sys.executable, "-m", "esptool"]
# Where a MicroPython image starts in flash: after the ESP32's second-stage bootloader at 0x1000;
# the S2/S3/C3/C6 images include their bootloader from 0x0 (MicroPython's download page).
IMAGE_OFFSET = {"esp32": "0x1000"}
IMAGE_OFFSET_DEFAULT = "0x0"

PROBE = """
import sys, os, json, machine
i = sys.implementation
st = os.statvfs('/')
d = None
try:
    with open('/device.json') as f:
        j = json.load(f)
    d = {'device_id': j.get('device_id'), 'key_id': j.get('key_id', 1)}
except OSError:
    pass
except ValueError:
    d = {'unreadable': True}
b = None
try:
    with open('/board.json') as f:
        b = json.load(f).get('name')
except Exception:
    pass
# what the firmware needs of the image: its .mpy version, asyncio, AES, SHA-256, heap, ROMFS
import gc
c = {'mpy': getattr(i, '_mpy', None), 'romfs': None, 'asyncio': False, 'crypto': False}
try:
    import asyncio
    c['asyncio'] = True
except ImportError:
    pass
try:
    import cryptolib, hashlib
    cryptolib.aes(bytes(16), 1).encrypt(bytes(16))
    hashlib.sha256(b'')
    c['crypto'] = True
except Exception:
    pass
try:
    import vfs
    if vfs.rom_ioctl(1) > 0:
        c['romfs'] = len(vfs.rom_ioctl(2, 0))
except Exception:
    pass
gc.collect()
c['heap_free'] = gc.mem_free()
c['word'] = 4 if sys.maxsize < 1 << 32 else 8  # bytes: an ESP32's 4, the unix VM's 8
print('PROBE ' + json.dumps({'impl': i.name, 'version': '.'.join([str(v) for v in i.version[:3]]),
    'machine': getattr(i, '_machine', sys.platform), 'uid': machine.unique_id().hex(),
    'block': st[0], 'free': st[0] * st[3], 'total': st[0] * st[2], 'device': d, 'board': b,
    'caps': c}))
"""

# Every file on the board -> sha256 (hex), read back by the board itself.
HASHES = """
import os, json, hashlib, binascii
def _walk(d, out):
    for e in os.ilistdir(d):
        p = d + e[0] if d == '/' else d + '/' + e[0]
        if p == '/rom' and d == '/':
            continue  # a mounted ROMFS: read below, and only if the image has one
        if e[1] == 0x4000:
            _walk(p, out)
            continue
        h = hashlib.sha256()
        with open(p, 'rb') as f:
            while True:
                b = f.read(1024)
                if not b:
                    break
                h.update(b)
        out[p[1:]] = binascii.hexlify(h.digest()).decode()
_o = {}
_walk('/', _o)
try:  # an image with ROMFS: the firmware's modules, read back from the partition, mounted
    import vfs  # as the board does at boot (`mpremote romfs deploy` unmounts it)
    if vfs.rom_ioctl(1) > 0:
        try:
            vfs.mount(vfs.VfsRom(vfs.rom_ioctl(2, 0)), '/rom')
        except OSError:
            pass
        _walk('/rom', _o)
except (ImportError, AttributeError, OSError):
    pass
print('HASHES ' + json.dumps(_o))
"""

# Remove the device's identity first, then every file not in KEEP, then empty directories.
PREPARE = """
import os, json
KEEP = set(json.loads(%r))
def _rm(d, gone):
    for e in list(os.ilistdir(d)):
        p = d + e[0] if d == '/' else d + '/' + e[0]
        if p == '/rom':
            continue  # a mounted ROMFS is read-only: `mpremote romfs deploy` rewrites it
        if e[1] == 0x4000:
            _rm(p, gone)
            if not list(os.ilistdir(p)):
                os.rmdir(p)
        elif p[1:] not in KEEP:
            os.remove(p)
            gone.append(p[1:])
_g = []
try:
    os.remove('/device.json')
    _g.append('device.json')
except OSError:
    pass
_rm('/', _g)
print('PREPARED ' + json.dumps(_g))
"""


class BoardError(RuntimeError):
    """A step on the board failed. `gone`: the port disappeared (unplugged, powered off)."""

    def __init__(self, step: str, message: str, gone: bool = False):
        super().__init__(f"{step}: {message}")
        self.step, self.gone = step, gone


@dataclass
class BoardInfo:
    impl: str
    version: str
    machine: str
    uid: str  # machine.unique_id() hex (the MAC on an ESP32)
    free: int  # bytes free on the filesystem
    total: int
    block: int
    device: dict | None  # {device_id, key_id} from /device.json, or None
    board: str | None  # name in /board.json
    caps: dict | None = None  # what the image offers the firmware (provisioning.fit reads it)

    @classmethod
    def from_json(cls, d: dict) -> BoardInfo:
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})

    @property
    def device_id(self) -> int | None:
        return (self.device or {}).get("device_id")


def port_present(port: str) -> bool:
    return os.path.exists(port)


class UsbBoard:
    def __init__(self, port: str, timeout_s: float = 60):
        self.port = port
        self.timeout_s = timeout_s

    @property
    def device(self) -> str:
        """The device node behind the port (a /dev/serial/by-id/… link names a tty)."""
        return os.path.realpath(self.port)

    # -- mpremote ------------------------------------------------------------------------
    def mpremote(self, step: str, *args: str, timeout_s: float | None = None) -> str:
        if not port_present(self.port):
            raise BoardError(step, f"no board on {self.port}", gone=True)
        try:
            r = subprocess.run([*MPREMOTE, "connect", self.device, *args], capture_output=True,
                               text=True, timeout=timeout_s or self.timeout_s)
        except subprocess.TimeoutExpired as e:
            seen = e.stdout.decode("utf-8", "replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            raise BoardError(step, f"the board on {self.port} did not answer within "
                                   f"{timeout_s or self.timeout_s:.0f} s"
                                   + (f" (last said: {seen.strip()[-200:]!r})" if seen.strip() else ""),
                             gone=not port_present(self.port)) from None
        if r.returncode != 0:
            gone = not port_present(self.port)
            why = (r.stderr.strip() or r.stdout.strip()).splitlines()
            detail = why[-1] if why else f"mpremote exit {r.returncode}"
            raise BoardError(step, f"board unplugged or powered off ({detail})" if gone
                             else detail, gone=gone)
        return r.stdout

    def exec(self, step: str, code: str, tag: str, timeout_s: float | None = None):
        out = self.mpremote(step, "exec", code, timeout_s=timeout_s)
        for line in reversed(out.splitlines()):
            if line.startswith(tag + " "):
                try:
                    return json.loads(line[len(tag) + 1:])
                except ValueError:
                    break
        raise BoardError(step, f"no {tag} line from the board: {out[-300:]!r}")

    def probe(self, timeout_s: float = 20) -> BoardInfo:
        return BoardInfo.from_json(self.exec("identify", PROBE, "PROBE", timeout_s=timeout_s))

    def prepare(self, keep: set[str]) -> list[str]:
        """Remove /device.json and every file not in `keep`; -> what was removed."""
        return self.exec("prepare", PREPARE % json.dumps(sorted(keep)), "PREPARED")

    def copy(self, tree: Path, last: list[str]) -> None:
        """The tree onto the board's root (mpremote skips files already identical), then the
        files in `last` (the device's identity goes on only once everything else is there)."""
        tree = Path(tree)
        stage = tree.parent / (tree.name + ".first")
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir()
        try:
            for p in tree.rglob("*"):
                rel = p.relative_to(tree)
                if p.is_file() and rel.as_posix() not in last:
                    (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                    os.link(p, stage / rel)
            args = ["fs", "cp", "-r", f"{stage}/.", ":"]
            for name in last:
                args += ["+", "fs", "cp", str(tree / name), f":{name}"]
            self.mpremote("copy", *args, timeout_s=max(self.timeout_s, 120))
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def deploy_romfs(self, image: Path) -> None:
        """Write a ROMFS image into the board's romfs partition (`mpremote romfs deploy`); the
        board mounts it at /rom from its next boot."""
        self.mpremote("copy", "romfs", "deploy", str(image), timeout_s=max(self.timeout_s, 120))

    def hashes(self) -> dict[str, str]:
        return self.exec("verify", HASHES, "HASHES")

    def stop_app(self, tries: int = 3, timeout_s: float = 8) -> None:
        """Interrupt the running firmware and leave the board at its REPL (mpremote's Ctrl-C),
        with short tries: a board that reboots instead of stopping is asked again."""
        for attempt in range(1, tries + 1):
            try:
                self.exec("stop", "print('STOPPED {}')", "STOPPED", timeout_s=timeout_s)
                return
            except BoardError as e:
                if e.gone or attempt == tries:
                    raise

    def selftest(self, timeout_s: float = 90) -> dict:
        return self.exec("self-test", "import selftest\nselftest.main()", "SELFTEST",
                         timeout_s=timeout_s)

    # -- reset, and what the firmware says at boot ----------------------------------------
    def reset_and_listen(self, until: tuple[str, ...], listen_s: float = 15,
                         settle_s: float = 1.0) -> str:
        """machine.reset() through mpremote's serial transport, then the console text until
        settle_s after one of `until` was printed (or listen_s). A native-USB board drops off
        the bus while it reboots: the port is reopened."""
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        step = "reset"
        try:
            t = SerialTransport(self.device, baudrate=115200)
            t.enter_raw_repl(soft_reset=False)
            t.exec_raw_no_follow("import machine\nmachine.reset()")
        except (TransportError, OSError) as e:
            raise BoardError(step, str(e), gone=not port_present(self.port)) from None
        text = b""
        seen_at = None
        deadline = time.monotonic() + listen_s
        ser = t.serial
        ser.timeout = 0.1
        try:
            while time.monotonic() < deadline:
                try:
                    if ser is None:
                        import serial
                        ser = serial.Serial(self.device, 115200, timeout=0.1)
                    text += ser.read(4096)
                except OSError:
                    if ser is not None:
                        ser.close()
                    ser = None
                    time.sleep(0.2)
                    continue
                if seen_at is None and any(u.encode() in text for u in until):
                    seen_at = time.monotonic()
                if seen_at is not None and time.monotonic() - seen_at >= settle_s:
                    break
                if len(text) > 64_000:
                    break
        finally:
            if ser is not None:
                ser.close()
        return text.decode("utf-8", "replace")

    # -- esptool ------------------------------------------------------------------------
    def flash_micropython(self, image: Path, soc: str, timeout_s: float = 300) -> str:
        """Erase the whole flash and write a MicroPython image with esptool (the board's ROM
        bootloader, entered by the USB-serial chip's DTR/RTS), as MicroPython's install notes
        ask: a littlefs or partition table left from another image is gone. -> esptool's
        output. Raises BoardError when it fails."""
        offset = IMAGE_OFFSET.get(soc, IMAGE_OFFSET_DEFAULT)
        cmd = [*ESPTOOL, "--chip", "auto", "--port", self.device, "--connect-attempts", "3",
               "write-flash", "--erase-all", "-z", offset, str(image)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise BoardError("flash", f"esptool did not finish within {timeout_s:.0f} s") from None
        if r.returncode != 0:
            lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
            err = next((ln for ln in reversed(lines) if "error" in ln.lower()),
                       lines[-1] if lines else "")
            raise BoardError("flash", f"esptool could not write {image.name} through {self.port}"
                                      f" ({err.strip()}): no ROM bootloader answered; hold"
                                      " BOOT while plugging in, or check the cable")
        return r.stdout

    def wait_repl(self, wait_s: float = 30) -> BoardInfo:
        """After flashing: MicroPython's first boot makes its filesystem; probe until it answers."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                # short tries: the board may still sit in its ROM loader until it is reset
                return self.probe(timeout_s=4)
            except BoardError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
