"""`urelief sim replay-nmea LOG`: one JSON object per epoch with the documented keys."""

import json

import gpsd_chk as G
from click.testing import CliRunner
from urelief.cli import main

KEYS = ["time", "lat", "lon", "alt_msl", "speed", "course", "mode", "hdop", "sats_used"]


def test_replay_prints_one_json_object_per_epoch():
    log = G.DATA / "bt451.log"
    res = CliRunner().invoke(main, ["sim", "replay-nmea", str(log), "--stats"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines()]
    epochs, stats = rows[:-1], rows[-1]["stats"]
    assert len(epochs) == 19 and all(list(e) == KEYS for e in epochs)
    assert epochs[0] == dict.fromkeys(KEYS) | {"mode": 1, "hdop": 99.99, "sats_used": 0}
    fix = epochs[5]
    assert fix["time"] == "2009-12-09T15:25:05.000Z" and fix["mode"] == 3
    assert abs(fix["lat"] - 55.797018833) < 1e-7 and abs(fix["lon"] - 23.569021667) < 1e-7
    assert fix["alt_msl"] == 37.0 and fix["hdop"] == 2.72 and fix["sats_used"] == 4
    assert abs(fix["speed"] - 0.130) < 0.001 and fix["course"] is None
    assert stats["parsed"] == 138 and stats["unsupported"] == 6 and stats["bad_checksum"] == 0
