"""periph/pmu.py on the MicroPython VM: AXP2101 rail voltage codes, and the rails the board file
declares switched with the voltage set before the switch, other bits kept."""

import pytest

FAKE = """
import json
from periph import pmu
class I2c:  # AXP2101 registers; every write logged
    def __init__(self, chip=0x47):
        self.regs = bytearray(256); self.regs[3] = chip; self.regs[0x80] = 0x01; self.log = []
    def readfrom_mem_into(self, addr, reg, buf):
        assert addr == 0x34
        buf[0] = self.regs[reg]
    def writeto_mem(self, addr, reg, buf):
        self.regs[reg] = buf[0]; self.log.append((reg, buf[0]))
def is_on(i2c, rail):  # the rail's enable bit, read back from the registers
    reg, bit = pmu._RAILS[rail][0], pmu._RAILS[rail][1]
    return bool(i2c.regs[reg] & (1 << bit))
"""


@pytest.mark.parametrize("rail,mv,code", [("DC3", 3000, 102), ("DC3", 1600, 88), ("DC3", 1200, 70),
                                          ("DC3", 1240, 72), ("BLDO2", 3300, 28), ("DC1", 3300, 18),
                                          ("DC5", 1400, 0), ("CPUSLDO", 550, 1)])
def test_voltage_codes(mpy, rail, mv, code):
    assert mpy.json(FAKE + f"print(json.dumps(pmu.code({rail!r}, {mv})))") == code


def test_a_voltage_off_the_rails_steps_or_an_unknown_rail_is_refused(mpy):
    out = mpy.json(FAKE + """
r = []
for rail, mv in (('DC3', 3050), ('DC3', 3500), ('BLDO1', 400), ('LDO9', 3300)):
    try:
        pmu.code(rail, mv); r.append('ok')
    except ValueError as e:
        r.append(str(e))
print(json.dumps(r))
""")
    assert out == ["DC3 cannot give 3050 mV", "DC3 cannot give 3500 mV", "BLDO1 cannot give 400 mV",
                   "no AXP2101 rail LDO9"]


BOARD = """
board = {'power': {'pmu': 'X-Powers AXP2101', 'rails': {
    'esp32s3': {'rail': 'DC1', 'mv': 3300, 'use': 'soc'},
    'modem': {'rail': 'DC3', 'mv': 3000, 'use': 'modem'},
    'level_shifter': {'rail': 'BLDO1', 'mv': 3300, 'use': 'modem'},
    'gnss_antenna': {'rail': 'BLDO2', 'mv': 3300, 'use': 'gnss'}}}}
"""


def test_the_modem_rails_come_up_at_their_voltage_and_dc1_stays_on(mpy):
    out = mpy.json(FAKE + BOARD + """
i2c = I2c()
p = pmu.from_board(board, i2c)
p.switch(pmu.rails(board, 'modem'), True)
on = [is_on(i2c, r) for r in ('DC1', 'DC3', 'BLDO1', 'BLDO2')]
n = len(i2c.log)
p.switch(pmu.rails(board, 'gnss'), True)
p.switch(pmu.rails(board, 'gnss'), False)
print(json.dumps([i2c.log[:n], on, is_on(i2c, 'BLDO2'), i2c.regs[0x90], sorted(pmu.rails(board, 'soc'))]))
""")
    log, on, antenna, ldo, soc = out
    # DC3 3000 mV (code 102 at 0x84) before its bit in 0x80; BLDO1 3300 mV (28 at 0x96) before 0x90
    # (MicroPython dicts keep no order: the rails may come in either order)
    assert sorted(log) == [[0x80, 0x05], [0x84, 102], [0x90, 0x10], [0x96, 28]]
    assert log.index([0x84, 102]) < log.index([0x80, 0x05])
    assert log.index([0x96, 28]) < log.index([0x90, 0x10])
    assert on == [True, True, True, False] and antenna is False and ldo == 0x10
    assert soc == [["esp32s3", "DC1", 3300]]


def test_something_else_at_the_address_is_no_pmu(mpy):
    out = mpy.run(FAKE + """
try:
    pmu.Axp2101(I2c(chip=0x4A))
except OSError as e:
    print('refused', e)
""")
    assert "refused chip id 0x4a at 0x34 is no AXP2101" in out
