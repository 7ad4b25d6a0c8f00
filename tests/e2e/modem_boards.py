"""The simulator's board with another modem dialect on its modem UART, for tests that run the
same scenario on every dialect."""

from __future__ import annotations

import json
from pathlib import Path

from urelief.paths import BOARDS

CAPS = {"sim7080": ["gnss", "sms", "udp", "psm", "gnss_with_lte"],
        "a7670": ["gnss", "sms", "udp", "gnss_with_lte", "voice"],
        "bg95": ["gnss", "sms", "udp", "psm", "gnss_with_lte"]}


def board_for(dialect: str, tmp_path: Path) -> str:
    b = json.loads((BOARDS / "sim.json").read_text())
    b["name"] = f"sim-{dialect}"
    b["modem"] = {"dialect": dialect}
    b["capabilities"] = CAPS[dialect]
    path = tmp_path / f"sim-{dialect}.json"
    path.write_text(json.dumps(b))
    return str(path)
