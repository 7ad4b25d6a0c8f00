"""The terminal's configuration files on flash: the board's pin map (written at provisioning
from boards/<name>.json) and the device's own settings and key (/device.json), and where the
alarm keeps its state."""
import json

BOARD_FILE = "/board.json"
DEVICE_FILE = "/device.json"
COUNTER_FILE = "/ctr"  # uplink counter (proto.counter.Counter), made at provisioning
DOWNLINK_FILE = "/down.ctr"  # downlink replay guard
OUTBOX_DIR = "/outbox"
FW_VERSION = (0, 3, 0)  # reported in every CHECK_IN and SELF_TEST (major, minor, patch)

DEFAULT_DEVICE = {
    "gesture": {"hold_ms": 3000, "presses": 0, "window_ms": 2000},  # hold 3 s to raise SOS
    # Written at provisioning (host_tools/urelief/provisioning/identity.py, DeviceConfig):
    #   device_id (u32), key_id (0..15), secret (64 hex digits: the 32-byte device secret),
    #   server {"host", "port"} (UDP), sms_number (the police gateway, E.164), drill (bool)
}


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def load_board():
    try:
        board = _read_json(BOARD_FILE)
    except OSError:
        raise RuntimeError("no board file " + BOARD_FILE + ": provision the device")
    for key in ("button", "vibration"):
        if key not in board.get("pins", {}):
            raise RuntimeError("board file: no pins." + key)
    return board


def load_device():
    cfg = dict(DEFAULT_DEVICE)
    try:
        cfg.update(_read_json(DEVICE_FILE))
    except OSError:
        pass  # not provisioned yet: defaults
    except ValueError:
        print("device.json unreadable: defaults used")
    return cfg


def missing(device):
    """What keeps this device from sending: a list of what provisioning must write (empty: none)."""
    out = [k for k in ("device_id", "secret") if k not in device]
    if "server" not in device and "sms_number" not in device:
        out.append("server or sms_number")
    return out
