"""X-Powers AXP2101 PMU rails, switched as the board file's power.rails declares them:
  "rails": {"modem": {"rail": "DC3", "mv": 3000, "use": "modem"}, ...}
use "modem": on before the modem's first AT command; "gnss": on while the GNSS runs (an active
antenna); "soc": the chip's own supply, never touched.

Register facts (AXP2101 datasheet, I2C address 0x34): 0x03 chip id 0x47; 0x80 DC-DC on/off,
bit n = DCDC(n+1); 0x90 LDO on/off: bits 0-3 ALDO1-4, 4-5 BLDO1-2, 6 CPUSLDO, 7 DLDO1;
voltage registers 0x82-0x86 DCDC1-5, 0x92-0x95 ALDO1-4, 0x96-0x97 BLDO1-2, 0x98 CPUSLDO,
0x99 DLDO1, each a code in linear ranges (mV at its first code, mV per step, codes)."""
from micropython import const

ADDRESS = const(0x34)
CHIP_ID = const(0x47)
_CHIP_REG = const(0x03)
_DC_ONOFF = const(0x80)
_LDO_ONOFF = const(0x90)

_DC23 = ((500, 10, 0, 70), (1220, 20, 71, 87))
_LDO = ((500, 100, 0, 30),)
_RAILS = {  # name: (on/off register, bit, voltage register, value mask, ranges)
    "DC1": (_DC_ONOFF, 0, 0x82, 0x1F, ((1500, 100, 0, 19),)),
    "DC2": (_DC_ONOFF, 1, 0x83, 0x7F, _DC23),
    "DC3": (_DC_ONOFF, 2, 0x84, 0x7F, _DC23 + ((1600, 100, 88, 106),)),
    "DC4": (_DC_ONOFF, 3, 0x85, 0x7F, ((500, 10, 0, 70), (1220, 20, 71, 102))),
    "DC5": (_DC_ONOFF, 4, 0x86, 0x1F, ((1400, 100, 0, 23),)),
    "ALDO1": (_LDO_ONOFF, 0, 0x92, 0x1F, _LDO),
    "ALDO2": (_LDO_ONOFF, 1, 0x93, 0x1F, _LDO),
    "ALDO3": (_LDO_ONOFF, 2, 0x94, 0x1F, _LDO),
    "ALDO4": (_LDO_ONOFF, 3, 0x95, 0x1F, _LDO),
    "BLDO1": (_LDO_ONOFF, 4, 0x96, 0x1F, _LDO),
    "BLDO2": (_LDO_ONOFF, 5, 0x97, 0x1F, _LDO),
    "CPUSLDO": (_LDO_ONOFF, 6, 0x98, 0x1F, ((500, 50, 0, 19),)),
    "DLDO1": (_LDO_ONOFF, 7, 0x99, 0x1F, ((500, 100, 0, 28),)),
}


def code(rail, mv):
    """The voltage register code of `rail` at exactly `mv`; ValueError when it has no such step."""
    if rail not in _RAILS:
        raise ValueError("no AXP2101 rail %s" % rail)
    for mv0, step, c0, c1 in _RAILS[rail][4]:
        n = (mv - mv0) // step
        if mv0 + n * step == mv and 0 <= n <= c1 - c0:
            return c0 + n
    raise ValueError("%s cannot give %d mV" % (rail, mv))


def rails(board, use):
    """[(name, rail, mv)] of the board file's power.rails for `use`"""
    out = []
    for name, r in board.get("power", {}).get("rails", {}).items():
        if r.get("use") == use:
            out.append((name, r["rail"], r.get("mv")))
    return out


class Axp2101:
    """pmu = Axp2101(i2c); pmu.switch([(name, rail, mv)], True)"""
    def __init__(self, i2c):
        self.i2c = i2c
        self._b = bytearray(1)
        chip = self._get(_CHIP_REG)
        if chip != CHIP_ID:
            raise OSError("chip id 0x%02x at 0x%02x is no AXP2101" % (chip, ADDRESS))

    def _get(self, reg):
        self.i2c.readfrom_mem_into(ADDRESS, reg, self._b)
        return self._b[0]

    def _put(self, reg, value):
        self._b[0] = value
        self.i2c.writeto_mem(ADDRESS, reg, self._b)

    def set_mv(self, rail, mv):
        reg, mask = _RAILS[rail][2], _RAILS[rail][3]
        c = code(rail, mv)
        self._put(reg, (self._get(reg) & ~mask) | c)

    def enable(self, rail, on):
        reg, bit = _RAILS[rail][0], 1 << _RAILS[rail][1]
        v = self._get(reg)
        self._put(reg, v | bit if on else v & ~bit)

    def switch(self, rails, on):
        """Voltage first, then the switch: a rail never comes up at a wrong voltage."""
        for _, rail, mv in rails:
            if on and mv:
                self.set_mv(rail, mv)
            self.enable(rail, on)


def from_board(board, i2c=None):
    """The board's PMU on its pmu_i2c pins (OSError when nothing answers at 0x34)."""
    if i2c is None:
        import machine
        cfg = board["pins"]["pmu_i2c"]
        i2c = machine.I2C(cfg.get("id", 0), sda=machine.Pin(cfg["sda"]),
                          scl=machine.Pin(cfg["scl"]), freq=400000)
    return Axp2101(i2c)
