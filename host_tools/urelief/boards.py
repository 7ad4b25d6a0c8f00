"""Board files: schema, SoC pin rules, and `urelief boards check`.

Each SoC has one table of pin rules (taken from Espressif's datasheets and technical reference
manuals); a board file is checked against its SoC's table. Errors make a board unusable or
unsafe (a flash pin, an output on an input-only pin, a button that cannot wake the chip);
warnings are legal but risky (strapping pins, ADC2). Every message names the pin, the role it
plays on the board and the conflicting function.
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import click
import jsonschema

from urelief.paths import BOARDS, FIRMWARE

SCHEMA = BOARDS / "schema.json"


@dataclass(frozen=True)
class SocRules:
    name: str
    gpios: frozenset[int]  # pads that exist as GPIOs
    reserved: dict[int, str]  # error: the chip or module needs them (flash, USB, console)
    psram: dict[str, dict[int, str]]  # error when the board's PSRAM wiring is this kind
    input_only: frozenset[int]  # no output driver and no internal pulls
    strapping: dict[int, str]  # warning: the level at reset selects a boot mode
    wake: frozenset[int]  # RTC GPIOs: can wake the chip from deep sleep (ext0/ext1)
    adc1: frozenset[int]
    adc2: frozenset[int]  # warning: ADC2 is shared with the Wi-Fi/BT radio
    uart0: dict[int, str] = field(default_factory=dict)  # warning: console/boot log pads


def _r(a: int, b: int) -> frozenset[int]:
    return frozenset(range(a, b + 1))


# ESP32 (ESP32 Series Datasheet: pin description, strapping pins, RTC IO, ADC; TRM IO MUX)
ESP32 = SocRules(
    name="ESP32",
    gpios=_r(0, 19) | {21, 22, 23, 25, 26, 27} | _r(32, 39),
    reserved={
        6: "SPI flash SCK (CLK)", 7: "SPI flash SD0", 8: "SPI flash SD1",
        9: "SPI flash SD2 (HD)", 10: "SPI flash SD3 (WP)", 11: "SPI flash CMD (CS)",
        1: "UART0 TX (USB-serial bridge: REPL and provisioning)",
        3: "UART0 RX (USB-serial bridge: REPL and provisioning)",
    },
    psram={"quad": {16: "PSRAM CS (WROVER modules)", 17: "PSRAM CLK (WROVER modules)"}},
    input_only=_r(34, 39),
    strapping={
        0: "strapping pin (boot mode: low at reset enters the serial bootloader)",
        2: "strapping pin (must be low or floating to enter the bootloader)",
        5: "strapping pin (SDIO slave timing)",
        12: "strapping pin MTDI (flash voltage: high at reset selects 1.8 V and the board "
            "will not boot from 3.3 V flash)",
        15: "strapping pin MTDO (boot log on UART0 and SDIO timing)",
    },
    wake=frozenset({0, 2, 4, 12, 13, 14, 15, 25, 26, 27}) | _r(32, 39),
    adc1=_r(32, 39),
    adc2=frozenset({0, 2, 4, 12, 13, 14, 15, 25, 26, 27}),
)

# ESP32-S3 (ESP32-S3 Series Datasheet: pin overview, strapping pins, RTC and analog functions)
ESP32S3 = SocRules(
    name="ESP32-S3",
    gpios=_r(0, 21) | _r(26, 48),
    reserved={
        26: "SPI flash/PSRAM SPICS1", 27: "SPI flash SPIHD", 28: "SPI flash SPIWP",
        29: "SPI flash SPICS0", 30: "SPI flash SPICLK", 31: "SPI flash SPIQ",
        32: "SPI flash SPID",
        19: "USB D- (native USB: REPL and provisioning)",
        20: "USB D+ (native USB: REPL and provisioning)",
    },
    psram={"octal": {33: "octal PSRAM SPIIO4", 34: "octal PSRAM SPIIO5",
                     35: "octal PSRAM SPIIO6", 36: "octal PSRAM SPIIO7",
                     37: "octal PSRAM SPIDQS"}},
    input_only=frozenset(),
    strapping={
        0: "strapping pin (boot mode: low at reset enters the serial bootloader)",
        3: "strapping pin (JTAG signal source)",
        45: "strapping pin (VDD_SPI voltage)",
        46: "strapping pin (boot mode and ROM log)",
    },
    wake=_r(0, 21),
    adc1=_r(1, 10),
    adc2=_r(11, 20),
    uart0={43: "UART0 TX (the ROM prints its boot log here at every reset)",
           44: "UART0 RX"},
)

SOCS = {"esp32": ESP32, "esp32s3": ESP32S3}

DIALECTS = ("sim7080", "a7670", "bg95")  # boards/schema.json's modem.dialect enum


def dialect_caps(firmware: Path = FIRMWARE) -> dict[str, frozenset[str]]:
    """What each modem dialect can do, read from its one truth: the class attribute `caps` in
    firmware/modem/<dialect>.py (what the firmware itself asks with `m.has(...)`)."""
    out = {}
    for name in DIALECTS:
        tree = ast.parse((firmware / "modem" / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "caps" for t in node.targets):
                out[name] = frozenset(ast.literal_eval(node.value))
        if name not in out:
            raise RuntimeError(f"firmware/modem/{name}.py sets no caps")
    return out


DIALECT_CAPS = dialect_caps()


def provided_caps(board: dict) -> frozenset[str]:
    """The capabilities a board has: its modem dialect's, with its GNSS source's say on GNSS (a
    separate UART receiver runs beside LTE; no source, no GNSS)."""
    can = set(DIALECT_CAPS[board["modem"]["dialect"]])
    source = board["gnss"]["source"]
    if source == "uart":
        can |= {"gnss", "gnss_with_lte"}
    elif source == "none":
        can -= {"gnss", "gnss_with_lte"}
    return frozenset(can)

OUTPUT_ROLES = {"vibration", "led", "modem_pwrkey", "modem_reset", "modem_power", "modem_dtr",
                "gnss_enable"}
INPUT_ROLES = {"button", "charging", "modem_ri", "pmu_irq", "safe_mode"}


@dataclass
class Finding:
    severity: str  # "error" | "warning"
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass
class Report:
    path: str
    findings: list[Finding] = field(default_factory=list)
    board: dict | None = None

    def error(self, msg: str) -> None:
        self.findings.append(Finding("error", msg))

    def warn(self, msg: str) -> None:
        self.findings.append(Finding("warning", msg))

    @property
    def errors(self) -> list[str]:
        return [f.message for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[str]:
        return [f.message for f in self.findings if f.severity == "warning"]

    @property
    def verdict(self) -> str:
        return "error" if self.errors else ("warning" if self.warnings else "ok")


def _schema() -> dict:
    return json.loads(SCHEMA.read_text())


def uses(board: dict) -> list[tuple[str, int, str]]:
    """Every (role, gpio, direction) the board's pins map claims; direction in in/out/adc/io."""
    out: list[tuple[str, int, str]] = []
    for role, cfg in board.get("pins", {}).items():
        if role.endswith("_uart"):
            out.append((f"{role}.tx", cfg["tx"], "out"))
            out.append((f"{role}.rx", cfg["rx"], "in"))
        elif role == "pmu_i2c":
            out.append((f"{role}.sda", cfg["sda"], "io"))
            out.append((f"{role}.scl", cfg["scl"], "io"))
        elif role == "battery_adc":
            out.append((role, cfg["gpio"], "adc"))
        else:
            out.append((role, cfg["gpio"], "out" if role in OUTPUT_ROLES else "in"))
    return out


def check_board(board: dict, path: str = "<board>") -> Report:
    rep = Report(path, board=board)
    validator = jsonschema.Draft202012Validator(_schema())
    schema_errors = sorted(validator.iter_errors(board), key=lambda e: list(e.absolute_path))
    for e in schema_errors:
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        rep.error(f"schema: {where}: {e.message}")
    if schema_errors:
        return rep
    _check_pins(board, SOCS[board["soc"]], rep)
    _check_roles(board, SOCS[board["soc"]], rep)
    _check_capabilities(board, rep)
    _check_power(board, rep)
    return rep


def _check_pins(board: dict, soc: SocRules, rep: Report) -> None:
    psram_pins = soc.psram.get(board.get("psram", "none"), {})
    wired = {w["gpio"]: w["function"] for w in board.get("wired", [])}
    seen: dict[int, str] = {}
    for role, gpio, direction in uses(board):
        pin = f"GPIO{gpio} ({role})"
        if gpio not in soc.gpios:
            rep.error(f"{pin}: GPIO{gpio} does not exist on the {soc.name}")
            continue
        if gpio in soc.reserved:
            rep.error(f"{pin}: the {soc.name} uses GPIO{gpio} as {soc.reserved[gpio]}")
        if gpio in psram_pins:
            rep.error(f"{pin}: this module's {board['psram']} PSRAM uses GPIO{gpio} as "
                      f"{psram_pins[gpio]}")
        elif board.get("psram") is None and any(gpio in pins for pins in soc.psram.values()):
            kinds = [k for k, pins in soc.psram.items() if gpio in pins]
            rep.warn(f"{pin}: on modules with {kinds[0]} PSRAM GPIO{gpio} is "
                     f"{soc.psram[kinds[0]][gpio]}; say \"psram\" in the board file")
        if gpio in soc.input_only and direction in ("out", "io"):
            rep.error(f"{pin}: GPIO{gpio} is input-only on the {soc.name} (no output driver)")
        if gpio in soc.strapping:
            rep.warn(f"{pin}: GPIO{gpio} is a {soc.strapping[gpio]}")
        if gpio in soc.uart0:
            rep.warn(f"{pin}: GPIO{gpio} is {soc.uart0[gpio]}")
        if gpio in wired:
            rep.error(f"{pin}: the board already wires GPIO{gpio} to {wired[gpio]}")
        if gpio in seen:
            rep.error(f"{pin}: GPIO{gpio} is also {seen[gpio]}")
        else:
            seen[gpio] = role


def _check_roles(board: dict, soc: SocRules, rep: Report) -> None:
    pins = board["pins"]
    for role in INPUT_ROLES & pins.keys():
        cfg = pins[role]
        gpio, pull = cfg["gpio"], cfg.get("pull", "none")
        pin = f"GPIO{gpio} ({role})"
        if gpio in soc.input_only and pull in ("up", "down"):
            rep.error(f"{pin}: GPIO{gpio} has no internal pull resistors on the {soc.name}; "
                      f"fit an external one and say \"pull\": \"external\"")
        if cfg.get("wake") and gpio not in soc.wake:
            rep.error(f"{pin}: must wake the chip but GPIO{gpio} is not an RTC GPIO on the "
                      f"{soc.name} (wake-capable: {_ranges(soc.wake)})")
    button = pins["button"]
    pull, active = button.get("pull", "none"), button.get("active", "low")
    pin = f"GPIO{button['gpio']} (button)"
    if pull == "none":
        rep.error(f"{pin}: no pull resistor: a released button leaves the pin floating")
    elif (active == "low" and pull == "down") or (active == "high" and pull == "up"):
        rep.error(f"{pin}: active {active} with a pull-{pull}: reads pressed when released")
    if pins.get("safe_mode", {}).get("gpio") == button["gpio"]:
        rep.error(f"{pin}: also the safe_mode pin: a child holding SOS at power-on would boot "
                  "to safe mode (no app, no SOS); the firmware drops safe_mode")
    if not button.get("wake"):
        rep.warn(f"{pin}: not marked \"wake\": a press cannot wake the device from deep sleep")
    if "battery_adc" in pins:
        gpio = pins["battery_adc"]["gpio"]
        pin = f"GPIO{gpio} (battery_adc)"
        if gpio in soc.adc2:
            rep.warn(f"{pin}: GPIO{gpio} is on ADC2, unusable while Wi-Fi/BT runs; prefer "
                     f"ADC1 ({_ranges(soc.adc1)})")
        elif gpio not in soc.adc1:
            rep.error(f"{pin}: GPIO{gpio} has no ADC on the {soc.name} (ADC1: "
                      f"{_ranges(soc.adc1)})")
    elif board.get("power", {}).get("battery") != "pmu":
        rep.warn("no battery_adc and no PMU gauge: the battery level is never reported")
    if not {"modem_pwrkey", "modem_reset", "modem_power"} & pins.keys():
        rep.warn("modem: no modem_pwrkey, modem_reset or modem_power pin: a hung modem cannot "
                 "be power-cycled, only waited for")
    for role in ("modem_uart", "gnss_uart"):
        if role in pins and pins[role]["id"] == 0:
            rep.warn(f"{role}: UART0 carries the REPL/boot log on the {soc.name}; use UART1 or 2")
    if "gnss_uart" in pins and pins["gnss_uart"]["id"] == pins["modem_uart"]["id"]:
        rep.error(f"gnss_uart: UART{pins['gnss_uart']['id']} is also the modem_uart")


def _check_capabilities(board: dict, rep: Report) -> None:
    # The board file's "capabilities" is a copy for readers; the firmware asks its modem dialect.
    dialect = board["modem"]["dialect"]
    caps = set(board["capabilities"])
    source = board["gnss"]["source"]
    can = provided_caps(board)
    if source == "uart" and "gnss_uart" not in board["pins"]:
        rep.error("gnss: source is \"uart\" but pins has no gnss_uart")
    elif source == "modem" and "gnss" not in DIALECT_CAPS[dialect]:
        rep.error(f"gnss: source is \"modem\" but the {dialect} dialect has no GNSS")
    for cap in sorted(caps - can):
        rep.error(f"capabilities: \"{cap}\" is claimed but neither the {dialect} dialect nor "
                  f"the GNSS source \"{source}\" provides it")
    for cap in sorted(can - caps):
        rep.warn(f"capabilities: the {dialect} dialect with GNSS source \"{source}\" provides "
                 f"\"{cap}\" but the board file does not list it")


def _check_power(board: dict, rep: Report) -> None:
    """PMU rails (firmware periph/pmu.py switches them by use): a PMU to switch them, and a supply
    for the modem that the firmware turns on."""
    power = board.get("power", {})
    rails = power.get("rails")
    if rails is None:
        return
    uses = {r["use"] for r in rails.values()}
    if "pmu" not in power or "pmu_i2c" not in board["pins"]:
        rep.error("power: rails are declared but there is no \"pmu\" with pins.pmu_i2c to "
                  "switch them")
    if "modem" not in uses and "modem_power" not in board["pins"]:
        rep.error("power: no rail with use \"modem\" and no modem_power pin: the firmware never "
                  "switches the modem's supply on (it stays silent)")
    for name, r in rails.items():
        if r["use"] != "soc" and "mv" not in r:
            rep.warn(f"power: rail {name} ({r['rail']}) has no \"mv\": it comes up at the "
                     "PMU's power-on voltage")


def _ranges(pins: frozenset[int]) -> str:
    out, run = [], []
    for p in sorted(pins):
        if run and p == run[-1] + 1:
            run.append(p)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 2 else ",".join(map(str, run)))
        run = [p]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 2 else ",".join(map(str, run)))
    return ",".join(out)


def check_file(path: Path) -> Report:
    try:
        board = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        rep = Report(str(path))
        rep.error(f"cannot read: {e}")
        return rep
    return check_board(board, str(path))


def board_files() -> list[Path]:
    """The real and virtual boards (not the fixtures)."""
    return sorted(p for p in BOARDS.glob("*.json") if p.name != "schema.json")


@click.group()
def boards() -> None:
    """Board files: pins, modem dialect, GNSS source, capabilities."""


@boards.command("check")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Warnings fail too.")
def check_cmd(files: tuple[Path, ...], strict: bool) -> None:
    """Validate board FILES (default: every boards/*.json) against the schema and pin rules."""
    failed = False
    for path in files or board_files():
        rep = check_file(path)
        shown = os.path.relpath(path) if Path(path).is_absolute() else str(path)
        click.echo(f"{shown}: {rep.verdict.upper()}"
                   + (f" ({len(rep.errors)} errors, {len(rep.warnings)} warnings)"
                      if rep.findings else ""))
        for f in rep.findings:
            click.echo(f"  {f}")
        if rep.errors or (strict and rep.warnings):
            failed = True
    if failed:
        raise SystemExit(1)


@boards.command("power")
@click.argument("board", required=False)
@click.option("--capacity", default=1500.0, show_default=True, help="Cell capacity, mAh.")
@click.option("--checkins", default=1.0, show_default=True, help="Check-ins per day.")
@click.option("--awake-s", type=float, help="Measured ESP32 awake seconds per check-in.")
@click.option("--modem-s", type=float, help="Measured modem connected seconds per check-in.")
def power_cmd(board: str | None, capacity: float, checkins: float, awake_s: float | None,
              modem_s: float | None) -> None:
    """Days of standby on a cell for BOARD (default: every board with a power profile)."""
    from urelief.power import MEASURED, PROFILES, Budget, measured, measured_table

    saved = {p.stem for p in MEASURED.glob("*.json")} if MEASURED.is_dir() else set()
    names = [board] if board else sorted(set(PROFILES) | saved)
    for name in names:
        if name not in PROFILES:
            rep = measured(name)
            if rep is None:
                raise click.BadParameter(f"no power profile or saved soak for {name!r} "
                                         f"(have: {sorted(set(PROFILES) | saved)})")
            click.echo(f"{name}: no estimated budget\n{measured_table(rep)}\n")
            continue
        rep = measured(name) if awake_s is None and modem_s is None else None
        aw = awake_s
        if rep is not None:  # the soak's measured awake time per check-in, not an estimate
            aw = rep["awake_s_per_day"] / max(rep["checkins"]["stored"] / rep["days"], 1.0)
        b = Budget(PROFILES[name], capacity_mah=capacity, checkins_per_day=checkins)
        click.echo(b.with_duty(aw, modem_s).table())
        click.echo(measured_table(rep) if rep is not None else
                   f"  (estimated: no saved soak; urelief sim soak --board {name} --save)")
        click.echo("")
