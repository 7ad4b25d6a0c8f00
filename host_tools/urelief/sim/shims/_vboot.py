# ruff: noqa: F821  (the module deletes its own names once run, leaving the REPL clean)
# Power-on of the virtual board: what the ESP32 ROM, bootloader and MicroPython's _boot.py do.
# Wires the peripherals to the host, mounts littlefs from the flash image, runs boot.py then
# main.py from it, and leaves the REPL to the USB console. Started as `micropython -i _vboot.py`.
import gc as _gc
import json as _json
import os as _os
import struct as _struct
import sys as _sys

import vfs as _vfs

_env = _os.getenv


class _FlashBlocks:
    """A NOR flash partition: 4 KiB erase blocks in a host file. Writes reach the file at once,
    so what littlefs has committed survives the process dying as flash survives a power cut.

    Program and erase take the chip's time (Winbond W25Q32JV datasheet, typical: page program
    tPP 0.4 ms per 256-byte page, 4 KiB sector erase tSE 45 ms; reads at DIO 40 MHz, 10 MB/s).
    The CPU stalls meanwhile, as an ESP32 does while its flash cache is off for a write. An
    erase clears the sector when it starts; a program lands when it ends: a power cut during
    either leaves what a cut chip would (the sector gone, the page not yet written). Timing is
    on once the board's clock is wired; URELIEF_FLASH_TIMING=max takes the datasheet's maxima
    (tPP 3 ms, tSE 400 ms), =0 turns it off."""

    PAGE = 256
    PROGRAM_US = 400  # per page
    ERASE_US = 45000  # per 4 KiB sector
    READ_US_PER_KB = 100

    def __init__(self, path, nblocks, bs=4096):
        self.f = open(path, 'r+b')
        self.n = nblocks
        self.bs = bs
        self.stall = None  # set at power-on: stall(us) waits that long in device time
        self.owed_us = 0  # busy time below the clock's 1 ms step, carried to the next operation
        self.erased = b'\xff' * bs  # made once, in the shims' reserve: an erase allocates nothing

    def _busy(self, us):
        if self.stall is not None:
            self.owed_us += us
            if self.owed_us >= 1000:
                ms = self.owed_us // 1000
                self.owed_us -= ms * 1000
                self.stall(ms)

    def readblocks(self, block, buf, off=0):
        self._busy(len(buf) * self.READ_US_PER_KB // 1024)
        self.f.seek(block * self.bs + off)
        self.f.readinto(buf)

    def writeblocks(self, block, buf, off=None):
        if off is None:  # simple interface: erase then program whole blocks
            for i in range(len(buf) // self.bs):
                self.ioctl(6, block + i)
            off = 0
        self._busy(((len(buf) + self.PAGE - 1) // self.PAGE) * self.PROGRAM_US)
        self.f.seek(block * self.bs + off)
        self.f.write(buf)

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.n
        if op == 5:  # block size
            return self.bs
        if op == 6:  # erase: NOR flash erases to 0xFF
            self.f.seek(arg * self.bs)
            self.f.write(self.erased)
            self._busy(self.ERASE_US)
            return 0
        return 0


def _copy_tree(src, dst):
    for name, kind, *_ in _os.ilistdir(src):
        s, d = src + '/' + name, dst + '/' + name
        if kind == 0x4000:
            try:
                _os.mkdir(d)
            except OSError:
                pass
            _copy_tree(s, d)
        else:
            with open(s, 'rb') as fi, open(d, 'wb') as fo:
                while True:
                    chunk = fi.read(1024)
                    if not chunk:
                        break
                    fo.write(chunk)


def _install(flash, nblocks, src, board):
    # Factory image: format the partition, copy the deployed tree and the board's pin map.
    bd = _FlashBlocks(flash, nblocks)
    _vfs.VfsLfs2.mkfs(bd)
    _vfs.mount(_vfs.VfsLfs2(bd), '/flash')
    if src:
        _copy_tree(src, '/flash')
    if board:
        with open(board, 'rb') as fi, open('/flash/board.json', 'wb') as fo:
            fo.write(fi.read())
    _vfs.umount('/flash')


def _power_on():
    import _vchan
    import _vframes as _F
    rfd, wfd = [int(x) for x in _env('URELIEF_CHAN').split(',')]
    virtual = _env('URELIEF_CLOCK') == 'virtual'
    chan = _vchan.Chan(rfd, wfd, virtual)
    _vchan.chan = chan
    info = _json.loads(chan.request(_F.BOOT))
    chan.boot_at(info['now_us'])

    import _vesp32
    import _vmachine
    import _vmicropython
    import _vselect
    import _vtime
    _vvfs = None
    if _env('URELIEF_ROMFS_MAPPED') == '1':
        import _vvfs
    _vtime.set_rtc_offset(info['rtc_offset_us'], False)
    b = _vmachine._boot
    b['reset_cause'] = info['reset_cause']
    b['wake_reason'] = info['wake_reason']
    b['rtc_mem'] = bytes.fromhex(info['rtc_mem'])
    b['unique_id'] = bytes.fromhex(info['unique_id'])
    for g, lvl in info['levels'].items():
        _vmachine._levels[int(g)] = lvl
    chan.handlers[_F.PIN_LEVEL] = _vmachine._on_level  # E
    chan.handlers[_F.UART_RX] = _vmachine._on_uart  # U
    for name, mod in (('time', _vtime), ('utime', _vtime), ('select', _vselect),
                      ('uselect', _vselect), ('machine', _vmachine), ('umachine', _vmachine),
                      ('esp32', _vesp32), ('micropython', _vmicropython)):
        _sys.modules[name] = mod

    heap = [0, 0, -1000000]  # peak allocated, peak live, device us of the last collect
    reserve = int(_env('URELIEF_SHIM_RESERVE'))  # bytes of heap the board's shims may take

    # bound now: the REPL's namespace loses this script's module names once it has run
    mem_alloc, collect, pack = _gc.mem_alloc, _gc.collect, _struct.pack

    def sample_heap():
        a = mem_alloc() - reserve
        now = chan.now_us()
        # Measure live objects (a collect) at most once a device second, and only when what is
        # allocated, garbage included, exceeds the live peak known so far.
        if a > heap[1] and now - heap[2] >= 1000000:
            collect()
            heap[2] = now
            live = mem_alloc() - reserve
            if live > heap[1]:
                heap[1] = live
                chan.send(_F.HEAP, pack('>ii', heap[0], heap[1]))
        if a > heap[0]:
            heap[0] = a
            chan.send(_F.HEAP, pack('>ii', heap[0], heap[1]))

    chan.on_idle = sample_heap

    bd = _FlashBlocks(_env('URELIEF_FLASH'), int(_env('URELIEF_FLASH_BLOCKS')))
    timing = _env('URELIEF_FLASH_TIMING')
    if timing != '0':
        bd.stall = _vtime.sleep_ms
    if timing == 'max':
        bd.PROGRAM_US, bd.ERASE_US = 3000, 400000
    _vfs.umount('/')
    try:
        _vfs.mount(_vfs.VfsLfs2(bd), '/')
    except OSError:
        # An erased or foreign vfs partition: MicroPython's first boot formats it and leaves
        # a stub boot.py; the application is gone until something copies it back.
        print('Performing initial setup: littlefs on an empty vfs partition')
        _vfs.VfsLfs2.mkfs(bd)
        _vfs.mount(_vfs.VfsLfs2(bd), '/')
        with open('/boot.py', 'w') as f:
            f.write('# boot.py: runs first at every boot (made at first boot on an empty flash)\n')
    _os.chdir('/')
    _sys.path[:] = ['', '.frozen', '/lib']
    if _vvfs is not None:  # an image with ROMFS: /rom, then /rom/lib
        _vvfs.attach(int(_env('URELIEF_ROMFS_ADDR')), int(_env('URELIEF_ROMFS_SIZE')), bd)
        _sys.modules['vfs'] = _vvfs
        _vvfs.mount_rom()
        _sys.path[:] = ['', '.frozen', '/rom', '/rom/lib', '/lib']
    # On a board the peripherals are C code; here they are Python on the same heap. Fill what
    # they left of their reserve, so the firmware gets exactly its ESP32-sized budget.
    _gc.collect()
    spare = reserve - _gc.mem_alloc() - 64
    if spare < 0:
        print('virtual board: shims exceed their heap reserve by', -spare, 'bytes')
    else:
        _vmachine._ballast = bytearray(spare)
    _gc.collect()


def _run(path):
    try:
        _os.stat(path)
    except OSError:
        return
    try:
        with open(path) as f:
            src = f.read()
        # As on a board: main.py runs in __main__'s globals, which the REPL then shares.
        exec(compile(src, path, 'exec'), globals())
    except SystemExit:
        raise
    except BaseException as e:  # a board prints the traceback and carries on to the REPL
        _sys.print_exception(e)


def _start():
    mode = _env('URELIEF_MODE') or 'normal'
    if mode == 'install':
        _install(_env('URELIEF_FLASH'), int(_env('URELIEF_FLASH_BLOCKS')),
                 _env('URELIEF_INSTALL_SRC'), _env('URELIEF_INSTALL_BOARD'))
        _sys.exit(0)
    _power_on()
    _run('boot.py')
    if mode == 'normal':
        _run('main.py')
    import _vchan
    import _vframes as _F
    _vchan.chan.send(_F.SYNC)  # Y: entering the REPL; the host learns the board's time


_start()
del _start, _run, _power_on, _install, _copy_tree, _FlashBlocks, _env
del _gc, _json, _os, _struct, _sys, _vfs
