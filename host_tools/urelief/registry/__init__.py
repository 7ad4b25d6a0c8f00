"""The subscriber registry: schools, operators, pupils, guardians, consent, devices, incidents,
and the audit log. See README.md in this folder."""
