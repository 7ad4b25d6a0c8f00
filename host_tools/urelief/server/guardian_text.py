"""What guardians read, in their language: one template per stage of an incident. The service's
language picks the set (`ko` for the Korean service, `en` otherwise); a centre edits them in a
JSON file (`--sms-templates`, docs/server.md) whose entries replace the built-in ones:

    {"ko": {"opened": "[U-Relief] {child} 학생이 {time}에 SOS를 보냈습니다 …"}}

Placeholders: {child} (the pupil's name), {time} (when the SOS came, "HH:MM KST" in the service's time
zone), {incident} (its number), {school}. A template with any other placeholder, or a stage that
does not exist, stops the server at start, not at the first SOS.
"""

from __future__ import annotations

import json
import string
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

STAGES = ("opened", "dispatched", "resolved", "false_alarm")
FIELDS = frozenset({"child", "time", "incident", "school"})
ZONES = {"ko": "Asia/Seoul"}  # the service's zone when none is set; others: UTC

BUILTIN: dict[str, dict[str, str]] = {
    "en": {
        "opened": "U-Relief: {child} pressed SOS at {time}. The police have the alert "
                  "(incident {incident}) and are responding. Do not call the device.",
        "dispatched": "U-Relief: police are on their way to {child} (incident {incident}).",
        "resolved": "U-Relief: the alert for {child} is closed; {child} is safe "
                    "(incident {incident}).",
        "false_alarm": "U-Relief: the alert for {child} was a false alarm; {child} is safe "
                       "(incident {incident}).",
    },
    "ko": {
        "opened": "[U-Relief] {child} 학생이 {time}에 긴급 SOS를 보냈습니다. 경찰이 신고를 "
                  "접수하고 대응 중입니다(사건 {incident}). 단말기로 전화하지 마세요.",
        "dispatched": "[U-Relief] {child} 학생에게 경찰이 출동했습니다(사건 {incident}).",
        "resolved": "[U-Relief] {child} 학생의 신고가 종료되었습니다. 학생은 안전합니다"
                    "(사건 {incident}).",
        "false_alarm": "[U-Relief] {child} 학생의 신고는 오작동으로 확인되었습니다. 학생은 "
                       "안전합니다(사건 {incident}).",
    },
}


class TemplateError(ValueError):
    pass


def _check(lang: str, stage: str, text: object) -> str:
    if stage not in STAGES:
        raise TemplateError(f"{lang}.{stage}: no such stage (one of {', '.join(STAGES)})")
    if not isinstance(text, str) or not text.strip():
        raise TemplateError(f"{lang}.{stage}: a template is a non-empty string")
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError as e:
        raise TemplateError(f"{lang}.{stage}: {e}") from None
    bad = names - FIELDS
    if bad:
        raise TemplateError(f"{lang}.{stage}: unknown placeholder(s) {sorted(bad)}; "
                            f"use {sorted(FIELDS)}")
    return text


class Templates:
    def __init__(self, language: str = "en", path: str | Path | None = None,
                 zone: str | None = None):
        sets = {lang: dict(t) for lang, t in BUILTIN.items()}
        if path:
            try:
                edited = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise TemplateError(f"{path}: {e}") from None
            if not isinstance(edited, dict):
                raise TemplateError(f"{path}: a JSON object of languages")
            for lang, stages in edited.items():
                if not isinstance(stages, dict):
                    raise TemplateError(f"{path}: {lang}: a JSON object of stages")
                sets.setdefault(lang, {}).update(
                    {st: _check(lang, st, t) for st, t in stages.items()})
        if language not in sets:
            raise TemplateError(f"no templates for language {language!r}")
        missing = [st for st in STAGES if st not in sets[language]]
        if missing:
            raise TemplateError(f"{language}: no template for {', '.join(missing)}")
        self.language = language
        self.texts = sets[language]
        self.zone = ZoneInfo(zone or ZONES.get(language, "UTC"))

    def render(self, stage: str, child: str, opened_at: datetime, incident: int,
               school: str = "") -> str:
        return self.texts[stage].format(child=child, incident=incident, school=school,
                                        time=opened_at.astimezone(self.zone).strftime("%H:%M %Z"))
