"""The SOS on the real boards' virtual twins against the real police server, device time:
press -> SOS at the server, and press -> the POSITION with a fresh fix at the server.

- T-SIM7080G-S3, last-known fix 60 s old (the module's GNSS hot: a fix within 2 h): the SOS
  goes with it, then a GNSS window (LTE idle) gives the fresh fix.
- T-SIM7080G-S3, no fix yet (a hold during the boot-time window: cold start).
- T-A7670: the modem's GNSS beside LTE (cold start).
Figures come from the modem emulator's log (when the firmware handed the datagram over) plus
its uplink latency; the 3 s hold is included."""

from __future__ import annotations

import tempfile
from pathlib import Path

from urelief.bench import publish
from urelief.build import build
from urelief.sim import events
from urelief.sim.rig import PoliceServer, Rig

_SEND = {"sim7080": "AT+CASEND", "a7670": "AT+CIPSEND"}
_GNSS_OFF = {"sim7080": "AT+CGNSPWR=0", "a7670": "AT+CGPS=0"}


def _after(r: Rig, text: str, t0: float) -> float:
    return next(t for t, d, s in r.modem.log if d == "rx" and t >= t0 and s.startswith(text))


def _case(server: PoliceServer, tmp: Path, name: str, board: str, warm: bool) -> None:
    r = Rig(tmp / name, server, board=board).start()
    try:
        dev = r.dev
        if warm:
            r.until(lambda: events.first(dev.output, "gnss_window_closed"), timeout_ms=90_000)
            dev.run_for(60_000)
        elif board == "lilygo-t-a7670":
            r.wait_ready()
        else:
            r.until(lambda: events.first(dev.output, "gnss_window_open"), timeout_ms=60_000)
        t_press = r.hold(3500) - 3000
        r.until(lambda: events.first(dev.output, "stored", kind="position", reason=2), timeout_ms=120_000)
        c = events.first(dev.output, "stored", kind="position", reason=2)["counter"]
        r.until(lambda: events.first(dev.output, "ack", counter=c), timeout_ms=30_000)
        dialect = dev.board["modem"]["dialect"]
        sos = _after(r, _SEND[dialect], t_press)
        pos = [t for t, d, s in r.modem.log if d == "rx" and s.startswith(_SEND[dialect]) and t > sos]
        if dialect == "sim7080":  # the first uplink after the window
            pos = [t for t in pos if t > _after(r, _GNSS_OFF[dialect], sos)]
        up = r.modem.t.uplink_ms
        print(f"{name:34s} press -> SOS at server {(sos + up - t_press) / 1000:5.2f} s, "
              f"press -> fresh-fix POSITION at server {(pos[0] + up - t_press) / 1000:6.2f} s")
        publish.figure(f"{name}: press -> SOS at server (awake, data)",
                       f"{(sos + up - t_press) / 1000:.2f} s", goal="<= hold + 2 s (5 s)",
                       met=(sos + up - t_press) / 1000 <= 5.0,
                       versus="the modem emulator's datasheet latencies")
        publish.figure(f"{name}: press -> fresh-fix POSITION at server",
                       f"{(pos[0] + up - t_press) / 1000:.2f} s")
    finally:
        r.stop()


def main() -> None:
    build()
    with tempfile.TemporaryDirectory(prefix="urelief-bench-boards-") as tmp:
        server = PoliceServer(Path(tmp) / "police").seed().start()
        try:
            _case(server, Path(tmp), "T-SIM7080G-S3, fix 60 s old (hot)", "lilygo-t-sim7080g-s3", True)
            _case(server, Path(tmp), "T-SIM7080G-S3, no fix yet (cold)", "lilygo-t-sim7080g-s3", False)
            _case(server, Path(tmp), "T-A7670, no fix yet (cold)", "lilygo-t-a7670", False)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
