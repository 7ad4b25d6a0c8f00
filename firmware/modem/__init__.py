"""The AT modem: engine (at.py), 27.007/27.005 core (core.py) and one dialect per module family
(sim7080.py, a7670.py, bg95.py); SMS PDU codec (pdu.py); rarely used extras (extra.py).

  m = on_uart(dialect(board["modem"]["dialect"]), uart, pwrkey_pin.value)
  await m.start(); asyncio.create_task(m.supervise())   # powers on via PWRKEY if silent
  await m.wait_registered(ms) -> bool; m.reg = (stat, tac, ci, act); await m.signal()
  await m.udp_open(host, port); await m.udp_send(data); await m.udp_recv(ms) -> bytes | None
  await m.send_sms(number, bytes | str) -> TP-MR; await m.recv_sms(ms) -> sms.Sms | None
  m.has("gnss" | "sms" | "udp" | "psm" | "gnss_with_lte"); await m.gnss_power(on);
  await m.gnss_fix() -> gnss Fix. Without "gnss_with_lte", GNSS on means no UDP/SMS (ModemError).
  Errors: at.AtError (.kind, .code), at.AtTimeout, at.ModemReset, core.ModemError."""


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
