# The AT modem: engine (at.py), 27.007/27.005 core (core.py) and one dialect per module family.


def dialect(name):
    """The Modem class for a board file's "modem": {"dialect": ...}. Imported lazily: a board
    loads only its own module's code."""
    if name == "sim7080":
        from modem.sim7080 import Sim7080

        return Sim7080
    if name in ("a7670", "sim7600"):
        from modem.a7670 import A7670

        return A7670
    if name == "bg95":
        from modem.bg95 import Bg95

        return Bg95
    raise ValueError("unknown modem dialect %s" % name)


def on_uart(cls, uart, pwrkey=None, log=print):
    """A Modem of class `cls` over a machine.UART (asyncio streams; rxbuf >= 1024 advised: a
    datagram or an SMS PDU line arrives in one burst). pwrkey(level): drives PWRKEY, 1 = pressed."""
    import asyncio

    return cls(asyncio.StreamReader(uart), asyncio.StreamWriter(uart, {}), pwrkey, log)
