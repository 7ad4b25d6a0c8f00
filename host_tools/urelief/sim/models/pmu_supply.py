"""The modem's power on the LilyGO T-SIM7080G-S3: the AXP2101's rails, not a GPIO, feed it.

- DC3 is the SIM7080G's VBAT: the module is powered only while DC3 is on at 2.7-4.8 V (SIM7080
  Hardware Design, VBAT range); off, or at a wrong voltage, the module is dark (a cut supply
  powers a running module off at once).
- BLDO1 feeds the level shifter between the ESP32-S3 and the module: without it, neither the
  UART nor PWRKEY gets through, so the module stays silent and cannot be switched on.
- BLDO2 feeds the active GNSS antenna: without it the module's GNSS hears no satellites.

The modem emulator is attached without its own PWRKEY wiring; this model sits between it and
the board's PWRKEY pin and UART.
"""

from __future__ import annotations

from urelief.sim.models.axp2101 import Axp2101

DC_ONOFF, LDO_ONOFF = 0x80, 0x90
DC3_VOLTS, BLDO1_VOLTS, BLDO2_VOLTS = 0x84, 0x96, 0x97
VBAT_MV = (2700, 4800)  # SIM7080G supply range
ANTENNA_MV = (3000, 3600)  # active antenna (LNA) supply


def dc3_mv(code: int) -> int:
    """AXP2101 DCDC3 voltage code -> mV (0.5-1.2 V by 10, 1.22-1.54 V by 20, 1.6-3.4 V by 100)."""
    code &= 0x7F
    if code <= 70:
        return 500 + code * 10
    if code <= 87:
        return 1220 + (code - 71) * 20
    return 1600 + (min(code, 106) - 88) * 100


def ldo_mv(code: int) -> int:
    """AXP2101 ALDO/BLDO voltage code -> mV (0.5-3.5 V by 100)."""
    return 500 + min(code & 0x1F, 30) * 100


class PmuSupply:
    def __init__(self, dev, pmu: Axp2101, modem, uart_id: int, pwrkey_gpio: int | None):
        self.dev, self.pmu, self.modem = dev, pmu, modem
        self.powered = self.shifter = self.antenna = False
        self.log: list[tuple[float, str]] = []  # (device ms, what changed)
        pmu.on_rails = lambda dc, ldo: self.update()
        modem.attach(dev, uart_id=uart_id, pwrkey_gpio=None)
        self._uart = modem.uart
        modem.uart = self  # the module's TX reaches the board only through the shifter
        self._uart.peers.remove(modem)  # and the board's TX reaches the module only through it
        self._uart.attach(self)
        if pwrkey_gpio is not None:
            dev.pin(pwrkey_gpio).on_change(self._pwrkey)
        self.update()

    def update(self) -> None:
        r = self.pmu.regs
        powered = bool(r[DC_ONOFF] & 0x04) and VBAT_MV[0] <= dc3_mv(r[DC3_VOLTS]) <= VBAT_MV[1]
        shifter = bool(r[LDO_ONOFF] & 0x10) and ldo_mv(r[BLDO1_VOLTS]) >= 1800
        antenna = bool(r[LDO_ONOFF] & 0x20) and ANTENNA_MV[0] <= ldo_mv(r[BLDO2_VOLTS]) <= ANTENNA_MV[1]
        now = self.dev.clock.now_ms()
        for name, old, new in (("modem supply", self.powered, powered),
                               ("level shifter", self.shifter, shifter),
                               ("gnss antenna", self.antenna, antenna)):
            if old != new:
                self.log.append((now, f"{name} {'on' if new else 'off'}"))
        self.powered, self.shifter, self.antenna = powered, shifter, antenna
        self.modem.gnss_signal = antenna
        if not powered and (self.modem.on or self.modem.shutting):
            self.modem.shutting = False
            self.modem.power_off()

    def _pwrkey(self, level: int, t_ms: float) -> None:
        if self.powered and self.shifter:
            self.modem.on_pwrkey(level, t_ms)

    # the UART between the two, as HostUart and as its peer
    def send(self, data: bytes) -> None:
        if self.shifter:
            self._uart.send(data)

    def on_device_tx(self, data: bytes) -> None:
        if self.shifter and self.powered:
            self.modem.on_device_tx(data)
