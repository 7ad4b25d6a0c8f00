# `esp32` for the virtual board: NVS (kept by the host per namespace, committed atomically),
# deep-sleep wake sources and pad hold.
import json
import struct

import _vchan
import _vframes

WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True
HEAP_DATA = 4
HEAP_EXEC = 1


def wake_on_ext0(pin, level):
    gpio = -1 if pin is None else pin._id
    _vchan.chan.send(_vframes.WAKE_CFG, struct.pack('>bbQb', 0, gpio, 0, 1 if level else 0))


def wake_on_ext1(pins, level):
    mask = 0
    for p in pins or ():
        mask |= 1 << p._id
    _vchan.chan.send(_vframes.WAKE_CFG, struct.pack('>bbQb', 1, 0, mask, 1 if level else 0))


def wake_on_touch(wake):
    pass


def wake_on_ulp(wake):
    pass


def gpio_deep_sleep_hold(enable):
    pass


def mcu_temperature():
    return 35


def idf_heap_info(caps):
    return []


class NVS:
    # Values live in RAM until commit(), as in ESP-IDF; commit() is atomic on the host.
    def __init__(self, namespace):
        if not 0 < len(namespace) <= 15:
            raise ValueError('NVS namespace: 1-15 characters')
        self._ns = namespace
        raw = _vchan.chan.request(_vframes.NVS_LOAD, namespace.encode())
        self._kv = json.loads(raw) if raw else {}

    def _get(self, key, kind):
        v = self._kv.get(key)
        if v is None or v[0] != kind:
            raise OSError(-4354)  # ESP_ERR_NVS_NOT_FOUND
        return v[1]

    def set_i32(self, key, value):
        self._kv[key] = ['i', int(value)]

    def get_i32(self, key):
        return self._get(key, 'i')

    def set_blob(self, key, value):
        self._kv[key] = ['b', bytes(value).hex()]

    def get_blob(self, key, buf):
        data = bytes.fromhex(self._get(key, 'b'))
        n = min(len(buf), len(data))
        buf[:n] = data[:n]
        return len(data)

    def erase_key(self, key):
        if self._kv.pop(key, None) is None:
            raise OSError(-4354)

    def commit(self):
        _vchan.chan.send(_vframes.NVS_COMMIT, bytes((len(self._ns),)) + self._ns.encode() + json.dumps(self._kv).encode())
