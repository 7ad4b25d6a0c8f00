"""Silent feedback: vibration patterns (and an LED only if configured), played by one asyncio task.

Covert by default: no light unless the board has an LED *and* the config asks for light; the
LED is driven off at start so a board LED never gives the device away. Patterns are data:
on/off durations in ms, starting with "on". Each is told apart by touch alone, in a pocket:
pulse count and short (<= 250 ms) / long (>= 500 ms) rhythm differ (tests check this). An ERM
motor needs ~50 ms to spin up, so no pulse is shorter than 100 ms."""
from micropython import const

SENT = "sent"  # the alert left the device
SEEN = "seen"  # a dispatcher acknowledged it
DISPATCHED = "dispatched"  # help is on its way
QUESTION = "question"  # the dispatcher asks: answer by presses
LOW_BATTERY = "low_battery"
CANCEL_ACK = "cancel_ack"  # a cancel (or duress cancel: identical by design) was taken
CANNOT_SEND = "cannot_send"  # a gesture was felt, but this terminal cannot send: get help
SELF_CHECK_OK = "self_check_ok"  # the self-check gesture: registered, heard lately, charged
SELF_CHECK_NOT_OK = "self_check_not_ok"  # the self-check found something wrong

PATTERNS = {
    SENT: (200,),  # .
    SEEN: (200, 200, 200),  # . .
    DISPATCHED: (600, 300, 600, 300, 600),  # _ _ _  strongest, reassuring
    QUESTION: (150, 150, 150, 150, 700),  # . . _  "your turn"
    LOW_BATTERY: (100, 150, 100, 150, 100, 150, 100),  # ....  faint ticks
    CANCEL_ACK: (700, 250, 150),  # _ .
    CANNOT_SEND: (150, 150, 150, 150, 150, 150, 900),  # . . . ___  a flutter, then a long buzz
    SELF_CHECK_OK: (150, 250, 700),  # . _
    SELF_CHECK_NOT_OK: (150, 250, 700, 250, 150, 250, 700),  # . _ . _
}

_GAP_MS = const(800)  # silence between two queued patterns, so they do not merge
_QUEUE = const(4)  # patterns waiting; more are dropped (the newest is kept)


class Haptics:
    # h = Haptics(board_pins['vibration'], led_cfg=board_pins.get('led'), light=cfg_light)
    # h.play(SENT)  # returns at once; the task plays the queue

    def __init__(self, motor_cfg, led_cfg=None, light=False, sleep_ms=None, pin=None):
        """pin: factory (gpio, active) -> object with value(v); the default uses machine.Pin"""
        import asyncio
        self._sleep_ms = sleep_ms or asyncio.sleep_ms
        make = pin or _machine_pin
        self._on = 1 if motor_cfg.get("active", "high") == "high" else 0
        self.motor = make(motor_cfg["gpio"], self._on)
        self.motor.value(1 - self._on)  # off from the start, whatever the pin's reset state
        self.led = None
        self._led_on = 1
        if led_cfg is not None:
            self._led_on = 1 if led_cfg.get("active", "high") == "high" else 0
            led = make(led_cfg["gpio"], self._led_on)
            led.value(1 - self._led_on)  # covert: a board LED is dark unless asked for
            if light:
                self.led = led
        self._queue = []
        self._task = None
        self.played = 0  # statistics
        self.dropped = 0

    def play(self, name, repeat=1):
        """Queue a pattern by name (or a tuple of ms); never blocks."""
        import asyncio
        pattern = PATTERNS[name] if isinstance(name, str) else name
        if len(self._queue) >= _QUEUE:
            self._queue.pop(0)
            self.dropped += 1
        self._queue.append((pattern, repeat))
        if self._task is None:
            self._task = asyncio.create_task(self._player())

    def stop(self):
        """Silence now and forget the queue."""
        self._queue = []
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._set(0)

    @property
    def busy(self):
        return self._task is not None

    def _set(self, on):
        self.motor.value(self._on if on else 1 - self._on)
        if self.led is not None:
            self.led.value(self._led_on if on else 1 - self._led_on)

    async def _player(self):
        import asyncio
        me = asyncio.current_task()
        try:
            while self._queue:
                pattern, repeat = self._queue.pop(0)
                for _ in range(repeat):
                    for i, d in enumerate(pattern):
                        self._set(i % 2 == 0)
                        await self._sleep_ms(d)
                    self._set(0)
                    await self._sleep_ms(_GAP_MS)
                self.played += 1
        finally:
            self._set(0)  # never leave the motor running, even when cancelled
            if self._task is me:
                self._task = None


def _machine_pin(gpio, active):
    import machine
    return machine.Pin(gpio, machine.Pin.OUT, value=1 - active)
