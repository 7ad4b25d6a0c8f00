"""Energy, measured: each part's power state over device time, integrated with the datasheet
currents of `urelief.power.PARTS` (one source of truth for the figures).

Parts and their states, read from the virtual board and the hardware models whenever device
time is about to move (the clock's observers) and after every model timer, so a state holds
exactly from one change to the next:
- mcu: awake (the VM process runs) / deep (deep sleep) / off. Awake time is split by CPU time:
  the VM's host CPU seconds (its CPU-time clock, not wall time) times the chip factor
  (`urelief.sim.chipspeed`) are "active" at the chip's speed; the rest of the awake time is
  "idle" (asyncio waiting). A board run at the chip's speed (VirtualDevice(cpu_scale=factor):
  the host loop's CPU clock) has that in its device time already; one run at host speed is
  charged the difference as extra awake time.
- modem: off / boot (powered, before AT-ready) / attach (searching, registering) / idle
  (registered) / connected (RRC_TAIL_S after each datagram or SMS on the air) / psm / gnss;
- gnss (a UART receiver): acquire / track while powered, backup (V_BCKP) while not;
- motor: the vibration pin's level; static: the board's always-on draw.
"""

from __future__ import annotations

from dataclasses import dataclass

from urelief import power
from urelief.sim import chipspeed

HOUR_MS = 3_600_000.0


@dataclass
class Consumer:
    part: str
    state: str
    ms: float  # device ms in this state
    figure: power.Figure

    @property
    def mah(self) -> float:
        return power.ma(self.figure) * self.ms / HOUR_MS


class EnergyMeter:
    """meter = EnergyMeter(rig.dev, power.PARTS[board], modem=rig.modem, gnss=rig.gnss,
    motor_gpio=...).start(); ...; meter.stop(); meter.report(). Host loop thread (observer)."""

    def __init__(self, dev, parts: power.Parts, modem=None, gnss=None,
                 motor_gpio: int | None = None, cell=None, chip_factor: float | None = None):
        self.dev, self.parts = dev, parts
        self.modem, self.gnss, self.motor_gpio = modem, gnss, motor_gpio
        self.cell = cell  # a models.battery.LiIonCell drained by what is measured, or None
        self.chip_factor = chip_factor if chip_factor is not None else chipspeed.factor(dev.soc)
        self.ms: dict[tuple[str, str], float] = {}
        self._t_us: float | None = None
        self._t0_us = 0.0
        self._states: tuple[tuple[str, str], ...] = ()
        self._cpu0 = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> EnergyMeter:
        self._cpu0 = self.dev.cpu_s
        self.dev.clock.post(self._begin)
        return self

    def _begin(self) -> None:
        self._t0_us = self.dev.clock.now_us()
        self._observe(self._t0_us)
        self.dev.clock.observers.append(self._observe)

    def stop(self) -> None:
        obs = self.dev.clock.observers
        if self._observe in obs:
            self._observe(self.dev.clock.now_us())
            obs.remove(self._observe)

    # -- sampling ----------------------------------------------------------------------------
    def _observe(self, t_us: float) -> None:
        last = self._t_us
        if last is not None and t_us > last:
            dt = (t_us - last) / 1000
            ms = self.ms
            for k in self._states:
                ms[k] = ms.get(k, 0.0) + dt
            self._modem_tail(last / 1000, t_us / 1000)
            if self.cell is not None:
                self.cell.drain(self._current_ma(), dt)
        if last is None or t_us >= last:
            self._t_us = t_us
        self._states = self._sample()

    def _modem_tail(self, a_ms: float, b_ms: float) -> None:
        """The RRC tail after a radio event runs out without an event of its own: move the part
        of [a, b] it covers from the modem's sampled state to "connected"."""
        m = self.modem
        if m is None or m.radio_at is None:
            return
        state = next((s for p, s in self._states if p == "modem"), None)
        if state not in ("idle", "attach"):
            return
        end = m.radio_at + power.RRC_TAIL_S * 1000
        lo, hi = max(a_ms, m.radio_at), min(b_ms, end)
        if hi > lo:
            self.ms[("modem", state)] -= hi - lo
            self.ms[("modem", "connected")] = self.ms.get(("modem", "connected"), 0.0) + hi - lo

    def _sample(self) -> tuple[tuple[str, str], ...]:
        dev = self.dev
        out = [("mcu", {"running": "awake", "sleeping": "deep"}.get(dev.state, "off"))]
        m = self.modem
        if m is not None:
            out.append(("modem", self._modem_state(m)))
        g = self.gnss
        if g is not None and self.parts.gnss:
            out.append(("gnss", ("track" if g.fixed else "acquire") if g.on else "backup"))
        if self.motor_gpio is not None and dev.pin(self.motor_gpio).level:
            out.append(("motor", "on"))
        return tuple(out)

    @staticmethod
    def _modem_state(m) -> str:
        if not m.on and not m.shutting:
            return "off"
        if getattr(m, "asleep", False):  # PSM (LTE-M) or DTR sleep (Cat-1)
            return "psm"
        if not m.ready:
            return "boot"
        if getattr(m, "gnss_on_at", None) is not None:
            return "gnss"
        return "idle" if m.registered else "attach"

    def _current_ma(self) -> float:
        total = sum(power.ma(f) for f in self.parts.static)
        for part, state in self._states:
            fig = self._figure(part, state)
            if fig is not None:
                total += power.ma(fig)
        return total

    def _figure(self, part: str, state: str) -> power.Figure | None:
        p = self.parts
        if part == "mcu":
            return p.mcu.get("idle" if state == "awake" else state)
        if part == "modem":
            return p.modem.get(state)
        if part == "gnss":
            return p.gnss.get(state)
        if part == "motor":
            return p.motor
        return None

    # -- the result --------------------------------------------------------------------------
    @property
    def elapsed_ms(self) -> float:
        return 0.0 if self._t_us is None else (self._t_us - self._t0_us) / 1000

    def consumers(self) -> list[Consumer]:
        """Every part and state with its device time and energy, biggest first. The MCU's awake
        time is split into active (CPU time at the chip's speed) and idle."""
        out: list[Consumer] = []
        cpu_host_ms = max(0.0, self.dev.cpu_s - self._cpu0) * 1000
        for (part, state), ms in self.ms.items():
            if ms <= 0:
                continue
            if part == "mcu" and state == "awake":
                active = cpu_host_ms * self.chip_factor
                idle = max(0.0, self._awake_chip_ms(ms, cpu_host_ms) - active)
                out.append(Consumer("mcu", "active", active, self.parts.mcu["active"]))
                out.append(Consumer("mcu", "idle", idle, self.parts.mcu["idle"]))
                continue
            if part == "mcu" and state == "off":
                continue
            fig = self._figure(part, state)
            if fig is not None:
                out.append(Consumer(part, state, ms, fig))
        for fig in self.parts.static:
            out.append(Consumer("static", fig.name, self.elapsed_ms, fig))
        out.sort(key=lambda c: -self._mah(c))
        return out

    @staticmethod
    def _mah(c: Consumer) -> float:
        return c.mah

    def _awake_chip_ms(self, awake_ms: float, cpu_host_ms: float) -> float:
        # the board ran its CPU time at dev.cpu_scale; the chip needs chip_factor
        return awake_ms + cpu_host_ms * (self.chip_factor - self.dev.cpu_scale)

    def awake_ms(self) -> float:
        """Device ms the chip is awake, at the chip's speed."""
        cpu_host_ms = max(0.0, self.dev.cpu_s - self._cpu0) * 1000
        return self._awake_chip_ms(self.ms.get(("mcu", "awake"), 0.0), cpu_host_ms)

    def report(self, capacity_mah: float = 1500) -> dict:
        days = self.elapsed_ms / 86_400_000
        cons = self.consumers()
        total = sum(self._mah(c) for c in cons)
        per_day = total / days if days else 0.0
        b = power.Budget(power.Profile("measured", (), ()), capacity_mah=capacity_mah)
        daily = per_day + b.self_discharge_mah_day
        awake = self.awake_ms()
        return {
            "days": round(days, 6),
            "mah_per_day": round(per_day, 4),
            "self_discharge_mah_per_day": round(b.self_discharge_mah_day, 3),
            "standby_days": round(capacity_mah * b.usable / daily, 1) if daily else None,
            "capacity_mah": capacity_mah,
            "usable": b.usable,
            "awake_fraction": round(awake / self.elapsed_ms, 6) if self.elapsed_ms else 0.0,
            "awake_s_per_day": round(awake / 1000 / days, 2) if days else 0.0,
            "chip_factor": round(self.chip_factor, 2),
            "cpu_host_s": round(self.dev.cpu_s - self._cpu0, 3),
            "consumers": [
                {"part": c.part, "state": c.state, "s_per_day": round(c.ms / 1000 / days, 3),
                 "ma": power.ma(c.figure), "mah_per_day": round(self._mah(c) / days, 4),
                 "share": round(self._mah(c) / total, 4) if total else 0.0,
                 "figure": c.figure.name, "kind": c.figure.kind}
                for c in cons] if days else [],
        }
