"""The label for a provisioned terminal: device id, pupil, school and a short check code, as plain
text and as an SVG sized for a 62 x 29 mm address label, stuck inside the case (battery cover):
nothing on the outside tells what the device is. Never any key material.

The check code ties the label to this provisioning (device id, key generation, the board's
unique id and the pupil): a teacher handing out terminals compares it with `urelief provision
status`; a label printed for another device or an older key does not match.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from html import escape
from pathlib import Path

_W_MM, _H_MM = 62, 29


def check_code(device_id: int, key_id: int, board_uid: str, pupil_ref: str) -> str:
    """Six base32 characters as XXX-XXX (30 bits: a mix-up shows, it is no secret)."""
    h = hashlib.sha256(b"urelief-label\x00" + device_id.to_bytes(4, "big") + bytes([key_id])
                       + bytes.fromhex(board_uid or "") + pupil_ref.encode()).digest()
    code = base64.b32encode(h[:5]).decode()[:6]
    return f"{code[:3]}-{code[3:]}"


def label_lines(device_id: int, pupil: str, class_name: str, school: str, code: str,
                when: datetime | None = None) -> list[tuple[str, str]]:
    when = when or datetime.now(UTC)
    pupil_class = f"{pupil} ({class_name})" if class_name else pupil
    # Covert by design: the label goes inside the case and does not say what the device does.
    return [("U-Relief", "keep inside the case"), ("Device", f"0x{device_id:08x}"),
            ("Pupil", pupil_class), ("School", school), ("Check", code),
            ("Provisioned", when.strftime("%Y-%m-%d"))]


def write_label(out_dir: Path, lines: list[tuple[str, str]], device_id: int) -> tuple[Path, Path]:
    """-> (text file, SVG file) named after the device id."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"urelief-0x{device_id:08x}"
    width = max(len(k) for k, _ in lines) + 2
    txt = stem.with_suffix(".txt")
    txt.write_text("".join(f"{k:<{width}}{v}\n" for k, v in lines), encoding="utf-8")
    svg = stem.with_suffix(".svg")
    svg.write_text(_svg(lines), encoding="utf-8")
    return txt, svg


def _svg(lines: list[tuple[str, str]]) -> str:
    rows = []
    y = 5.0
    for i, (k, v) in enumerate(lines):
        if i == 0:
            rows.append(f'<text x="2" y="{y}" font-size="4.2" font-weight="bold">{escape(k)} '
                        f'<tspan font-weight="normal">{escape(v)}</tspan></text>')
            y += 5.2
            continue
        big = k in ("Device", "Check")
        style = ' font-size="3.6" font-family="monospace"' if big else ' font-size="3.2"'
        rows.append(f'<text x="2" y="{y:.1f}" font-size="2.8" fill="#444">{escape(k)}</text>'
                    f'<text x="19" y="{y:.1f}"{style}>{escape(v)}</text>')
        y += 4.4
    body = "\n  ".join(rows)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W_MM}mm" height="{_H_MM}mm" '
            f'viewBox="0 0 {_W_MM} {_H_MM}" font-family="sans-serif">\n'
            f'  <rect width="{_W_MM}" height="{_H_MM}" fill="white"/>\n  {body}\n</svg>\n')
