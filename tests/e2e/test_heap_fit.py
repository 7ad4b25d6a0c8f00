"""The firmware fits a chip without PSRAM: what an idle terminal and an SOS over data do not use
is never imported (bench/heap.py's phase profile: the real main.py's app beside a watcher that
lists the modules each phase imports)."""

from __future__ import annotations

from urelief.bench import heap


def loaded(phases) -> set[str]:
    return {m for _, mods in phases.values() for m in mods}


def test_an_sos_over_data_never_imports_the_sms_codec(police, tmp_path):
    phases = heap.phase_profile(tmp_path, police, "romfs", track_ms=3000)
    mods = loaded(phases)
    assert {"modem.core", "alarm.runner"} <= mods, mods  # the watcher saw the firmware
    assert "modem.pdu" not in mods
