"""Board bring-up: the board file's pin map -> the terminal's parts, powered as they need. One
place for the app (app.py) and the provisioning self-test (selftest.py), so the self-test
checks the parts exactly as the terminal starts them."""
import machine
from console import event, flag

_pmu = None  # periph.pmu.Axp2101 once a rail was switched


def output(cfg, on):
    """An output pin driven to its active level (on) or the other one. -> setter(on)"""
    active = 0 if cfg.get("active", "high") == "low" else 1
    pin = machine.Pin(cfg["gpio"], machine.Pin.OUT, value=active if on else 1 - active)
    return lambda v: pin.value(active if v else 1 - active)


def uart(cfg, baud, rxbuf):
    """A machine.UART on the board file's {"id", "tx", "rx", "baud"}."""
    return machine.UART(cfg["id"], cfg.get("baud", baud), tx=cfg["tx"], rx=cfg["rx"],
                        rxbuf=rxbuf)


def battery(board):
    """The battery reader (ADC divider or PMU gauge), None when the board has neither; raises
    when the gauge does not answer."""
    from periph.battery import from_board
    return from_board(board)


def pmu_rails(board, use, on=True, log=print):
    """The PMU rails the board file declares for `use` (periph/pmu.py): switched on (or off)
    now. -> switch(on) for them; None when the board powers nothing of `use` from a PMU.
    Errors are logged, never raised: the terminal still feels the gesture without its modem."""
    global _pmu
    if "rails" not in board.get("power", {}):
        return None
    from periph import pmu
    rails = pmu.rails(board, use)
    if not rails:
        if use == "modem" and "modem_power" not in board["pins"]:
            log(event("fault", "what=pmu_no_modem_rail", "the modem stays unpowered"))
        return None
    try:
        if _pmu is None:
            _pmu = pmu.from_board(board)
        _pmu.switch(rails, on)
    except (OSError, ValueError, KeyError) as e:
        log(event("fault", "what=pmu_rails use=" + use, repr(e)))
        return None
    log(event("pmu_rails", "use=%s on=%d rails=%s" % (use, flag(on), ",".join(
        "%s:%s:%smV" % (n, r, mv) for n, r, mv in rails))))
    p = _pmu
    return lambda v: p.switch(rails, v)


def gnss_power(board):
    """switch(on) for the GNSS receiver's supply (an enable pin, or the PMU rail of a modem's
    active antenna, off until a window), or None."""
    pins = board["pins"]
    if board.get("gnss", {}).get("source") == "modem":
        return pmu_rails(board, "gnss", False)
    if "gnss_enable" in pins:
        return output(pins["gnss_enable"], True)  # on from boot, as the receiver needs
    return None


def gnss_uart(board):
    """The UART of a separate GNSS receiver, or None (modem GNSS, or none)."""
    pins = board["pins"]
    if board.get("gnss", {}).get("source") != "uart" or "gnss_uart" not in pins:
        return None
    return uart(pins["gnss_uart"], 9600, 512)


def modem(board):
    """The modem of the board's dialect on its UART, powered (PMU rails, power pin) and with its
    PWRKEY, not started. None when the board has no modem."""
    from modem import dialect, on_uart
    pins = board["pins"]
    if "modem_uart" not in pins:
        return None
    pmu_rails(board, "modem")  # before the first AT command: the supply and level shifter
    if "modem_power" in pins:
        output(pins["modem_power"], True)
    u = uart(pins["modem_uart"], 115200, 1024)
    key = output(pins["modem_pwrkey"], False) if "modem_pwrkey" in pins else None
    return on_uart(dialect(board["modem"]["dialect"]), u, key)
