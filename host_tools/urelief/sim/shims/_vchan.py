# The virtual board's wire to the host (MicroPython side). Hardware, not firmware: this is what
# the ESP32's peripherals would be. Frames: type (1 byte) + length (2 bytes, big-endian) +
# payload. Every device->host payload starts with the device time in us (8 bytes, big-endian).
#
# Frame kinds and their payloads: _vframes.py (shared with the host).
import struct
import sys

import _vframes as F
import uselect
import utime

_HDR = struct.calcsize('>BH')


class Chan:
    def __init__(self, rfd, wfd, virtual):
        self.r = open('/proc/self/fd/%d' % rfd, 'rb')
        self.w = open('/proc/self/fd/%d' % wfd, 'wb')
        self.virtual = virtual
        self._poll = uselect.poll()
        self._poll.register(self.r, uselect.POLLIN)
        self._hdr = bytearray(_HDR)
        self._r0 = utime.ticks_us()
        self.off_us = 0  # device time = chip time since this boot + off_us
        self.skip_us = 0  # idle time skipped by the virtual clock since boot (only grows)
        self.handlers = {}  # frame type (int) -> fn(payload)
        self._reply = None
        self.on_idle = None  # called before each idle wait (heap sampling)
        self.events = 0  # U/E frames received: the host wakes an idle at once if it sent more
        # Virtual clock lease: the host promised nothing happens before this device time unless
        # the board itself speaks first, so idles ending earlier skip ahead without asking.
        self.lease_us = 0
        self.kbd = False  # Ctrl-C from the USB host: KeyboardInterrupt at the next safe point

    # -- device time ------------------------------------------------------------------
    # The virtual clock is the chip's clock plus skipped idle time, never behind the chip's
    # ticks, so asyncio's C task queue (stamped with them) stays consistent. In virtual mode the
    # chip's ticks are this process's CPU time (the host preloads cpuclock.c).
    def now_us(self):
        return utime.ticks_diff(utime.ticks_us(), self._r0) + self.off_us

    def boot_at(self, t_us):
        self.off_us = t_us - utime.ticks_diff(utime.ticks_us(), self._r0)

    def _jump_to(self, t_us):
        ahead = t_us - self.now_us()
        if ahead > 0:
            self.off_us += ahead
            self.skip_us += ahead

    # -- frames -----------------------------------------------------------------------
    def send(self, kind, payload=b''):
        self.lease_us = 0
        n = len(payload) + 8
        self.w.write(struct.pack('>BHq', kind, n, self.now_us()) + payload)

    def _read_frame(self):
        self.r.readinto(self._hdr)
        kind, n = struct.unpack('>BH', self._hdr)
        payload = self.r.read(n) if n else b''
        if kind == F.WAKE:  # W: wake, carries the new device time and a lease
            if self.virtual:
                t, lease = struct.unpack('>qq', payload)
                self._jump_to(t)
                self.lease_us = lease
            return kind
        if kind == F.REPLY:  # V: reply to a request
            self._reply = payload
            return kind
        if kind == F.INTR:  # X: Ctrl-C; taken (acked) now, raised once the frame exchange is done
            self.kbd = True
            self.send(F.INTR)
            return kind
        # U/E: an event stamped with the device time it happened at
        self.events += 1
        if self.virtual:
            self._jump_to(struct.unpack_from('>q', payload)[0])
        h = self.handlers.get(kind)
        if h:
            h(memoryview(payload)[8:])
        return kind

    def pump(self, timeout_ms=0):
        """Process frames already waiting (real clock: wait up to timeout_ms for the first)."""
        got = False
        while self._poll.poll(timeout_ms):
            self._read_frame()
            got = True
            timeout_ms = 0
        self._interrupted()
        return got

    def _interrupted(self):
        # As on the chip: Ctrl-C becomes KeyboardInterrupt where the code waits or calls the
        # hardware, never inside the runtime (a signal there can land in a garbage collection).
        if self.kbd:
            self.kbd = False
            raise KeyboardInterrupt

    def request(self, kind, payload=b''):
        """Send a request and block for its reply; other frames are handled meanwhile."""
        self._reply = None
        self.send(kind, payload)
        while self._reply is None:
            self._read_frame()
        r, self._reply = self._reply, None
        self._interrupted()
        return r

    def idle(self, timeout_ms, ready):
        """Wait up to timeout_ms (-1 forever) of device time, or until ready() is true."""
        if self.on_idle:
            self.on_idle()
        if self.virtual:
            if self.pump(0) and ready():
                return
            now = self.now_us()
            until = -1 if timeout_ms < 0 else now + timeout_ms * 1000
            if 0 <= until <= self.lease_us:
                self._jump_to(until)
                return
            self.send(F.IDLE, struct.pack('>qI', until, self.events))
            while self._read_frame() != F.WAKE:
                pass
            self._interrupted()
            return
        deadline = None if timeout_ms < 0 else utime.ticks_add(utime.ticks_ms(), timeout_ms)
        while True:
            wait = -1
            if deadline is not None:
                wait = max(0, utime.ticks_diff(deadline, utime.ticks_ms()))
            if self.pump(wait) and ready():
                return
            if deadline is not None and utime.ticks_diff(deadline, utime.ticks_ms()) <= 0:
                return


chan = None  # set by the bootstrap


def run_irq(handler, arg):
    # A soft IRQ: an exception is reported and swallowed, as the ESP32 port does.
    try:
        handler(arg)
    except Exception as e:
        print('Uncaught exception in IRQ callback handler')
        sys.print_exception(e)
