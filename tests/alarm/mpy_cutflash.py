# Runs under MicroPython: a littlefs volume in RAM that logs every program and erase, so a test
# can rebuild the flash as it stood after any prefix of them (a power cut at that moment) and
# mount that image to see what a rebooted device finds. Small blocks keep two images in 96 KB.
import os

import vfs

BS = 512
BLOCKS = 16
_ERASED = b"\xff" * BS
# The three images, allocated before anything fragments the 96 KB heap: the live flash, the
# flash before the logged writes (cuts() updates it), and the one a cut left (mounted at /r).
LIVE = bytearray(BS * BLOCKS)
IMG = bytearray(BS * BLOCKS)
SCRATCH = bytearray(BS * BLOCKS)


class LogFlash:
    def __init__(self, data):
        self.data = data
        self.log = None  # [(offset, bytes or erased length)] while recording
        self.broken = False  # True: every program and erase fails (EIO), the flash is worn out

    def _put(self, at, buf):
        if self.broken:
            return -5  # LFS_ERR_IO: littlefs raises OSError(EIO)
        if isinstance(buf, int):
            self.data[at:at + buf] = _ERASED
        else:
            self.data[at:at + len(buf)] = buf
        if self.log is not None:
            self.log.append((at, buf if isinstance(buf, int) else bytes(buf)))
        return 0

    def readblocks(self, block, buf, off=0):
        at = block * BS + off
        buf[:] = memoryview(self.data)[at:at + len(buf)]

    def writeblocks(self, block, buf, off=None):
        return self._put(block * BS + (off or 0), buf)

    def ioctl(self, op, arg):
        if op == 4:
            return BLOCKS
        if op == 5:
            return BS
        if op == 6:
            return self._put(arg * BS, BS)  # logged as a length, not 512 bytes
        return 0


def mount(bd, where):
    vfs.mount(vfs.VfsLfs2(bd), where)


def fresh(where):
    for b in range(BLOCKS):
        LIVE[b * BS:(b + 1) * BS] = _ERASED
    bd = LogFlash(LIVE)
    vfs.VfsLfs2.mkfs(bd)
    mount(bd, where)
    return bd


def cuts(log, img=IMG, scratch=SCRATCH):
    # Every flash state a power cut could leave after `img` (the flash before the logged
    # writes; updated in place), oldest first, into `scratch`: after each whole write, and with
    # each write torn halfway (a cut stops a program part way). Yields the whole writes done.
    scratch[:] = img
    yield 0
    for i in range(len(log)):
        at, buf = log[i]
        if isinstance(buf, int):
            buf = _ERASED
        half = len(buf) // 2
        if half:
            scratch[:] = img
            scratch[at:at + half] = memoryview(buf)[:half]
            yield i
        img[at:at + len(buf)] = buf
        scratch[:] = img
        yield i + 1


def listing(path):
    return sorted(os.listdir(path))
