"""The virtual board's wire: one frame table, read by the shims (MicroPython) and the host."""

import re

from urelief.sim import frames
from urelief.sim.device import VirtualDevice
from urelief.sim.vmproc import SHIMS

DEVICE_TO_HOST = {"ADC_READ", "BOOT", "PIN_CFG", "WDT_START", "WDT_FEED", "NVS_LOAD", "HEAP",
                  "IDLE", "WAKE_CFG", "LIGHTSLEEP", "RTC_MEM", "NVS_COMMIT", "PIN_OUT", "I2C",
                  "RESET", "DEEPSLEEP", "UART_TX", "SYNC", "RTC_SET", "INTR"}


def test_micropython_reads_the_same_table(mpy):
    on_vm = mpy.json("import json, _vframes\n"
                     "print(json.dumps({k: getattr(_vframes, k) for k in dir(_vframes)"
                     " if k.isupper()}))", path=(SHIMS,))
    assert on_vm == {name: kind for kind, name in frames.NAMES.items()}
    assert len(frames.NAMES) == len(on_vm)  # no two names share a kind


def test_the_host_answers_every_kind_the_board_sends_and_no_other():
    dev = VirtualDevice()
    try:
        handled = {frames.NAMES[k] for k in dev.chip.handlers}
    finally:
        dev.console.close()
    assert handled == DEVICE_TO_HOST


def test_no_frame_kind_is_a_literal_at_either_end():
    sources = [*SHIMS.glob("_v*.py"), *SHIMS.parent.glob("*.py")]
    literal = re.compile(r"(send|request|send_frame|send_event)\(\s*0x[0-9a-fA-F]+|"
                         r"(==|!=)\s*0x5[0-9A-F]\b|handlers\[0x")
    found = [(p.name, m.group(0)) for p in sources if p.name != "_vframes.py"
             for m in literal.finditer(p.read_text())]
    assert not found
