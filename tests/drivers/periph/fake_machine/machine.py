# A stand-in `machine` for driver tests on the unix VM: pins whose level the test sets with
# drive(gpio, level), firing the registered IRQ handler as the ESP32 port does on an edge.
DEEPSLEEP_RESET = 4
PWRON_RESET = 1
EXT0_WAKE = 2
EXT1_WAKE = 3
_reset = [PWRON_RESET, 0]
_levels = {}
_pins = {}
log = []  # (gpio, level) written by the firmware to outputs


def reset_cause():
    return _reset[0]


def wake_reason():
    return _reset[1]


def drive(gpio, level):
    old = _levels.get(gpio)
    _levels[gpio] = level
    p = _pins.get(gpio)
    if p is not None and p.handler is not None and old != level:
        edge = Pin.IRQ_RISING if level else Pin.IRQ_FALLING
        if p.trigger & edge:
            p.handler(p)


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, gpio, mode=IN, pull=None, value=None):
        self.gpio = gpio
        self.handler = None
        self.trigger = 0
        _pins[gpio] = self
        if gpio not in _levels:
            _levels[gpio] = 1 if pull == Pin.PULL_UP else 0
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return _levels[self.gpio]
        _levels[self.gpio] = v
        log.append((self.gpio, v))

    def irq(self, handler=None, trigger=3):
        self.handler = handler
        self.trigger = trigger


class ADC:
    ATTN_11DB = 3
    uv = [0]  # the next read_uv() values, cycled

    def __init__(self, pin, atten=0):
        self.i = 0

    def read_uv(self):
        v = ADC.uv[self.i % len(ADC.uv)]
        self.i += 1
        return v
