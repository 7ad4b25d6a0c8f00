"""Power budget: days of standby on a cell, from sleep currents and the daily duty cycle.

Every figure carries its source and its kind: "datasheet" (typical value from the part's
datasheet), "vendor" (the board maker's measurement), "derived" (Ohm's law on our own
wiring) or "assumed" (no published figure found: measure it on the bench, then replace it).
The duty cycle (seconds awake per check-in) defaults to our own estimate and can be replaced
with the firmware's measured figures (`urelief boards power --awake-s ... --modem-s ...`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    name: str
    value: float  # µA for sleep figures, mA for active ones
    kind: str  # datasheet | vendor | derived | assumed
    source: str


# -- sleep (µA, always on) -----------------------------------------------------------------------
ESP32_DEEP_SLEEP = Figure("ESP32 deep sleep (RTC timer + RTC memory, ext0 wake)", 10, "datasheet",
                          "ESP32 Series Datasheet, 'Power consumption by power modes': Deep-sleep, "
                          "RTC timer + RTC memory 10 uA")
ESP32S3_DEEP_SLEEP = Figure("ESP32-S3 deep sleep (RTC memory + RTC peripherals on)", 8, "datasheet",
                            "ESP32-S3 Series Datasheet, 'Current consumption in low-power modes': "
                            "Deep-sleep, RTC memory and RTC peripherals powered up 8 uA")
SIM70XX_PSM = Figure("SIM7080G in PSM (registered, radio off)", 9, "datasheet",
                     "SIM7000 Hardware Design (the SIM7080G's predecessor in the same family) as "
                     "quoted in the Botletics SIM7000 shield wiki 'Current Consumption': PSM 9 uA; "
                     "conservative for the SIM7080G, whose own spec sheet gives less")
RT9080_IQ = Figure("RT9080-33 LDO quiescent", 2, "datasheet",
                   "Richtek RT9080 datasheet: 600 mA LDO, ground current 2 uA typical")
DW01A_IQ = Figure("cell protection IC (DW01A) operating current", 3, "datasheet",
                  "DW01A datasheet: supply current 3.0 uA typical")
DIVIDER_1M = Figure("battery divider 1 M + 1 M at 4.0 V", 2.0, "derived",
                    "4.0 V / 2 MOhm = 2 uA (hw/README.md wiring)")
TP4056_BAT = Figure("TP4056 BAT pin leakage with no input power", 2, "assumed",
                    "TP4056 datasheet lists the battery drain in sleep mode as a few uA; "
                    "2 uA assumed, measure")
MAXM10_BACKUP = Figure("u-blox MAX-M10S on V_BCKP only (ephemeris kept for hot start)", 35,
                       "assumed", "order of magnitude of the u-blox M10 backup-mode current; "
                       "check the MAX-M10S datasheet revision in hand and measure")
LILYGO_7080_BOARD = Figure("LilyGO T-SIM7080G board asleep (ESP32-S3 deep sleep, modem asleep, "
                           "AXP2101 on)", 1200, "vendor",
                           "Xinyuan-LilyGO/LilyGo-T-SIM7080G README, BIGIOT_Gnss_Upload example: "
                           "'Timed wake-up consumes about 1.2mA'")
A7670_SLEEP = Figure("A7670 asleep between pagings (LTE Cat-1 has no PSM; DTR sleep, DRX)", 1000,
                     "assumed", "no published A7670 figure found; Cat-1 modules of the same class "
                     "report 0.3-0.5 mA in DRX sleep (Air780E low-power page) before board losses; "
                     "1 mA assumed, measure")
LILYGO_A7670_BOARD = Figure("LilyGO T-A7670 regulators, charger, LEDs", 500, "assumed",
                            "not published; the modem LEDs cannot be turned off (vendor README): "
                            "0.5 mA assumed, measure")

# -- active (mA while it lasts) ------------------------------------------------------------------
ESP32_AWAKE = Figure("ESP32 running MicroPython, radio off", 40, "datasheet",
                     "ESP32 Series Datasheet: Modem-sleep (CPU on, Wi-Fi/BT off) 20-68 mA "
                     "depending on clock; 40 mA taken for 160 MHz")
MODEM_CONNECTED = Figure("SIM7080G LTE-M connected, sending one small UDP datagram", 60, "assumed",
                         "between the SIM7000 HD's idle-on-LTE 11 mA and LTE data 167 mA @ 23 dBm "
                         "(Botletics wiki); a 100-byte datagram keeps the transmitter on for "
                         "milliseconds, the receiver on until the RRC inactivity timer ends")
MODEM_IDLE = Figure("SIM7080G LTE-M idle (PSM active timer T3324 running)", 11, "datasheet",
                    "SIM7000 Hardware Design via the Botletics wiki: idle on LTE 11 mA")
A7670_CONNECTED = Figure("A7670 LTE Cat-1 connected, one small datagram", 100, "assumed",
                         "Cat-1 draws more than LTE-M; 100 mA average assumed, measure")

# -- more states, for the simulator's energy meter (sim/energy.py) ------------------------------
ESP32_IDLE = Figure("ESP32 awake, CPU waiting (asyncio idle; no automatic light sleep)", 27,
                    "datasheet", "ESP32 Series Datasheet, 'Power consumption by power modes': "
                    "Modem-sleep at 160 MHz 27-44 mA; the low end with the CPU waiting")
ESP32_LIGHT_SLEEP = Figure("ESP32 light sleep", 0.8, "datasheet",
                           "ESP32 Series Datasheet, 'Power consumption by power modes': "
                           "Light-sleep 0.8 mA")
ESP32S3_LIGHT_SLEEP = Figure("ESP32-S3 light sleep", 0.24, "datasheet",
                             "ESP32-S3 Series Datasheet, 'Current consumption in low-power "
                             "modes': Light-sleep 240 uA")
SIM70XX_OFF = Figure("SIM7080G powered down (AT+CPOWD), VBAT still on", 7, "assumed",
                     "SIMCom LPWA modules list a power-off leakage of a few uA; 7 uA assumed, "
                     "below the PSM figure")
MODEM_ATTACH = Figure("LTE-M registering / searching (receiver on, scanning)", 60, "assumed",
                      "the connected figure above: the receiver runs the whole search")
MODEM_GNSS = Figure("SIM7080G GNSS engine on (LTE paused)", 30, "assumed",
                    "SIMCom GNSS application notes give tens of mA while tracking; 30 mA "
                    "assumed, measure")
A7670_OFF = Figure("A7670 powered down (AT+CPOF), VBAT still on", 20, "assumed",
                   "no published figure; a Cat-1 module's power-off leakage, 20 uA assumed")
A7670_IDLE = Figure("A7670 registered, idle, UART awake (no DTR sleep)", 20, "assumed",
                    "no published A7670 figure; Cat-1 idle without sleep mode 15-25 mA")
MAXM10_ACQUIRE = Figure("u-blox MAX-M10S acquiring", 12, "assumed",
                        "u-blox M10 product summary: ~40 mW in acquisition at 3.3 V; measure")
MAXM10_TRACK = Figure("u-blox MAX-M10S tracking (continuous)", 8, "assumed",
                      "u-blox M10 product summary: ~25 mW continuous tracking at 3.3 V")
MOTOR = Figure("ERM coin vibration motor running", 70, "assumed",
               "10 mm ERM coin motors (e.g. Precision Microdrives 310-101) rate 60-85 mA at 3 V")
RRC_TAIL_S = 10.0  # s the LTE receiver stays connected after a datagram or SMS: the network's
                   # RRC inactivity timer (operators set 5-20 s; assumed)


@dataclass(frozen=True)
class Parts:
    """The current of each part in each power state, for a board (sim/energy.py integrates
    them over the device time spent in each). Keys: mcu active / idle / light / deep; modem
    off / boot / attach / idle / connected / psm / gnss; gnss (a UART receiver) acquire / track /
    backup; motor on; static: what draws always (regulator, divider, protection, charger)."""
    mcu: dict[str, Figure]
    modem: dict[str, Figure]
    gnss: dict[str, Figure]
    motor: Figure
    static: tuple[Figure, ...]


_ESP32 = {"active": ESP32_AWAKE, "idle": ESP32_IDLE, "light": ESP32_LIGHT_SLEEP,
          "deep": ESP32_DEEP_SLEEP}
_ESP32S3 = {"active": ESP32_AWAKE, "idle": ESP32_IDLE, "light": ESP32S3_LIGHT_SLEEP,
            "deep": ESP32S3_DEEP_SLEEP}
_SIM7080 = {"off": SIM70XX_OFF, "boot": MODEM_IDLE, "attach": MODEM_ATTACH, "idle": MODEM_IDLE,
            "connected": MODEM_CONNECTED, "psm": SIM70XX_PSM, "gnss": MODEM_GNSS}
_A7670 = {"off": A7670_OFF, "boot": A7670_IDLE, "attach": A7670_CONNECTED, "idle": A7670_IDLE,
          "connected": A7670_CONNECTED, "psm": A7670_SLEEP, "gnss": MODEM_GNSS}
_MAXM10 = {"acquire": MAXM10_ACQUIRE, "track": MAXM10_TRACK, "backup": MAXM10_BACKUP}
_REFERENCE_STATIC = (RT9080_IQ, DW01A_IQ, DIVIDER_1M, TP4056_BAT)
LILYGO_7080_FLOOR = Figure("LilyGO T-SIM7080G board floor besides the chip and the modem", 1183,
                           "derived", "the vendor's 1.2 mA asleep (above) less the ESP32-S3's "
                           "8 uA deep sleep and the SIM7080G's 9 uA, which the meter counts "
                           "itself")

# The figures above given in uA (sleep currents; power.py's convention), the rest in mA.
MICROAMPS = frozenset({ESP32_DEEP_SLEEP, ESP32S3_DEEP_SLEEP, SIM70XX_PSM, SIM70XX_OFF, A7670_OFF,
                       RT9080_IQ, DW01A_IQ, DIVIDER_1M, TP4056_BAT, MAXM10_BACKUP,
                       LILYGO_7080_BOARD, LILYGO_7080_FLOOR, LILYGO_A7670_BOARD, A7670_SLEEP})


def ma(fig: Figure) -> float:
    """A figure's current in mA."""
    return fig.value / 1000 if fig in MICROAMPS else fig.value


PARTS = {
    "devkitc-sim7080g-ublox": Parts(_ESP32, _SIM7080, _MAXM10, MOTOR, _REFERENCE_STATIC),
    "devkitc-wrover-sim7080g-ublox": Parts(_ESP32, _SIM7080, _MAXM10, MOTOR, _REFERENCE_STATIC),
    "sim": Parts(_ESP32S3, _SIM7080, _MAXM10, MOTOR, _REFERENCE_STATIC),
    "lilygo-t-sim7080g-s3": Parts(_ESP32S3, _SIM7080, {}, MOTOR, (LILYGO_7080_FLOOR,)),
    "lilygo-t-a7670": Parts(_ESP32, _A7670, {}, MOTOR, (LILYGO_A7670_BOARD,)),
}


@dataclass(frozen=True)
class Burst:
    figure: Figure
    seconds: float  # per check-in

    @property
    def mah(self) -> float:
        return self.figure.value * self.seconds / 3600


@dataclass(frozen=True)
class Profile:
    board: str
    sleep: tuple[Figure, ...]
    checkin: tuple[Burst, ...]  # one daily check-in (heartbeat with battery, signal, version)
    note: str = ""


PROFILES = {
    "devkitc-sim7080g-ublox": Profile(
        "devkitc-sim7080g-ublox",
        (ESP32_DEEP_SLEEP, SIM70XX_PSM, RT9080_IQ, DW01A_IQ, DIVIDER_1M, TP4056_BAT, MAXM10_BACKUP),
        (Burst(ESP32_AWAKE, 4.0), Burst(MODEM_CONNECTED, 10.0), Burst(MODEM_IDLE, 10.0)),
        "as modified in hw/README.md: AMS1117, power LED and USB bridge out of the battery path"),
    "sim": Profile(
        "sim",
        (ESP32S3_DEEP_SLEEP, SIM70XX_PSM, RT9080_IQ, DW01A_IQ, DIVIDER_1M, TP4056_BAT, MAXM10_BACKUP),
        (Burst(ESP32_AWAKE, 4.0), Burst(MODEM_CONNECTED, 10.0), Burst(MODEM_IDLE, 10.0)),
        "the virtual board, costed as the reference build with an ESP32-S3"),
    "lilygo-t-sim7080g-s3": Profile(
        "lilygo-t-sim7080g-s3",
        (LILYGO_7080_BOARD,),
        (Burst(ESP32_AWAKE, 4.0), Burst(MODEM_CONNECTED, 10.0), Burst(MODEM_IDLE, 10.0)),
        "as sold: the vendor's own sleep measurement"),
    "lilygo-t-a7670": Profile(
        "lilygo-t-a7670",
        (ESP32_DEEP_SLEEP, A7670_SLEEP, LILYGO_A7670_BOARD),
        (Burst(ESP32_AWAKE, 4.0), Burst(A7670_CONNECTED, 10.0)),
        "Cat-1 without PSM: the modem pages every DRX cycle all day"),
}


@dataclass
class Budget:
    profile: Profile
    capacity_mah: float = 1500
    usable: float = 0.8  # cut-off near 3.5 V, ageing and cold: 80 % of the label
    self_discharge_pct_month: float = 2.0  # Li-ion cell at 20 C, typical 1-3 %/month
    checkins_per_day: float = 1
    extra: list[Burst] = field(default_factory=list)  # e.g. SOS drills

    @property
    def sleep_ua(self) -> float:
        return sum(f.value for f in self.profile.sleep)

    @property
    def checkin_mah(self) -> float:
        return sum(b.mah for b in self.profile.checkin)

    @property
    def self_discharge_mah_day(self) -> float:
        return self.capacity_mah * self.self_discharge_pct_month / 100 / 30

    @property
    def daily_mah(self) -> float:
        return (self.sleep_ua * 24 / 1000 + self.checkin_mah * self.checkins_per_day
                + sum(b.mah for b in self.extra) + self.self_discharge_mah_day)

    @property
    def days(self) -> float:
        return self.capacity_mah * self.usable / self.daily_mah

    def with_duty(self, awake_s: float | None = None, modem_s: float | None = None) -> Budget:
        """The same budget with measured seconds per check-in: ESP32 awake, modem connected."""
        bursts = []
        for b in self.profile.checkin:
            if awake_s is not None and b.figure is ESP32_AWAKE:
                b = replace(b, seconds=awake_s)
            elif modem_s is not None and b.figure in (MODEM_CONNECTED, A7670_CONNECTED):
                b = replace(b, seconds=modem_s)
            bursts.append(b)
        return replace(self, profile=replace(self.profile, checkin=tuple(bursts)))

    def table(self) -> str:
        lines = [f"{self.profile.board}: {self.profile.note}", "  sleep (always on):"]
        for f in self.profile.sleep:
            lines.append(f"    {f.value:8.1f} uA  {f.name}  [{f.kind}: {f.source}]")
        lines.append(f"    {self.sleep_ua:8.1f} uA  total = {self.sleep_ua * 24 / 1000:.2f} mAh/day")
        lines.append(f"  check-in x{self.checkins_per_day:g}/day:")
        for b in self.profile.checkin:
            lines.append(f"    {b.figure.value:6.0f} mA x {b.seconds:5.1f} s = {b.mah:.3f} mAh  "
                         f"{b.figure.name}  [{b.figure.kind}: {b.figure.source}]")
        lines.append(f"  self-discharge {self.self_discharge_pct_month:g} %/month = "
                     f"{self.self_discharge_mah_day:.2f} mAh/day")
        lines.append(f"  total {self.daily_mah:.2f} mAh/day; {self.capacity_mah:g} mAh x "
                     f"{self.usable:.0%} usable -> {self.days:.0f} days")
        return "\n".join(lines)


class DutyMeter:
    """Measures the firmware's duty cycle on a VirtualDevice: device time spent awake (the chip
    running) and asleep, and the number of boots (power-on and every wake), by sampling the
    board state every `every_ms` of device time. Feed the result to
    Budget.with_duty(awake_s=meter.awake_s_per_boot)."""

    def __init__(self, dev, every_ms: float = 10):
        self.dev, self.every_ms = dev, every_ms
        self.awake_ms = 0.0
        self.asleep_ms = 0.0
        self.boots = 0
        self._last: tuple[float, str] | None = None
        self._timer = None

    def start(self) -> DutyMeter:
        self.dev.clock.post(self._tick)
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        now, state = self.dev.clock.now_ms(), self.dev.state
        was = None
        if self._last is not None:
            t, was = self._last
            if was == "running":
                self.awake_ms += now - t
            elif was == "sleeping":
                self.asleep_ms += now - t
        if state == "running" and was != "running":
            self.boots += 1
        self._last = (now, state)
        self._timer = self.dev.clock.call_later(self.every_ms, self._tick)

    @property
    def awake_s_per_boot(self) -> float:
        return self.awake_ms / max(self.boots, 1) / 1000

    @property
    def awake_fraction(self) -> float:
        total = self.awake_ms + self.asleep_ms
        return self.awake_ms / total if total else 0.0


MEASURED = Path(__file__).resolve().parents[2] / "hw" / "power"  # <board>.json: saved soaks


def measured(board: str, where: Path | None = None) -> dict | None:
    """The last saved `urelief sim soak --save` of `board` (the real firmware's measured energy
    on the virtual board), or None."""
    p = (where or MEASURED) / f"{board}.json"
    return json.loads(p.read_text()) if p.exists() else None


def measured_table(rep: dict) -> str:
    """A saved soak's figures, as `urelief boards power` prints them."""
    lines = [f"  measured (urelief sim soak, {rep['days']:g} device-days, real firmware): "
             f"{rep['mah_per_day']:.2f} mAh/day + {rep['self_discharge_mah_per_day']:.2f} "
             f"self-discharge, awake fraction {rep['awake_fraction']:.5f} -> "
             f"{rep['standby_days']} days on {rep['capacity_mah']:g} mAh"]
    for c in rep["consumers"][:3]:
        lines.append(f"    {c['mah_per_day']:7.3f} mAh/day {c['share']:6.1%}  {c['part']} "
                     f"{c['state']} [{c['kind']}]")
    return "\n".join(lines)
