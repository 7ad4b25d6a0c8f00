"""Checks made independently of the provisioning tool: a roster, files read back from a board
with mpremote, a packet sealed with the provisioned key and verified by the server's key store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROSTER = """pupil_ref,full_name,class_name,guardian1_name,guardian1_phone,consent_given_by,consent_date
P-001,Kim Minji,4-2,Kim Sora,+821012345678,Kim Sora,2026-03-02
P-002,Lee Hana,4-2,Lee Dong,+821099998888,Lee Dong,2026-03-03
P-003,Park Seo,4-2,Park Ana,+821055554444,Park Ana,2026-03-04
"""


def mpremote(port: str, *args: str, timeout: float = 60):
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", os.path.realpath(port),
                           *args], capture_output=True, text=True, timeout=timeout)


def read_back(port: str, names: list[str], dest: Path) -> dict[str, bytes]:
    """The files as the board's filesystem holds them, copied back with mpremote."""
    args: list[str] = []
    for n in names:
        (dest / n).parent.mkdir(parents=True, exist_ok=True)
        args += ["fs", "cp", f":{n}", str(dest / n), "+"]
    # Ctrl-C into a running app can catch the simulator's shims with the heap locked (the VM
    # then reboots into main.py and mpremote waits in vain): one more try.
    for attempt in (1, 2):
        try:
            r = mpremote(port, *args[:-1], timeout=30)
            break
        except subprocess.TimeoutExpired:
            if attempt == 2:
                raise
    assert r.returncode == 0, r.stderr
    return {n: (dest / n).read_bytes() for n in names}


def server_verifies(police, device_json: dict, counter: int = 1, cache=None):
    """Seal an SOS with the device's secret as the terminal would; the police server's own
    device cache (its KeyStore; a fresh one unless given) checks it. -> Accepted or Rejected."""
    from urelief import protocol as p
    from urelief.server.devices import DeviceCache

    pkt = p.encode_uplink(p.Sos(report=p.Report(battery_pct=80)),
                          device_id=device_json["device_id"], key_id=device_json["key_id"],
                          secret=bytes.fromhex(device_json["secret"]), counter=counter)
    cache = cache or DeviceCache(police.registry.db, police.registry.server_key)
    return p.decode_uplink(pkt, cache, cache, commit=False)
