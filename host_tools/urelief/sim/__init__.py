"""The simulator: the real firmware on a real MicroPython VM against emulated hardware."""
