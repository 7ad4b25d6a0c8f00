"""A Li-ion cell behind the board's divider, as the battery ADC pin sees it.

Open-circuit voltage from the fitted curve of M. Chen and G. A. Rincon-Mora, "Accurate electrical
battery model capable of predicting runtime and I-V performance", IEEE Trans. Energy Conversion
21(2), 2006 (a Li-ion polymer cell), plus a series resistance for the sag under load. The
firmware tabulates the same published curve; this is the continuous one (independent code).
"""

from __future__ import annotations

import math
from collections.abc import Callable


def ocv_v(soc: float) -> float:
    """Open-circuit voltage (V) at state of charge soc (0..1)."""
    s = min(max(soc, 0.0), 1.0)
    return -1.031 * math.exp(-35 * s) + 3.685 + 0.2156 * s - 0.1178 * s * s + 0.3201 * s**3


class LiIonCell:
    """State of charge, drained (or charged) by a current; terminal voltage with IR sag."""

    def __init__(self, capacity_mah: float = 1500, soc: float = 1.0,
                 r_internal_ohm: float = 0.15):
        # 0.1-0.2 ohm: typical DC resistance of a 1-2 Ah pouch/18650 cell at room temperature.
        self.capacity_mah = capacity_mah
        self.soc = soc
        self.r_internal_ohm = r_internal_ohm

    def drain(self, current_ma: float, ms: float) -> None:
        """Discharge at current_ma for ms (negative current: charging)."""
        self.soc -= current_ma * ms / 3_600_000 / self.capacity_mah
        self.soc = min(max(self.soc, 0.0), 1.0)

    def terminal_mv(self, current_ma: float = 0.0) -> float:
        return ocv_v(self.soc) * 1000 - current_ma * self.r_internal_ohm


class BatteryModel:
    """Drives dev.adc(gpio) with the cell's terminal voltage through the divider.

    load_ma: the board's current draw, a number or a function of device time (ms).
    """

    def __init__(self, dev, gpio: int, divider: float = 2.0, cell: LiIonCell | None = None,
                 load_ma: float | Callable[[float], float] = 0.0):
        self.dev, self.gpio, self.divider = dev, gpio, divider
        self.cell = cell or LiIonCell()
        self.load_ma = load_ma
        self._last_ms: float | None = None
        self._timer = None

    def _load(self, t_ms: float) -> float:
        return self.load_ma(t_ms) if callable(self.load_ma) else float(self.load_ma)

    def pin_mv(self, t_ms: float = 0.0) -> float:
        return self.cell.terminal_mv(self._load(t_ms)) / self.divider

    def apply(self) -> None:
        """Advance the drain to now and set the ADC pin (call from the sim thread)."""
        now = self.dev.clock.now_ms()
        if self._last_ms is not None:
            self.cell.drain(self._load(now), now - self._last_ms)
        self._last_ms = now
        self.dev.adc(self.gpio).set_mv(self.pin_mv(now))

    def start(self, every_ms: float = 1000) -> None:
        """Update the pin every every_ms of device time (any thread)."""
        def tick() -> None:
            self.apply()
            self._timer = self.dev.clock.call_later(every_ms, tick)
        self.dev.clock.post(tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def set_soc(self, soc: float) -> None:
        self.cell.soc = soc
        self.dev.clock.post(self.apply)
