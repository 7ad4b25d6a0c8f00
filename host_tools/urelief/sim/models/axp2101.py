"""The X-Powers AXP2101 PMU as its I2C registers show it (LilyGO T-SIM7080G-S3).

Register facts (AXP2101 datasheet; the same map XPowersLib drives), address 0x34:
- 0x00 status 1: bit 5 VBUS good, bit 3 battery connected;
- 0x01 status 2: bits 6:5 current direction, 01 charging, 10 discharging, 00 standby;
- 0x03 chip id 0x47;
- 0x30 ADC channel enable: bit 0 VBAT;
- 0x34/0x35 VBAT in mV: bits 12:8 in the low 5 bits of 0x34, bits 7:0 in 0x35 (reads 0 while
  the channel is off);
- 0x80 DC-DC on/off, 0x90 LDO on/off: kept, and reported to `on_rails` (the modem and the
  GNSS antenna hang off DC3 and BLDO2 on this board).
"""

from __future__ import annotations

from collections.abc import Callable

from urelief.sim.models.battery import LiIonCell
from urelief.sim.peripherals import RegisterTarget

ADDRESS = 0x34
CHIP_ID = 0x47
_STATUS1, _STATUS2, _CHIP, _ADC_EN, _VBAT_H, _VBAT_L, _DC_ONOFF, _LDO_ONOFF = (
    0x00, 0x01, 0x03, 0x30, 0x34, 0x35, 0x80, 0x90)


class Axp2101(RegisterTarget):
    def __init__(self, cell: LiIonCell | None = None, vbus: bool = False, load_ma: float = 0.0,
                 on_rails: Callable[[int, int], None] | None = None):
        super().__init__()
        self.cell = cell  # None: no cell in the holder
        self.vbus = vbus  # USB power present: the charger runs
        self.load_ma = load_ma
        self.on_rails = on_rails  # (dc_onoff, ldo_onoff) after a firmware write
        self.regs[_CHIP] = CHIP_ID
        self.regs[_DC_ONOFF] = 0x01  # DC1 (the ESP32's 3V3) on at power-up

    def attach_to(self, dev, bus_id: int = 0) -> Axp2101:
        dev.i2c(bus_id).attach(ADDRESS, self)
        return self

    def read_reg(self, reg: int) -> int:
        if reg == _STATUS1:
            return (0x20 if self.vbus else 0) | (0x08 if self.cell else 0)
        if reg == _STATUS2:
            if not self.cell:
                return 0
            return 0x20 if self.vbus and self.cell.soc < 1.0 else 0x40 if not self.vbus else 0
        if reg in (_VBAT_H, _VBAT_L):
            mv = self._vbat_mv()
            return (mv >> 8) & 0x1F if reg == _VBAT_H else mv & 0xFF
        return self.regs[reg]

    def write_reg(self, reg: int, value: int) -> None:
        if reg in (_STATUS1, _STATUS2, _CHIP, _VBAT_H, _VBAT_L):
            return  # read-only
        self.regs[reg] = value
        if reg in (_DC_ONOFF, _LDO_ONOFF) and self.on_rails:
            self.on_rails(self.regs[_DC_ONOFF], self.regs[_LDO_ONOFF])

    def _vbat_mv(self) -> int:
        if not (self.regs[_ADC_EN] & 0x01) or not self.cell:
            return 0
        return max(0, min(0x1FFF, round(self.cell.terminal_mv(self.load_ma))))
