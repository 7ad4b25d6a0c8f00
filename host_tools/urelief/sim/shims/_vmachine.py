# `machine` for the virtual board (ESP32 port semantics and constants). Each peripheral is a
# thin proxy: the electrical side (button, battery, modem, GNSS) is modelled by the host.
import struct

import _vchan
import _vframes
import _vtime
from umachine import PinBase, Signal, mem8, mem16, mem32, time_pulse_us  # noqa: F401

# reset_cause() values, as the ESP32 port reports them
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
# wake_reason() values (esp_sleep_wakeup_cause_t)
PIN_WAKE = EXT0_WAKE = 2
EXT1_WAKE = 3
TIMER_WAKE = 4
TOUCHPAD_WAKE = 5
ULP_WAKE = 6

_boot = {}  # filled by the bootstrap from the host's boot info
_levels = {}  # gpio -> level seen at the pin (inputs) or driven (outputs)
_pins = {}  # gpio -> Pin with an irq handler


def _on_level(payload):
    gpio, level = payload[0], payload[1]
    old = _levels.get(gpio)
    _levels[gpio] = level
    p = _pins.get(gpio)
    if p is None or old == level or p._handler is None:
        return
    edge = Pin.IRQ_RISING if level else Pin.IRQ_FALLING
    if p._trigger & edge:
        _vchan.run_irq(p._handler, p)


class Pin(PinBase):
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_DOWN = 1
    PULL_UP = 2
    PULL_HOLD = 4
    IRQ_RISING = 1
    IRQ_FALLING = 2
    WAKE_LOW = 4
    WAKE_HIGH = 5
    DRIVE_0 = 0
    DRIVE_1 = 1
    DRIVE_2 = 2
    DRIVE_3 = 3

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=None, hold=None):
        self._id = int(id)
        self._mode = self.IN
        self._pull = None
        self._handler = None
        self._trigger = 0
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None, drive=None, hold=None):
        if mode != -1:
            self._mode = mode
        if pull != -1:
            self._pull = pull
        if value is not None and self._mode != self.IN:
            self.value(value)
        m = 0 if self._mode == self.IN else (2 if self._mode == self.OPEN_DRAIN else 1)
        pl = {None: 0, self.PULL_UP: 1, self.PULL_DOWN: 2}.get(self._pull, 0)
        # Synchronous, as on the chip: the pad's level is settled when init() returns.
        _levels[self._id] = _vchan.chan.request(_vframes.PIN_CFG, bytes((self._id, m, pl)))[0]

    def value(self, v=None):
        if v is None:
            return _levels.get(self._id, 0)
        v = 1 if v else 0
        if self._mode != self.IN:
            _levels[self._id] = v
            _vchan.chan.send(_vframes.PIN_OUT, bytes((self._id, v)))
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, *, priority=1, wake=None, hard=False):
        self._handler = handler
        self._trigger = trigger
        if handler is None:
            _pins.pop(self._id, None)
        else:
            _pins[self._id] = self
        return self

    def __repr__(self):
        return 'Pin(%d)' % self._id


class UART:
    INV_TX = 1
    INV_RX = 2
    RTS = 1
    CTS = 2
    _rx = {}  # uart id -> bytearray of received bytes

    def __init__(self, id, baudrate=115200, **kw):
        self._id = id
        self._rxbuf = 256
        self.init(baudrate, **kw)
        _uarts.append(self)

    def init(self, baudrate=115200, bits=8, parity=None, stop=1, *, tx=None, rx=None, rts=None,
             cts=None, txbuf=256, rxbuf=256, timeout=0, timeout_char=0, invert=0, flow=0):
        self._baud = baudrate
        self._rxbuf = rxbuf  # the ESP32 driver drops bytes beyond this until read
        self._timeout = timeout
        UART._rx.setdefault(self._id, bytearray())

    def deinit(self):
        pass

    def _buf(self):
        _vchan.chan.pump(0)
        return UART._rx[self._id]

    def any(self):
        return len(self._buf())

    def read(self, n=None):
        b = self._buf()
        if not b and self._timeout > 0:
            _vchan.chan.idle(self._timeout, lambda: bool(UART._rx[self._id]))
            b = UART._rx[self._id]
        if not b:
            return None
        n = len(b) if n is None else min(n, len(b))
        out = bytes(b[:n])
        b[:n] = b''
        return out

    def readinto(self, buf, n=None):
        data = self.read(len(buf) if n is None else n)
        if data is None:
            return None
        buf[:len(data)] = data
        return len(data)

    def readline(self):
        b = self._buf()
        i = b.find(b'\n')
        if i < 0:
            return self.read() if b else None
        return self.read(i + 1)

    def write(self, buf):
        _vchan.chan.send(_vframes.UART_TX, bytes((self._id,)) + bytes(buf))
        return len(buf)

    def flush(self):
        pass

    def txdone(self):
        return True

    def sendbreak(self):
        pass

    def _vready(self, flags):
        ev = 0
        if flags & 1 and UART._rx[self._id]:
            ev |= 1
        if flags & 4:
            ev |= 4
        return ev

    def ioctl(self, req, arg):
        return self._vready(arg) if req == 3 else 0


def _on_uart(payload):
    uid = payload[0]
    b = UART._rx.setdefault(uid, bytearray())
    room = 256 - len(b)  # the driver's ring buffer (rxbuf); bytes past it are lost
    for u in _uarts:
        if u._id == uid:
            room = u._rxbuf - len(b)
    b.extend(payload[1:1 + max(0, room)])


_uarts = []  # every UART object made, for their rx buffer sizes


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_12BIT = 12
    _FULL_SCALE_MV = (950, 1250, 1750, 3100)  # ESP32 ADC input range per attenuation

    def __init__(self, pin, *, atten=ATTN_0DB):
        self._gpio = pin._id if isinstance(pin, Pin) else int(pin)
        self._atten = atten

    def atten(self, a):
        self._atten = a

    def width(self, w):
        pass

    def read_uv(self):
        uv = struct.unpack('>i', _vchan.chan.request(_vframes.ADC_READ, bytes((self._gpio,))))[0]
        fs = self._FULL_SCALE_MV[self._atten] * 1000
        return max(0, min(uv, fs))

    def read_u16(self):
        return self.read_uv() * 65535 // (self._FULL_SCALE_MV[self._atten] * 1000)

    def read(self):
        return self.read_u16() >> 4


class I2C:
    # Controller on an I2C bus; the targets (PMU, sensors) are modelled by the host. A target
    # that does not acknowledge raises OSError ENODEV, as the ESP32 port does.
    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000):
        self._bus = id

    def init(self, *args, **kw):
        pass

    def deinit(self):
        pass

    def _xfer(self, op, addr, n, data=b''):
        r = _vchan.chan.request(_vframes.I2C, struct.pack('>BBBH', self._bus, addr, op, n) + bytes(data))
        if r[0]:
            raise OSError(19)  # ENODEV: no acknowledge
        return r[1:]

    def scan(self):
        return list(self._xfer(0, 0, 0))

    def writeto(self, addr, buf, stop=True):
        self._xfer(1, addr, len(buf), buf)
        return len(buf)

    def writevto(self, addr, vector, stop=True):
        data = b''.join(bytes(v) for v in vector)
        self._xfer(1, addr, len(data), data)
        return len(data)

    def readfrom(self, addr, nbytes, stop=True):
        return bytes(self._xfer(2, addr, nbytes))

    def readfrom_into(self, addr, buf, stop=True):
        data = self._xfer(2, addr, len(buf))
        buf[:len(data)] = data

    def _mem(self, memaddr, addrsize):
        return memaddr.to_bytes(addrsize // 8, 'big')

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        self.writeto(addr, self._mem(memaddr, addrsize) + bytes(buf))

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        self.writeto(addr, self._mem(memaddr, addrsize), False)
        return self.readfrom(addr, nbytes)

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        self.writeto(addr, self._mem(memaddr, addrsize), False)
        self.readfrom_into(addr, buf)


SoftI2C = I2C


class WDT:
    def __init__(self, id=0, timeout=5000):
        _vchan.chan.send(_vframes.WDT_START, struct.pack('>i', timeout))

    def feed(self):
        _vchan.chan.send(_vframes.WDT_FEED)


class RTC:
    def __init__(self, id=0):
        pass

    def datetime(self, dt=None):
        import utime
        if dt is None:
            t = _vtime.time()
            y, mo, d, h, mi, s, wd, _ = utime.gmtime(t)
            us = _vtime.time_ns() // 1000 % 1000000
            return (y, mo, d, wd, h, mi, s, us)
        y, mo, d, wd, h, mi, s, us = dt
        epoch_us = utime.mktime((y, mo, d, h, mi, s, 0, 0)) * 1000000 + us
        _vtime.set_rtc_offset(epoch_us - _vchan.chan.now_us())

    def init(self, dt):
        self.datetime(dt)

    def memory(self, data=None):
        if data is None:
            return _boot.get('rtc_mem', b'')
        data = bytes(data)
        if len(data) > 2048:
            raise ValueError('RTC memory: 2048 bytes max')
        _boot['rtc_mem'] = data
        _vchan.chan.send(_vframes.RTC_MEM, data)


def _halt():
    # The host now stops this process (as the chip stops); never return to the caller.
    while True:
        _vchan.chan._read_frame()


def reset():
    _vchan.chan.send(_vframes.RESET)
    _halt()


def soft_reset():
    raise SystemExit


def reset_cause():
    return _boot.get('reset_cause', PWRON_RESET)


def wake_reason():
    return _boot.get('wake_reason', 0)


def deepsleep(time_ms=0):
    _vchan.chan.send(_vframes.DEEPSLEEP, struct.pack('>q', time_ms if time_ms > 0 else -1))
    _halt()


def lightsleep(time_ms=0):
    _vchan.chan.send(_vframes.LIGHTSLEEP, struct.pack('>qI', time_ms if time_ms > 0 else -1, _vchan.chan.events))
    while _vchan.chan._read_frame() != _vframes.WAKE:
        pass


def idle():
    _vchan.chan.idle(1, lambda: True)


def unique_id():
    return _boot.get('unique_id', b'\x00' * 6)


def freq(hz=None):
    if hz is None:
        return 240000000
    return None


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


def bootloader():
    reset()
