"""USB provisioning for schools (`urelief provision`): one board per pupil, over mpremote.

- `board.py` — the board on its serial port: identify, copy, read back hashes, reset, self-test
  (mpremote), write MicroPython (esptool);
- `identity.py` — a device's id, secret and flash files (`/device.json`, `/ctr`), its registry entry;
- `flow.py` — one pupil's device, step by step;
- `batch.py` — a roster, boards plugged in one after another;
- `log.py` — the provisioning log that makes re-runs resume; `label.py` — the device label.
"""
