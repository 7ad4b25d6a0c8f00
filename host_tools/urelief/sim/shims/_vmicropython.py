# `micropython` for the virtual board: the unix port's module plus what the ESP32 port adds.
from micropython import *  # noqa: F403


def alloc_emergency_exception_buf(size):
    # The ESP32 port keeps a buffer for exceptions raised in hard IRQs; nothing to do here.
    pass
