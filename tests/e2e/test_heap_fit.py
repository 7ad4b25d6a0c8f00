"""The firmware fits a chip without PSRAM: what an idle terminal and an SOS over data do not use
is never imported (bench/heap.py's phase profile: the real main.py's app beside a watcher that
lists the modules each phase imports)."""

from __future__ import annotations

import json

from urelief.bench import heap
from urelief.paths import BOARDS
from urelief.sim import vm
from urelief.sim.device import board_heap_kb


def loaded(phases) -> set[str]:
    return {m for _, mods in phases.values() for m in mods}


def test_an_sos_over_data_never_imports_the_sms_codec(police, tmp_path):
    phases = heap.phase_profile(tmp_path, police, "romfs", track_ms=3000)
    mods = loaded(phases)
    assert {"modem.core", "alarm.runner"} <= mods, mods  # the watcher saw the firmware
    assert "modem.pdu" not in mods


def test_a_plain_esp32_boots_and_sends_an_sos_from_romfs(police, tmp_path):
    """A plain ESP32 (no PSRAM) with the heap its MicroPython grows to, ~110 KB, in the 64-bit
    VM's bytes (the measured vm.WORD_RATIO): booted from a ROMFS deployment, the SOS reaches
    the police and is acked."""
    kb = board_heap_kb(json.loads((BOARDS / f"{heap.PLAIN_ESP32}.json").read_text()))
    assert kb == round(vm.CHIP_HEAP_KB / vm.WORD_RATIO)
    ok, live, why = heap.sos_heap(tmp_path, police, "romfs", heap.PLAIN_ESP32, kb)
    assert ok, why
    assert live <= kb * 1024
