# `select` for the virtual board: polls virtual streams (UARTs), ThreadSafeFlags and any stream
# with ioctl(MP_STREAM_POLL); while nothing is ready the board idles on its clock.
import _vchan
from uselect import POLLERR, POLLHUP, POLLIN, POLLOUT  # noqa: F401

_MP_STREAM_POLL = 3


def _ready(obj, flags):
    r = getattr(obj, '_vready', None)
    if r is not None:
        return r(flags)
    try:
        return obj.ioctl(_MP_STREAM_POLL, flags) or 0
    except Exception:
        return POLLERR


class _Poll:
    def __init__(self):
        self._objs = {}

    def register(self, obj, flags=POLLIN | POLLOUT):
        self._objs[id(obj)] = [obj, flags]

    def modify(self, obj, flags):
        self._objs[id(obj)][1] = flags

    def unregister(self, obj):
        self._objs.pop(id(obj), None)

    def _scan(self):
        out = []
        for obj, flags in self._objs.values():
            ev = _ready(obj, flags)
            if ev:
                out.append((obj, ev))
        return out

    def ipoll(self, timeout=-1, flags=0):
        r = self._scan()
        if r or timeout == 0:
            _vchan.chan.pump(0)
            return r or self._scan()
        _vchan.chan.idle(timeout, lambda: bool(self._scan()))
        return self._scan()

    def poll(self, timeout=-1):
        return self.ipoll(timeout)


def poll():
    return _Poll()
