"""Test data for the modem driver tests (copies under tests/data, see their README files)."""

import json
import re
import unicodedata
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data"
GAMMU = DATA / "gammu"
MM = DATA / "modemmanager"


def mm_sms():
    return json.loads((MM / "mm_sms_part_3gpp_vectors.json").read_text())


def mm_at():
    return json.loads((MM / "mm_at_response_vectors.json").read_text())


def gammu_urcs():
    return json.loads((GAMMU / "gammu_atgen_urc_vectors.json").read_text())["vectors"]


def dumps(folder):
    return sorted((GAMMU / folder).glob("*.dump"))


def gammu_backup(path: Path) -> dict:
    """A gammu SMS backup as the encoder's arguments. Gammu-specific rules applied here, not in the
    firmware: Text00.. is UCS-2 hex; one SMS only (Default: 160 septets, Unicode: 70 chars);
    Default coding folds characters outside GSM-7 to their base letter (gammu: š -> s);
    a 'Sent' date makes gammu write an SMS-DELIVER with that SCTS, otherwise an SMS-SUBMIT with
    TP-VP = 0xFF."""
    kv = dict(re.findall(r'^(\w+) = "?(.*?)"?$', path.read_text(), re.M))
    text = "".join(bytes.fromhex(kv[k]).decode("utf-16-be") for k in sorted(kv) if k.startswith("Text"))
    out = {"smsc": kv.get("SMSC") or None, "number": kv["Number"], "ucs2": kv["Coding"] == "Unicode"}
    if out["ucs2"]:
        text = text[:70]
    else:
        text = "".join(
            c if c in GSM7_BASIC else unicodedata.normalize("NFKD", c)[0] for c in text)[:160]
    out["text"] = text
    if "Sent" in kv:
        d = kv["Sent"]
        out["scts"] = [int(d[0:4]), int(d[4:6]), int(d[6:8]), int(d[9:11]), int(d[11:13]), int(d[13:15]), 0]
    return out


GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
