# Runs under MicroPython: a littlefs volume on a host file that survives the process (as flash
# survives a power cut), counting block erases and programs so tests can see flash wear.
import os

import vfs

BS = 4096


class CountingFlash:
    def __init__(self, path, nblocks=32):
        try:
            self.f = open(path, "r+b")
        except OSError:
            blank = b"\xff" * BS
            with open(path, "wb") as f:
                for _ in range(nblocks):
                    f.write(blank)
            self.f = open(path, "r+b")
        self.n = nblocks
        self.erases = 0
        self.programs = 0

    def readblocks(self, block, buf, off=0):
        self.f.seek(block * BS + off)
        self.f.readinto(buf)

    def writeblocks(self, block, buf, off=0):
        self.programs += 1
        self.f.seek(block * BS + off)
        self.f.write(buf)
        self.f.flush()

    def ioctl(self, op, arg):
        if op == 4:
            return self.n
        if op == 5:
            return BS
        if op == 6:
            self.erases += 1
            self.f.seek(arg * BS)
            self.f.write(b"\xff" * BS)
        return 0


def mount(path, fresh=False):
    # Mount the image at /flash (formatting it when fresh); returns the block device.
    bd = CountingFlash(path)
    if fresh:
        vfs.VfsLfs2.mkfs(bd)
    vfs.mount(vfs.VfsLfs2(bd), "/flash")
    return bd


def listdir():
    return sorted(os.listdir("/flash"))


def create_counter(path, start=1):
    # A device's first counter file, as provisioning writes it: (next, next ^ 0xFFFFFFFF), BE.
    import struct
    with open(path, 'wb') as f:
        f.write(struct.pack('>II', start, start ^ 0xFFFFFFFF))
