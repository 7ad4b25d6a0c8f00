"""The terminal's configuration files on flash: the board's pin map (written at provisioning
from boards/<name>.json) and the device's own settings and key (/device.json), and where the
alarm keeps its state."""
import json

from console import event

BOARD_FILE = "/board.json"
DEVICE_FILE = "/device.json"
COUNTER_FILE = "/ctr"  # uplink counter (proto.counter.Counter), made at provisioning
DOWNLINK_FILE = "/down.ctr"  # downlink replay guard
OUTBOX_DIR = "/outbox"
FW_VERSION = (0, 3, 0)  # reported in every CHECK_IN and SELF_TEST (major, minor, patch)

DEFAULT_DEVICE = {
    "gesture": {"hold_ms": 3000, "presses": 0, "window_ms": 2000},  # hold 3 s to raise SOS
    "self_check": {"presses": 5},  # 5 quick presses, then quiet: "does my terminal work?"
    "checkin_s": 86400,
    # Written at provisioning (host_tools/urelief/provisioning/identity.py, DeviceConfig):
    #   device_id (u32), key_id (0..15), secret (64 hex digits: the 32-byte device secret),
    #   server {"host", "port"} (UDP), sms_number (the police gateway, E.164), drill (bool)
}


def _read_json(path):
    with open(path) as f:
        return json.load(f)


errors: list = []  # console lines, one per field not used as written: the app prints them after boot


def _bad(file, field, action):
    """action: default (its default used), dropped (left out: the part is absent), none (the
    file or the device's identity is unusable). The value is never printed: it may be a key."""
    errors.append(event("config_error", "file=%s field=%s action=%s" % (file, field, action)))


def _int(v, lo, hi):
    return type(v) is int and lo <= v <= hi


def _e164(v):
    return isinstance(v, str) and 4 <= len(v) <= 16 and v[0] == "+" and v[1:].isdigit()


def _hex64(v):
    try:
        return isinstance(v, str) and len(bytes.fromhex(v)) == 32
    except ValueError:
        return False


def _gesture(g):
    if not isinstance(g, dict):
        return False
    h, n = g.get("hold_ms", 3000), g.get("presses", 0)
    return (_int(h, 0, 60000) and _int(n, 0, 9) and (h or n) and n != 1 and not 0 < h < 500
            and _int(g.get("window_ms", 2000), 300, 10000) and type(g.get("count", False)) is bool)


def _server(v):
    return isinstance(v, dict) and isinstance(v.get("host"), str) and 0 < len(v["host"]) < 254 \
        and _int(v.get("port"), 1, 65535)


def _psm(v):  # 3GPP 24.008 timer 3 (T3412 ext) and timer 2 (T3324) ranges, s
    return isinstance(v, dict) and _int(v.get("tau_s"), 60, 35712000) and \
        _int(v.get("active_s"), 2, 11160)


def _cancel(v):
    return isinstance(v, dict) and _int(v.get("presses"), 3, 9) and \
        _int(v.get("duress_presses"), 3, 9) and v["presses"] != v["duress_presses"]


def _self_check(v):
    return isinstance(v, dict) and (v.get("presses") == 0 or _int(v.get("presses"), 3, 9))


# field -> (check, identity): a bad identity field leaves the device unprovisioned (missing());
# any other bad field falls back to its default, or is dropped when it has none.
_DEVICE_FIELDS = {
    "device_id": (lambda v: _int(v, 1, 0xFFFFFFFF), True),
    "key_id": (lambda v: _int(v, 0, 15), True),
    "secret": (_hex64, True),
    "server": (_server, False),
    "sms_number": (_e164, False),
    "centre": (_e164, False),
    "drill": (lambda v: type(v) is bool, False),  # dropped: a real SOS, never a drill
    "checkin_s": (lambda v: _int(v, 60, 7 * 86400), False),
    "psm": (_psm, False),
    "sleep": (lambda v: type(v) is bool, False),  # deep sleep between uses (alarm/sleep.py)
    "cancel": (_cancel, False),
    "gesture": (_gesture, False),
    "self_check": (_self_check, False),
}


BOARD_KEYS = ("name", "pins", "modem", "gnss", "power")  # what the firmware reads of a board file


def _no_notes(d):
    """The board file's prose ("note" at any depth) dropped: a real board's notes, sources and
    description are 13 KB of live heap on the 64-bit VM (9 KB on the chip) kept for nothing."""
    d.pop("note", None)
    for v in d.values():
        if isinstance(v, dict):
            _no_notes(v)


def load_board():
    """The board file, checked per field: a pin that is not usable is dropped (its part is then
    absent), an unknown modem dialect means no modem. None when there is no usable board file or
    it lacks the button or the motor (nothing the terminal could do: the app does not start)."""
    del errors[:]  # read again (main.py, then the app): its errors once
    try:
        board = _read_json(BOARD_FILE)
    except (OSError, ValueError):
        _bad("board", "file", "none")
        return None
    if not isinstance(board, dict) or not isinstance(board.get("pins"), dict):
        _bad("board", "pins", "none")
        return None
    for key in list(board):
        if key not in BOARD_KEYS:
            del board[key]
    _no_notes(board)
    if not isinstance(board.get("name"), str):
        _bad("board", "name", "default")
        board["name"] = "unknown"
    pins = board["pins"]
    for name in list(pins):
        if not _pin(pins[name]):
            _bad("board", "pins." + name, "dropped")
            del pins[name]
    for name in ("button", "vibration"):
        if name not in pins:
            _bad("board", "pins." + name, "none")
            return None
    _one_role_a_pin(pins)
    if "vibration" not in pins:
        return None
    modem = board.get("modem")
    if "modem_uart" in pins and not (isinstance(modem, dict) and modem.get("dialect") in
                                     ("sim7080", "a7670", "sim7600", "bg95")):
        _bad("board", "modem", "dropped")
        del pins["modem_uart"]
    gnss = board.get("gnss")
    if gnss is not None and not (isinstance(gnss, dict) and gnss.get("source") in ("uart", "modem")):
        _bad("board", "gnss", "dropped")
        del board["gnss"]
    return board


def _one_role_a_pin(pins):
    """A GPIO claimed by two roles: the button keeps it, then the motor; any other role on a
    taken pin is dropped (a safe_mode pin on the SOS button would boot a child's held SOS into
    safe mode: no SOS)."""
    taken: set = set()
    for name in ["button", "vibration"] + [n for n in pins if n not in ("button", "vibration")]:
        p = pins[name]
        gpios = [v for k, v in p.items() if k in ("gpio", "tx", "rx", "sda", "scl")]
        if taken.intersection(gpios) or len(set(gpios)) < len(gpios):
            _bad("board", "pins." + name, "none" if name == "vibration" else "dropped")
            del pins[name]
        else:
            taken.update(gpios)


def _pin(p):
    """A pin map entry: a GPIO (0..48) or a bus (UART id, tx, rx, baud; I2C id, sda, scl)."""
    if not isinstance(p, dict):
        return False
    for k, v in p.items():
        if k in ("gpio", "tx", "rx", "sda", "scl") and not _int(v, 0, 48):
            return False
        if (k == "id" and not _int(v, 0, 2)) or (k == "baud" and not _int(v, 1200, 4000000)):
            return False
        if (k == "active" and v not in ("high", "low")) or (k == "pull" and v not in ("up", "down")):
            return False
    return True


def load_device():
    """/device.json over the defaults, checked per field (_DEVICE_FIELDS)."""
    cfg = dict(DEFAULT_DEVICE)
    try:
        got = _read_json(DEVICE_FILE)
    except OSError:
        return cfg  # not provisioned yet: defaults
    except ValueError:
        _bad("device", "file", "none")  # unreadable (cut short, corrupt): not provisioned
        return cfg
    if not isinstance(got, dict):
        _bad("device", "file", "none")
        return cfg
    bad = []
    for k, v in got.items():
        check = _DEVICE_FIELDS.get(k)
        if check is None:
            cfg[k] = v  # a field this firmware does not know: kept, unused
        elif check[0](v):
            cfg[k] = v
        else:
            _bad("device", k, "none" if check[1] else "default" if k in cfg else "dropped")
            if check[1]:
                bad.append(k)
    cfg["_invalid"] = bad
    return cfg


def missing(device):
    """What keeps this device from sending: a list of what provisioning must write (empty: none)."""
    bad = device.get("_invalid", ())
    out = [k for k in ("device_id", "secret") if k not in device or k in bad]
    if "key_id" in bad:
        out.append("key_id")
    if "server" not in device and "sms_number" not in device:
        out.append("server or sms_number")
    return out
