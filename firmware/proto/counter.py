"""Persisted counters on littlefs: never reuse an uplink counter across power loss, without a
flash write per packet, and remember which downlink counters were already accepted.
Every state file is written as x.tmp, closed, then renamed over x (atomic on littlefs)."""
import os
import struct

from micropython import const

from proto import ProtoError

BLOCK = const(64)  # counters reserved per flash write
MAX_COUNTER = 0xFFFFFFFF
WINDOW = const(63)  # downlink reordering window, as the server's uplink window


def _write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def _read(path, size):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if len(data) != size:
        raise ProtoError("counter", "corrupt " + path)
    return data


class Counter:
    """Uplink counter. The file holds the first counter not yet reserved ("limit") and its
    complement. A new block [limit, limit+BLOCK) is written before its first counter is used,
    so after a power cut counting resumes at the stored limit: values may be skipped, never
    reused. Reservation is lazy: a boot (or deep-sleep wake) that sends nothing writes nothing."""
    def __init__(self, path, block=BLOCK):
        self.path = path
        self.block = block
        data = _read(path, 8)
        if data is None:
            raise ProtoError("counter", "no counter file: provision the device")
        limit, check = struct.unpack(">II", data)
        if limit ^ check != MAX_COUNTER:
            raise ProtoError("counter", "corrupt " + path)
        self._next = limit
        self._limit = limit  # nothing reserved by this boot yet

    def next(self):
        c = self._next
        if c < 1 or c > MAX_COUNTER:
            raise ProtoError("counter", "exhausted: rotate the device key")
        if c >= self._limit:
            limit = c + self.block
            if limit > MAX_COUNTER:
                limit = MAX_COUNTER + 1
            try:
                _write(self.path, struct.pack(">II", limit & MAX_COUNTER,
                                              (limit & MAX_COUNTER) ^ MAX_COUNTER))
            except OSError as e:
                # never hand out an unpersisted counter: after a reboot it would be reused
                raise ProtoError("counter", "cannot persist: " + str(e))
            self._limit = limit
        self._next = c + 1
        return c


class ReplayGuard:
    """Downlink counters seen: the highest and a bitmap of the WINDOW below it (bit i-1 set =
    highest-i seen), persisted on each accept (downlinks are rare). Same rule as the server."""
    def __init__(self, path):
        self.path = path
        data = _read(path, 12)
        if data is None:
            self.highest, hi, lo = 0, 0, 0
        else:
            self.highest, hi, lo = struct.unpack(">III", data)
        self.bitmap = hi << 32 | lo

    def check(self, counter):
        if counter <= 0:
            raise ProtoError("too_old")
        if counter > self.highest:
            return
        d = self.highest - counter
        if d == 0:
            raise ProtoError("duplicate")
        if d > WINDOW:
            raise ProtoError("too_old")
        if (self.bitmap >> (d - 1)) & 1:
            raise ProtoError("duplicate")

    def accept(self, counter):
        """Record `counter` (check() passed) and persist."""
        h = self.highest
        if counter > h:
            shift = counter - h
            if shift > WINDOW:
                self.bitmap = 0
            else:
                self.bitmap = (self.bitmap << shift) & ((1 << WINDOW) - 1)
                if h:
                    self.bitmap |= 1 << (shift - 1)
            self.highest = counter
        else:
            self.bitmap |= 1 << (h - counter - 1)
        bm = self.bitmap
        _write(self.path, struct.pack(">III", self.highest, bm >> 32, bm & 0xFFFFFFFF))
