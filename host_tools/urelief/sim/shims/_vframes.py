# Frame kinds on the virtual board's wire to the host, one table for both ends: the shims
# (MicroPython, `import _vframes`) and the host (CPython, `urelief.sim.shims._vframes`).
# A frame is kind (1 byte) + length (2 bytes, big-endian) + payload; every device->host payload
# starts with the device time in us (8 bytes, big-endian), every event host->device too.

# device -> host (-> REPLY: the host answers with a REPLY frame)
ADC_READ = 0x41  # A (gpio) -> REPLY(microvolts, >i)
BOOT = 0x42  # B -> REPLY(json: time, reset cause, wake reason, RTC memory, pin levels)
PIN_CFG = 0x43  # C (gpio, mode, pull) -> REPLY(level)
WDT_START = 0x44  # D (timeout ms, >i)
WDT_FEED = 0x46  # F
NVS_LOAD = 0x47  # G (namespace) -> REPLY(json)
HEAP = 0x48  # H (allocated, live; bytes, >ii)
IDLE = 0x49  # I (until device us or -1, events seen; >qI) -> WAKE
WAKE_CFG = 0x4B  # K (0 ext0 | 1 ext1, gpio, mask, level; >bbQb)
LIGHTSLEEP = 0x4C  # L (ms or -1, events seen; >qI) -> WAKE
RTC_MEM = 0x4D  # M (bytes kept across deep sleep)
NVS_COMMIT = 0x4E  # N (namespace length, namespace, json)
PIN_OUT = 0x50  # P (gpio, level)
I2C = 0x51  # Q (bus, addr, op, n; >BBBH, data) -> REPLY(0 + data | 1: NACK)
RESET = 0x52  # R: machine.reset()
DEEPSLEEP = 0x53  # S (ms or -1, >q)
UART_TX = 0x54  # T (uart id, bytes)
SYNC = 0x59  # Y: the board's time (e.g. on entering the REPL)
RTC_SET = 0x5A  # Z (epoch offset us, >q)

# host -> device
PIN_LEVEL = 0x45  # E event (t, gpio, level)
UART_RX = 0x55  # U event (t, uart id, bytes)
REPLY = 0x56  # V (the answer to a request)
WAKE = 0x57  # W (now us, lease us; >qq): an idle or light sleep ends

# both ways
INTR = 0x58  # X: Ctrl-C from the USB host; the board sends it back once taken
