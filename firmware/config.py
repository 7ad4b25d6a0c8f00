# The terminal's configuration files on flash: the board's pin map (written at provisioning
# from boards/<name>.json) and the device's own settings.
import json

BOARD_FILE = '/board.json'
DEVICE_FILE = '/device.json'

DEFAULT_DEVICE = {
    'gesture': {'hold_ms': 3000, 'presses': 0, 'window_ms': 2000},  # hold 3 s to raise SOS
}


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def load_board():
    try:
        board = _read_json(BOARD_FILE)
    except OSError:
        raise RuntimeError('no board file ' + BOARD_FILE + ': provision the device')
    for key in ('button', 'vibration'):
        if key not in board.get('pins', {}):
            raise RuntimeError('board file: no pins.' + key)
    return board


def load_device():
    cfg = dict(DEFAULT_DEVICE)
    try:
        cfg.update(_read_json(DEVICE_FILE))
    except OSError:
        pass  # not provisioned yet: defaults
    except ValueError:
        print('device.json unreadable: defaults used')
    return cfg
