# A stand-in `esp32` for driver tests: records the deep-sleep wake configuration.
WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True
ext0 = []  # (gpio, level) per wake_on_ext0 call


def wake_on_ext0(pin, level):
    ext0.append((pin.gpio, level))
