"""Device configuration at provisioning: a device id and secret, the files the terminal keeps on
its flash (`/device.json`, the counter file `/ctr`), and the device's entry in the registry.

    cfg = new_device(server=("sos.example.org", 7420), sms_number="+82112")
    register(registry, cfg, subscriber_id=42, board="lilygo-t-sim7080g-s3")
    tree = deploy_tree(cfg, out_dir)      # build/firmware + the device's files, ready to flash

USB provisioning (`flow.py`: mpremote, esptool, self-test) builds on this; so do the simulator's
rig and the end-to-end tests.
The counter file's layout is firmware/proto/counter.py's (docs/protocol.md section 7): the first
counter not yet reserved and its complement, big-endian u32 each.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

from urelief.paths import BUILD_FIRMWARE

MAX_U32 = 0xFFFFFFFF
SECRET_LEN = 32
# ITU-T E.164: "+", a country code that never starts with 0, at most 15 digits in all. A
# centre line is a full number (7 digits at least), never a short code.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def e164(number: str) -> str:
    """The number in E.164 form (spaces, dashes, dots and brackets dropped); ValueError if it
    is not one."""
    n = re.sub(r"[\s\-.()]", "", number or "")
    if not _E164.fullmatch(n):
        raise ValueError(f"{number!r} is not an E.164 number (+<country code><number>, "
                         "7..15 digits)")
    return n


@dataclass
class DeviceConfig:
    device_id: int
    secret: bytes
    key_id: int = 1
    server: tuple[str, int] | None = None  # UDP ingest, as the device's modem resolves it
    sms_number: str | None = None  # the police SMS gateway, E.164
    gesture: dict = field(default_factory=lambda: {"hold_ms": 3000, "presses": 0,
                                                   "window_ms": 2000})
    drill: bool = False
    counter_start: int = 1
    # The child's secret cancel: presses closing a run while an alert is live; the duress count
    # looks the same on the device but keeps the alert live, flagged at the server. None: no
    # cancel on the device (the police stand it down).
    cancel: dict | None = None
    checkin_s: int | None = None  # heartbeat period (None: the firmware's daily default)
    # Modem PSM between uses (SIM7080G, BG95): {"tau_s": T3412, "active_s": T3324}; None: off.
    psm: dict | None = None
    # The police centre's voice line, E.164: a silent call (LISTEN_IN) dials it, and only a
    # call from it is answered. None: the device takes part in no call.
    centre: str | None = None
    # Deep sleep between uses (firmware/alarm/sleep.py): button and timer wake, modem left in PSM.
    sleep: bool = False

    def device_json(self) -> dict:
        out: dict = {"device_id": self.device_id, "key_id": self.key_id,
                     "secret": self.secret.hex(), "gesture": self.gesture}
        if self.server:
            out["server"] = {"host": self.server[0], "port": self.server[1]}
        if self.sms_number:
            out["sms_number"] = self.sms_number
        if self.centre:
            out["centre"] = e164(self.centre)
        if self.drill:
            out["drill"] = True
        if self.sleep:
            out["sleep"] = True
        if self.checkin_s is not None:
            if not 60 <= self.checkin_s <= 7 * 86400:
                raise ValueError("checkin_s: 60 s .. 7 days")
            out["checkin_s"] = self.checkin_s
        if self.psm:
            tau, active = self.psm["tau_s"], self.psm["active_s"]
            if not (60 <= tau <= 35712000 and 2 <= active <= 11160):  # 24.008 timer 3 / timer 2
                raise ValueError("psm: tau_s 60 s .. 413 days, active_s 2 s .. 186 min")
            out["psm"] = {"tau_s": tau, "active_s": active}
        if self.cancel:
            c = self.cancel
            if not (3 <= c["presses"] <= 9 and 3 <= c["duress_presses"] <= 9
                    and c["presses"] != c["duress_presses"]):
                raise ValueError("cancel: 3..9 presses, the duress count different from the cancel's")
            out["cancel"] = {"presses": c["presses"], "duress_presses": c["duress_presses"]}
        return out

    def files(self) -> dict[str, bytes]:
        """Flash path (without the leading /) -> content."""
        return {"device.json": json.dumps(self.device_json(), indent=1).encode(),
                "ctr": counter_file(self.counter_start)}


def new_device_id() -> int:
    """A random u32 device id (0 is never used)."""
    return 1 + secrets.randbelow(MAX_U32)


def new_device(server: tuple[str, int] | None = None, sms_number: str | None = None,
               device_id: int | None = None, **kw) -> DeviceConfig:
    """A fresh device: random id (unless given) and a 32-byte secret from the OS."""
    if server is None and not sms_number:
        raise ValueError("a device needs a server address or an SMS number to send to")
    return DeviceConfig(device_id or new_device_id(), secrets.token_bytes(SECRET_LEN),
                        server=server, sms_number=sms_number, **kw)


def counter_file(start: int = 1) -> bytes:
    if not 1 <= start <= MAX_U32:
        raise ValueError("counter start out of range")
    return struct.pack(">II", start, start ^ MAX_U32)


def deploy_tree(cfg: DeviceConfig, out: Path, firmware: Path = BUILD_FIRMWARE) -> Path:
    """A copy of the built firmware with the device's files: what goes onto its flash."""
    if not firmware.is_dir():
        raise FileNotFoundError(f"no firmware at {firmware}: run `make build`")
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(firmware, out)
    for name, data in cfg.files().items():
        (out / name).write_bytes(data)
    return out


def register(registry, cfg: DeviceConfig, *, subscriber_id: int | None = None,
             school_id: int | None = None, board: str = "", actor=None,
             replace: bool = False) -> dict:
    """The device and its secret in the registry (sealed under the server key), so the police
    server verifies its packets. `registry`: urelief.registry.service.Registry."""
    from urelief.registry.service import cli_actor

    return registry.register_device(actor or cli_actor(), cfg.device_id, cfg.secret,
                                    subscriber_id=subscriber_id, school_id=school_id,
                                    key_id=cfg.key_id, board=board, replace=replace)
