"""Provisioning self-test, run over USB by `urelief provision` (mpremote exec
"import selftest; selftest.main()"): each part of the terminal checked once, briefly, and the
findings printed as one line "SELFTEST {json}". The host decides pass or fail. Nothing is
written to flash; the counter is read, not advanced."""
import asyncio
import json
import time

import bringup
import config
import machine
from micropython import const

PREFIX = "SELFTEST "
_GNSS_LISTEN_MS = const(3000)  # a receiver sends NMEA at 1 Hz: three chances
_GNSS_ENOUGH = const(32)  # bytes with a '$' in them: a talking receiver
_BUZZ_MS = const(400)  # one buzz the operator feels in the hand


def check_config():
    board = config.load_board()
    device = config.load_device()
    if board is None:
        raise RuntimeError("no board file %s, or it is unusable: %s" % (
            config.BOARD_FILE, " ".join(e[9:] for e in config.errors)))
    return {"board": board.get("name"), "device_id": device.get("device_id"),
            "key_id": device.get("key_id", 1), "missing": config.missing(device),
            "errors": config.errors}, board


def check_counter():
    from proto.counter import Counter
    return {"next": Counter(config.COUNTER_FILE)._next}


def check_battery(board):
    bat = bringup.battery(board)
    if bat is None:
        return {"error": "no battery gauge on this board"}
    mv = bat.sample()
    return {"mv": mv, "pct": bat.percent, "charging": bat.charging}


def check_vibration(cfg):
    """One buzz; the pad is read back while driven (ESP32 output pins keep their input path)."""
    on = 0 if cfg.get("active", "high") == "low" else 1
    pin = machine.Pin(cfg["gpio"], machine.Pin.OUT, value=1 - on)
    pin.value(on)
    seen_on = pin.value()
    time.sleep_ms(_BUZZ_MS)
    pin.value(1 - on)
    return {"on": seen_on == on, "off": pin.value() == 1 - on, "ms": _BUZZ_MS}


async def check_gnss_uart(board, uart):
    bringup.gnss_power(board)
    seen = 0
    nmea = False
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < _GNSS_LISTEN_MS:
        n = uart.any()
        if n:
            data = uart.read(n) or b""
            seen += len(data)
            nmea = nmea or b"$" in data
            if nmea and seen >= _GNSS_ENOUGH:
                break
        else:
            await asyncio.sleep_ms(50)
    return {"source": "uart", "bytes": seen, "nmea": nmea}


async def check_modem(board):
    """AT answered (powering the module on through PWRKEY if it is silent), its model, and
    whether its own GNSS engine answers where the board takes the position from it."""
    m = bringup.modem(board)
    if m is None:
        return {"error": "no modem on this board"}, None
    m.at.start()
    out = {"answered": False, "powered_on": False}  # type: dict
    gnss = None  # type: dict | None
    try:
        ok = await m.at.sync(3, 300)
        if not ok and m.at.pwrkey is not None:
            out["powered_on"] = True
            await m.at.power_cycle()
            ok = await m._wait_boot()
        out["answered"] = ok
        if ok:
            try:
                lines = await m.at.cmd("AT+CGMM", "", 2000)
                out["model"] = str(lines[0]) if lines else ""
            except Exception as e:
                out["model_error"] = repr(e)
            if board.get("gnss", {}).get("source") == "modem":
                try:
                    await m.gnss_power(False)  # answered OK: the module has its GNSS engine
                    gnss = {"source": "modem", "present": True}
                except Exception as e:
                    gnss = {"source": "modem", "present": False, "error": repr(e)}
    finally:
        m.at.stop()
    return out, gnss


async def run():
    res = {}
    try:
        res["config"], board = check_config()
    except Exception as e:
        res["config"] = {"error": repr(e)}
        return res  # without the pin map nothing else can be found
    for name, fn in (("counter", check_counter), ("battery", lambda: check_battery(board))):
        try:
            res[name] = fn()
        except Exception as e:
            res[name] = {"error": repr(e)}
    pins = board["pins"]
    src = board.get("gnss", {}).get("source")
    tasks = [check_modem(board)]
    uart = bringup.gnss_uart(board)
    if uart is not None:
        tasks.append(check_gnss_uart(board, uart))
    got = await asyncio.gather(*tasks, return_exceptions=True)
    if isinstance(got[0], Exception):
        res["modem"] = {"error": repr(got[0])}
        gnss = None
    else:
        res["modem"], gnss = got[0]
    if len(got) > 1:
        gnss = {"error": repr(got[1])} if isinstance(got[1], Exception) else got[1]
    res["gnss"] = gnss or {"source": src, "error": "no GNSS answered"}
    try:
        res["vibration"] = check_vibration(pins["vibration"])
    except Exception as e:
        res["vibration"] = {"error": repr(e)}
    return res


def main():
    print(PREFIX + json.dumps(asyncio.run(run())))
