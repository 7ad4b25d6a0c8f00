"""I2C on the virtual board: the AXP2101 PMU of the LilyGO T-SIM7080G-S3, read by the firmware."""

from urelief.sim.models.axp2101 import ADDRESS, Axp2101
from urelief.sim.models.battery import LiIonCell

PMU_READER = """
import machine
from periph.battery import PmuBattery
i2c = machine.I2C(0, sda=machine.Pin(15), scl=machine.Pin(7), freq=400000)
print('scan', i2c.scan())
try:
    i2c.readfrom(0x50, 1)
except OSError as e:
    print('nack', e.args[0])
pmu = PmuBattery(i2c=i2c)
print('pmu', pmu.present, pmu.read_cell_mv(), pmu.charging, 'end')
"""


def test_firmware_reads_the_cell_through_the_pmu(device, tree, built_firmware):
    import shutil

    fw = tree(main_py=PMU_READER)
    shutil.copytree(built_firmware / "periph", fw / "periph")
    dev = device(firmware=fw, board="lilygo-t-sim7080g-s3")
    cell = LiIonCell(soc=0.5)
    Axp2101(cell=cell).attach_to(dev, 0)
    assert dev.wait_line("scan", timeout_ms=5000) == f"scan [{ADDRESS}]"
    assert dev.wait_line("nack", timeout_ms=1000) == "nack 19"  # ENODEV: nobody at 0x50
    line = dev.wait_line("pmu", timeout_ms=1000)
    present, mv, charging = line.split()[1:4]
    assert present == "True" and charging == "False"
    assert abs(int(mv) - cell.terminal_mv()) <= 1  # 13-bit mV register, what the cell gives


def test_pmu_reports_no_cell_and_the_rails_the_firmware_switches(device, tree):
    rails = []
    fw = tree(main_py="""
        import machine
        i2c = machine.I2C(0, sda=machine.Pin(15), scl=machine.Pin(7))
        print('status', i2c.readfrom_mem(0x34, 0x00, 1)[0], i2c.readfrom_mem(0x34, 0x03, 1)[0])
        i2c.writeto_mem(0x34, 0x80, bytes([0x05]))  # DC1 + DC3 (the modem's supply) on
        print('done')
        """)
    dev = device(firmware=fw, board="lilygo-t-sim7080g-s3")
    Axp2101(cell=None, vbus=True, on_rails=lambda dc, ldo: rails.append((dc, ldo))).attach_to(dev)
    assert dev.wait_line("status", timeout_ms=5000) == "status 32 71"  # VBUS good, no cell; id
    dev.wait_line("done", timeout_ms=1000)
    assert rails == [(0x05, 0x00)]
