"""The virtual board: real MicroPython, littlefs flash, peripherals, clock, resets."""

import time

import pytest
from urelief.bench.device import HOUR_MAIN
from urelief.sim import events
from urelief.sim.device import (
    DEEPSLEEP_RESET,
    EXT0_WAKE,
    HARD_RESET,
    PWRON_RESET,
    WDT_RESET,
    VirtualDevice,
)
from urelief.sim.models.button import HumanButton

SIM_BUTTON, SIM_MOTOR = 1, 10  # boards/sim.json


def test_vm_runs_firmware_logic_in_an_esp32_sized_heap(mpy):
    assert mpy.json("import sys, json; print(json.dumps(sys.implementation.name))") == "micropython"
    out = mpy.run("""
try:
    keep = bytearray(120 * 1024)
    print('allocated')
except MemoryError:
    print('MemoryError')
""")
    assert out.strip() == "MemoryError"


def test_real_firmware_boots_from_flash_and_logs_reset_cause(device, built_firmware):
    dev = device(firmware=built_firmware)
    assert dev.wait_output(events.line("boot", board="sim", reset="power_on"), timeout_ms=5000)
    assert "Traceback" not in dev.output
    assert dev.reset_causes == [PWRON_RESET]
    dev.run_for(1500)
    assert 0 < dev.heap_peak["live"] < 96 * 1024


def test_button_hold_reaches_firmware_and_vibrates(device, built_firmware):
    dev = device(firmware=built_firmware)
    dev.wait_output(events.line("boot"), timeout_ms=5000)
    motor = []
    dev.pin(SIM_MOTOR).on_change(lambda level, t_ms: motor.append((level, t_ms)))
    button = HumanButton(dev, SIM_BUTTON)
    t0 = dev.clock.now_ms()  # the board waits here until run_for: presses are timed from t0
    button.bump(50, after_ms=500)  # a knock in a pocket: ignored
    button.press(3500, after_ms=2000)
    dev.run_for(8000)
    gestures = events.events(dev.output, "gesture")
    assert len(gestures) == 1 and gestures[0]["kind"] == "hold"
    on = [t - t0 for level, t in motor if level == 1]
    assert len(on) == 4, on  # unprovisioned: the hold is felt as CANNOT_SEND's four pulses
    assert 2000 + 3000 <= on[0] <= 2000 + 3000 + 300  # held 3 s (+ debounce and scheduling)


def test_closed_file_survives_power_cycle_unclosed_does_not(device, tree):
    fw = tree(main_py="""
        import os
        try:
            print('closed:', open('closed.txt').read())
        except OSError:
            print('closed: missing')
        try:
            print('open:', repr(open('open.txt').read()))
        except OSError:
            print('open: missing')
        if 'closed.txt' not in os.listdir():
            with open('closed.txt', 'w') as f:
                f.write('kept')
            g = open('open.txt', 'w')
            g.write('lost' * 100)  # never closed nor flushed when the power goes
            print('written')
        """)
    dev = device(firmware=fw)
    assert dev.wait_output("written", timeout_ms=5000)
    assert "closed: missing" in dev.output
    dev.power_cycle()
    dev.run_until(lambda: dev.boots == 2 and "closed: kept" in dev.output, timeout_ms=5000)
    assert "closed: kept" in dev.output
    assert "open: ''" in dev.output or "open: missing" in dev.output
    assert "lost" not in dev.output.split("closed: kept")[1]
    assert dev.reset_causes == [PWRON_RESET, PWRON_RESET]


def test_unfed_watchdog_resets_with_wdt_cause(device, tree):
    fw = tree(main_py="""
        import machine, time
        print('cause', machine.reset_cause())
        if machine.reset_cause() != machine.WDT_RESET:
            wdt = machine.WDT(timeout=2000)
            for i in range(3):
                wdt.feed()
                time.sleep_ms(1000)
            print('stopped feeding')
            while True:
                time.sleep_ms(100)
        """)
    dev = device(firmware=fw)
    dev.run_until(lambda: dev.boots >= 2, timeout_ms=20_000)
    assert dev.reset_causes[:2] == [PWRON_RESET, WDT_RESET]
    dev.run_until(lambda: "cause 3" in dev.output, timeout_ms=2000)
    assert "stopped feeding" in dev.output and "cause 3" in dev.output


def test_uart_bytes_flow_both_ways(device, tree):
    fw = tree(main_py="""
        import asyncio, machine
        async def main():
            uart = machine.UART(1, 115200, tx=17, rx=18, rxbuf=1024)
            reader = asyncio.StreamReader(uart)
            writer = asyncio.StreamWriter(uart, {})
            while True:
                line = await reader.readline()
                writer.write(b'echo:' + line.upper())
                await writer.drain()
        asyncio.run(main())
        """)
    dev = device(firmware=fw)
    got = bytearray()

    class Peer:
        def on_device_tx(self, data: bytes) -> None:
            got.extend(data)

    uart = dev.uart(1)
    uart.attach(Peer())
    dev.run_for(500)
    payload = bytes(range(256)).replace(b"\n", b"") + b"\n"
    dev.clock.post(lambda: uart.send(b"at+cereg?\r\n"))
    dev.clock.call_later(200, lambda: uart.send(payload))
    dev.run_until(lambda: got.count(b"\n") >= 2, timeout_ms=2000)
    assert bytes(got) == b"echo:AT+CEREG?\r\n" + b"echo:" + payload.upper()


def test_deep_sleep_wakes_on_button_press(device, tree):
    fw = tree(main_py="""
        import machine, esp32
        print('cause', machine.reset_cause(), 'wake', machine.wake_reason())
        if machine.reset_cause() != machine.DEEPSLEEP_RESET:
            btn = machine.Pin(1, machine.Pin.IN, machine.Pin.PULL_UP)
            esp32.wake_on_ext0(btn, esp32.WAKEUP_ALL_LOW)
            machine.RTC().memory(b'asleep')
            machine.deepsleep(3600_000)
        else:
            print('rtc', machine.RTC().memory(), 'pin', machine.Pin(1).value(), 'end')
        """)
    dev = device(firmware=fw)
    dev.run_for(1000)
    assert dev.state == "sleeping"
    HumanButton(dev, SIM_BUTTON).press(500, after_ms=60_000)
    dev.run_until(lambda: "end" in dev.output, timeout_ms=120_000)
    assert dev.reset_causes == [PWRON_RESET, DEEPSLEEP_RESET]
    assert f"cause {DEEPSLEEP_RESET} wake {EXT0_WAKE}" in dev.output
    assert "rtc b'asleep' pin 0 end" in dev.output  # the press that woke it is still held
    assert 60_000 <= dev.clock.now_ms() < 120_000


def test_nvs_commit_survives_power_cycle(device, tree):
    fw = tree(main_py="""
        import esp32
        nvs = esp32.NVS('relief')
        try:
            print('boots', nvs.get_i32('boots'))
        except OSError:
            print('boots none')
            nvs.set_i32('boots', 0)
        nvs.set_i32('boots', nvs.get_i32('boots') + 1)
        nvs.commit()
        nvs.set_i32('boots', 99)  # not committed: lost with the power
        print('saved')
        """)
    dev = device(firmware=fw)
    dev.wait_output("saved", timeout_ms=3000)
    dev.power_cycle()
    dev.run_until(lambda: dev.output.count("saved") == 2, timeout_ms=3000)
    assert "boots none" in dev.output and "boots 1" in dev.output


def test_hard_reset_reruns_boot_then_main(device, tree):
    fw = tree(boot_py="print('boot.py ran')\n", main_py="print('main.py ran')\n")
    dev = device(firmware=fw)
    dev.wait_output("main.py ran", timeout_ms=3000)
    dev.hard_reset()
    dev.run_until(lambda: dev.output.count("main.py ran") == 2, timeout_ms=3000)
    text = dev.output
    assert text.index("boot.py ran") < text.index("main.py ran")
    assert dev.reset_causes == [PWRON_RESET, HARD_RESET]


def test_one_virtual_hour_runs_in_seconds(device, tree):
    fw = tree(main_py=HOUR_MAIN)  # 1 s and 100 ms tickers for one device hour
    dev = device(firmware=fw)
    t0 = time.monotonic()
    dev.run_for(3_601_000, timeout_s=10)
    wall = time.monotonic() - t0
    line = dev.wait_line("hour", timeout_ms=1000)
    seconds, tenths = eval(line.split(" ", 1)[1])  # noqa: S307 - our own firmware's list
    assert 3590 <= seconds <= 3601 and 35900 <= tenths <= 36010
    assert wall < 10


def test_heap_budget_is_enforced_on_the_board(device, tree):
    fw = tree(main_py="""
        import gc
        gc.collect()
        print('free', gc.mem_free())
        try:
            x = bytearray(100 * 1024)
        except MemoryError:
            print('MemoryError')
        """)
    dev = device(firmware=fw, heap_kb=64)
    dev.wait_line("MemoryError", timeout_ms=3000)
    free = int(dev.line("free").split()[1])
    assert 56 * 1024 <= free <= 64 * 1024


@pytest.mark.parametrize("clock", ["real"])
def test_real_clock_device_runs(device, tree, clock):
    fw = tree(main_py="import time\nt=time.ticks_ms()\ntime.sleep_ms(300)\nprint('slept', time.ticks_diff(time.ticks_ms(), t))\n")
    dev: VirtualDevice = device(firmware=fw, clock=clock)
    slept = int(dev.wait_line("slept", timeout_ms=3000).split()[1])
    assert 300 <= slept < 1000


def test_lightsleep_wakes_on_timer_and_keeps_running(device, tree):
    fw = tree(boot_py="import micropython\nmicropython.alloc_emergency_exception_buf(100)\n",
              main_py="""
        import machine, time
        t = time.ticks_ms()
        machine.lightsleep(30_000)
        print('slept', time.ticks_diff(time.ticks_ms(), t), 'id', len(machine.unique_id()),
              'freq', machine.freq())
        """)
    dev = device(firmware=fw)
    line = dev.wait_line("slept", timeout_ms=40_000)
    assert 30_000 <= int(line.split()[1]) < 31_000
    assert line.endswith("id 6 freq 240000000")
    assert dev.boots == 1 and "Traceback" not in dev.output


def test_rtc_time_survives_reset_not_power_cycle(device, tree):
    fw = tree(main_py="""
        import machine, time
        rtc = machine.RTC()
        if time.gmtime()[0] == 2000:
            print('rtc unset')
            if machine.reset_cause() == machine.PWRON_RESET and not rtc.memory():
                rtc.memory(b'x')
                rtc.datetime((2026, 11, 23, 0, 12, 30, 0, 0))
                machine.reset()
        else:
            print('rtc', time.gmtime()[:5])
        """)
    dev = device(firmware=fw)
    dev.wait_line("rtc (2026, 11, 23, 12, 30)", timeout_ms=5000)
    dev.power_cycle()
    dev.run_until(lambda: dev.output.count("rtc unset") == 2, timeout_ms=5000)
    assert dev.output.count("rtc unset") == 2  # first boot, and after the power cut
