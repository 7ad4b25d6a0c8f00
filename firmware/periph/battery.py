"""Battery: ADC millivolts at the pin -> cell volts (board divider) -> state of charge %, smoothed;
low-battery flag with hysteresis; charging from a charger status pin where the board has one.

Li-ion open-circuit voltage vs state of charge, tabulated (mV, %) from the fitted curve in
M. Chen, G. A. Rincon-Mora, "Accurate electrical battery model capable of predicting runtime
and I-V performance", IEEE Trans. Energy Conversion 21(2):504-511, 2006 (a Li-ion polymer cell):
  Voc(s) = -1.031*exp(-35*s) + 3.685 + 0.2156*s - 0.1178*s^2 + 0.3201*s^3   [V], s in 0..1
A cell rests at ~4.10 V when full; 4.2 V is only seen on the charger. Read the voltage with
the modem idle: a 2 A transmit burst sags it by hundreds of mV (cell internal resistance)."""
from micropython import const

OCV_CURVE = (
    (2654, 0), (3177, 2), (3439, 4), (3571, 6), (3639, 8), (3675, 10), (3710, 15),
    (3725, 20), (3748, 30), (3773, 40), (3803, 50), (3841, 60), (3888, 70), (3946, 80),
    (4017, 90), (4103, 100),
)

_EMA_SHIFT = const(2)  # smoothing: each sample moves the estimate by 1/4 of the difference
_READS = const(5)  # ADC reads per sample, median taken (ESP32 ADC noise is tens of mV)


def percent(cell_mv, curve=OCV_CURVE):
    """State of charge (0-100) of a resting cell at cell_mv, linear between table points."""
    if cell_mv <= curve[0][0]:
        return 0
    for i in range(1, len(curve)):
        mv1, p1 = curve[i]
        if cell_mv < mv1:
            mv0, p0 = curve[i - 1]
            return p0 + (p1 - p0) * (cell_mv - mv0) // (mv1 - mv0)
    return 100


class Gauge:
    """Pure: feed pin millivolts (after the ADC), read cell_mv / percent / low."""
    low_pct = 15  # low-battery at or below this
    clear_pct = 20  # and cleared again only at or above this (no flapping around the edge)

    def __init__(self, divider=2.0):
        self.divider = divider  # cell volts / pin volts (R1+R2)/R2
        self.cell_mv = None  # smoothed cell voltage, mV
        self.low = False
        self.samples = 0

    def feed(self, pin_mv):
        mv = int(pin_mv * self.divider + 0.5)
        if self.cell_mv is None:
            self.cell_mv = mv
        else:
            self.cell_mv += (mv - self.cell_mv) >> _EMA_SHIFT
        self.samples += 1
        p = self.percent
        if p <= self.low_pct:
            self.low = True
        elif p >= self.clear_pct:
            self.low = False
        return self.cell_mv

    @property
    def percent(self):
        return None if self.cell_mv is None else percent(self.cell_mv)

    @property
    def volts(self):
        return None if self.cell_mv is None else self.cell_mv / 1000


class Battery(Gauge):
    # Driver: bat = Battery(board_pins['battery_adc'], board_pins.get('charging'))
    #         bat.sample() -> cell mV; bat.percent; bat.low; bat.charging (None: not exposed)

    def __init__(self, adc_cfg, charge_cfg=None, adc=None, charge_pin=None):
        super().__init__(adc_cfg.get("divider", 2.0))
        if adc is None:
            import machine
            adc = machine.ADC(machine.Pin(adc_cfg["gpio"]), atten=machine.ADC.ATTN_11DB)
        self.adc = adc  # 11 dB: 0-3.1 V at the pin, a 4.2 V cell through a 1:1 divider fits
        self._chg = charge_pin
        self._chg_active = 0
        if charge_cfg is not None:
            self._chg_active = 0 if charge_cfg.get("active", "low") == "low" else 1
            if charge_pin is None:
                import machine
                pull = machine.Pin.PULL_UP if charge_cfg.get("pull") == "up" else None
                self._chg = machine.Pin(charge_cfg["gpio"], machine.Pin.IN, pull)  # type: ignore[arg-type]  # None: no pull
        self._reads = [0] * _READS

    def read_pin_mv(self):
        r = self._reads
        for i in range(_READS):
            r[i] = self.adc.read_uv()
        r.sort()
        return r[_READS // 2] // 1000

    def sample(self):
        return self.feed(self.read_pin_mv())

    @property
    def charging(self):
        if self._chg is None:
            return None
        return self._chg.value() == self._chg_active


# X-Powers AXP2101 PMU (LilyGO T-SIM7080G): the cell is measured by the PMU, read over I2C.
# Register facts as used by X-Powers' XPowersLib (AXP2101 driver):
_AXP2101 = const(0x34)  # I2C address
_STATUS1 = const(0x00)  # bit 3: battery connected
_STATUS2 = const(0x01)  # bits 6:5: current direction, 01 charging, 10 discharging, 00 standby
_ADC_CTRL = const(0x30)  # bit 0: VBAT measurement enabled
_VBAT = const(0x34)  # VBAT in mV: low 5 bits of 0x34 are bits 12:8, 0x35 bits 7:0


class PmuBattery(Gauge):
    # pmu = PmuBattery(board_pins['pmu_i2c']); pmu.sample() -> cell mV or None (no cell)

    def __init__(self, i2c_cfg=None, i2c=None):
        super().__init__(1.0)  # the PMU reports the cell voltage itself
        if i2c is None:
            import machine
            i2c = machine.I2C(i2c_cfg.get("id", 0), sda=machine.Pin(i2c_cfg["sda"]),
                              scl=machine.Pin(i2c_cfg["scl"]), freq=400000)
        self.i2c = i2c
        self._b1 = bytearray(1)
        self._b2 = bytearray(2)
        self._b1[0] = self._reg(_ADC_CTRL) | 0x01
        self.i2c.writeto_mem(_AXP2101, _ADC_CTRL, self._b1)

    def _reg(self, reg):
        self.i2c.readfrom_mem_into(_AXP2101, reg, self._b1)
        return self._b1[0]

    @property
    def present(self):
        return bool(self._reg(_STATUS1) & 0x08)

    def read_cell_mv(self):
        if not self.present:
            return None
        self.i2c.readfrom_mem_into(_AXP2101, _VBAT, self._b2)
        return ((self._b2[0] & 0x1F) << 8) | self._b2[1]

    def sample(self):
        mv = self.read_cell_mv()
        return None if mv is None else self.feed(mv)

    @property
    def charging(self):
        return (self._reg(_STATUS2) >> 5) & 0x03 == 1


def from_board(board):
    """The board's battery reader: an ADC divider, the PMU, or None when it has neither."""
    pins = board["pins"]
    if "battery_adc" in pins:
        return Battery(pins["battery_adc"], pins.get("charging"))
    if board.get("power", {}).get("battery") == "pmu" and "pmu_i2c" in pins:
        return PmuBattery(pins["pmu_i2c"])
    return None
