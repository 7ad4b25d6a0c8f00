"""One run of the virtual chip: a `micropython -i _vboot.py` process, its console on a
pseudo-terminal and its peripherals on a framed pipe pair. A reset or deep sleep ends it; the
next boot is a new process against the same flash image."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from urelief.sim import cpuclock, frames, preload, vm

SHIMS = Path(__file__).with_name("shims")
ROMFS_ADDR = 0x200000000000  # where the VM maps the romfs partition: far from heap and libraries
FLASH_BLOCKS = 512  # 2 MiB littlefs partition of 4 KiB blocks (ESP32 4 MB flash layout)
SHIM_RESERVE_KB = 48  # heap the Python peripheral shims may use on top of the firmware's budget


class VmError(RuntimeError):
    pass


def sigint_caught(pid: int) -> bool:
    """True while MicroPython has its SIGINT handler installed, i.e. while it executes code."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except OSError:
        pass
    return False


def install_flash(flash: Path, tree: Path | None, board_file: Path) -> None:
    """Erase the flash image and install `tree` (a deployed firmware directory) on littlefs."""
    flash.parent.mkdir(parents=True, exist_ok=True)
    with open(flash, "wb") as f:
        f.write(b"\xff" * 4096 * FLASH_BLOCKS)
    env = vm.micropython_env([SHIMS])
    env.update(URELIEF_MODE="install", URELIEF_FLASH=str(flash),
               URELIEF_FLASH_BLOCKS=str(FLASH_BLOCKS),
               URELIEF_INSTALL_SRC=str(Path(tree).resolve()) if tree else "",
               URELIEF_INSTALL_BOARD=str(board_file.resolve()))
    proc = subprocess.run([vm.micropython_exe(), str(SHIMS / "_vboot.py")], env=env,
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise VmError(f"flash install failed: {proc.stdout}{proc.stderr}")


class ChipRun:
    """The running VM process and its wire. Host loop thread only."""

    def __init__(self, *, flash: Path, heap_kb: int, tty: int, mode: str, virtual: bool,
                 cpu_scale: float = 1.0, romfs: tuple[Path, int, int] | None = None):
        h2d_r, h2d_w = os.pipe()
        d2h_r, d2h_w = os.pipe()
        env = vm.micropython_env([SHIMS])
        env.update(URELIEF_CHAN=f"{h2d_r},{d2h_w}", URELIEF_FLASH=str(flash),
                   URELIEF_FLASH_BLOCKS=str(FLASH_BLOCKS), URELIEF_MODE=mode,
                   URELIEF_SHIM_RESERVE=str(SHIM_RESERVE_KB * 1024),
                   URELIEF_CLOCK="virtual" if virtual else "real")
        preloads = []
        if virtual:  # the chip's ticks count the CPU time it gets, not the wall clock's
            preloads.append(str(cpuclock.library()))
            env["URELIEF_CPU_SCALE"] = repr(cpu_scale)
        if romfs is not None:  # an image with ROMFS: its partition mapped as flash is
            path, offset, size = romfs
            preloads.append(str(preload.library("romflash")))
            env.update(URELIEF_ROMFS_FILE=str(path), URELIEF_ROMFS_OFFSET=str(offset),
                       URELIEF_ROMFS_SIZE=str(size), URELIEF_ROMFS_ADDR=str(ROMFS_ADDR))
        if preloads:
            env["LD_PRELOAD"] = ":".join(preloads)
        self.cpu_scale = cpu_scale

        def child_setup():
            os.setsid()
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # MicroPython installs its own

        self.proc = subprocess.Popen(
            [vm.micropython_exe(), "-X", f"heapsize={heap_kb + SHIM_RESERVE_KB}k", "-i",
             str(SHIMS / "_vboot.py")],
            stdin=tty, stdout=tty, stderr=tty, env=env, pass_fds=(h2d_r, d2h_w),
            preexec_fn=child_setup, close_fds=True)
        os.close(h2d_r)
        os.close(d2h_w)
        self.rfd, self.wfd = d2h_r, h2d_w
        os.set_blocking(self.rfd, False)
        os.set_blocking(self.wfd, False)
        self._rx = bytearray()
        self._tx = bytearray()

    # -- the wire ----------------------------------------------------------------------------
    def send(self, kind: int, payload: bytes = b"") -> None:
        if self.wfd < 0:
            return
        self._tx += frames.pack(kind, payload)
        self.flush()

    def flush(self) -> None:
        while self._tx and self.wfd >= 0:
            try:
                n = os.write(self.wfd, self._tx[:65536])
            except BlockingIOError:
                return
            except OSError:
                self._tx.clear()
                return
            del self._tx[:n]

    @property
    def backlog(self) -> bool:
        """Bytes wait for room in the pipe (rare: the board reads promptly)."""
        return bool(self._tx) and self.wfd >= 0

    def receive(self) -> list[tuple[int, int, bytes]] | None:
        """Whole frames the board sent: [(kind, device us, payload)]; None once it has exited."""
        try:
            data = os.read(self.rfd, 65536)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        if not data:
            return None
        self._rx += data
        return frames.unpack_all(self._rx)

    # -- the process -------------------------------------------------------------------------
    def cpu_us(self) -> float:
        """The chip's ticks as the board reads them (its CPU time, scaled), in us."""
        try:
            return cpuclock.process_cpu_s(self.proc.pid) * self.cpu_scale * 1e6
        except OSError:  # exited
            return 0.0

    def code_running(self) -> bool:
        return sigint_caught(self.proc.pid)

    def sigint(self) -> None:
        if self.code_running():
            self.proc.send_signal(signal.SIGINT)

    def exit_code(self) -> int:
        return self.proc.wait()

    def cpu_s(self) -> float:
        """Host CPU seconds the VM has run so far (unscaled; 0 once it has exited)."""
        try:
            return cpuclock.process_cpu_s(self.proc.pid)
        except OSError:
            return 0.0

    def kill(self) -> None:
        """The chip stops: the process dies wherever it is (nothing unflushed survives)."""
        self.proc.kill()
        self.proc.wait()
        for fd in (self.rfd, self.wfd):
            if fd >= 0:
                os.close(fd)
        self.rfd = self.wfd = -1
