# `vfs` for a virtual board whose MicroPython image has ROMFS (MICROPY_VFS_ROM, MicroPython
# >= 1.25): the VM's own vfs, plus `rom_ioctl` over the romfs partition. The partition is the
# flash file's, mapped outside the GC heap (sim/romflash.c), so modules imported from /rom run
# in place, as on the chip. `rom_ioctl` follows MicroPython's generic ROM partition interface
# (`rom_ioctl(2, 0)` gives the partition's memory); `mpremote romfs query / deploy` use it.
import uctypes
import vfs as _vfs

VfsLfs2 = _vfs.VfsLfs2
VfsRom = _vfs.VfsRom
VfsPosix = getattr(_vfs, 'VfsPosix', None)
mount = _vfs.mount
umount = _vfs.umount

_EINVAL = 22
_part = None


class _RomPartition:
    """The romfs partition: 4 KiB sectors of memory-mapped NOR flash; erase and program take
    the flash chip's time (the vfs block device's figures and its stall)."""

    def __init__(self, addr, size, timing):
        self.mem = uctypes.bytearray_at(addr, size)
        self.view = memoryview(self.mem)
        self.timing = timing

    def erase(self, offset, length):
        if offset % 4096 or offset < 0 or offset + length > len(self.mem):
            return -_EINVAL
        for a in range(offset, offset + length, 4096):
            self.mem[a:a + 4096] = self.timing.erased
            self.timing._busy(self.timing.ERASE_US)
        return 4  # the smallest write: a 32-bit word

    def write(self, offset, buf):
        if offset < 0 or offset + len(buf) > len(self.mem):
            return -_EINVAL
        self.timing._busy((len(buf) + 255) // 256 * self.timing.PROGRAM_US)
        self.mem[offset:offset + len(buf)] = buf
        return 0


def attach(addr, size, timing):
    global _part
    _part = _RomPartition(addr, size, timing)


def rom_ioctl(cmd, *args):
    """MicroPython's vfs.rom_ioctl: 1 partitions, 2 the partition's memory, 3 prepare (erase
    a range), 4 write, 5 write done, 6 erase-block size."""
    if cmd == 1:
        return 1 if _part is not None else 0
    if _part is None or not args or args[0] != 0:
        return -_EINVAL
    if cmd == 2:
        return _part.view
    if cmd == 3 and len(args) == 2:
        return _part.erase(0, (args[1] + 4095) // 4096 * 4096)
    if cmd == 3 and len(args) == 3:
        return _part.erase(args[1], (args[2] + 4095) // 4096 * 4096)
    if cmd == 4 and len(args) == 3:
        return _part.write(args[1], args[2])
    if cmd == 5:
        return 0
    if cmd == 6:
        return 4096
    return -_EINVAL


def mount_rom():
    """What MicroPython does at start-up: mount a valid ROMFS at /rom; True if it did."""
    try:
        mount(VfsRom(_part.view), '/rom')
        return True
    except OSError:  # erased or not a ROMFS image
        return False
