"""The test rig: a provisioned virtual terminal wired to emulated hardware and the real police
server on loopback. Used by `urelief demo`, `urelief sim fleet`, the end-to-end tests and the
bench.

- `PoliceServer`: `urelief server` in a subprocess (SQLite in a work dir), its registry seeded
  in-process (a school, a pupil with a guardian, a dispatcher with an API token);
- `SmsGateway`: the police SMS gateway outside the server (device SMS -> /sms/inbound, the
  server's outbox -> the SMS network);
- `Rig`: one device — the real firmware (build/firmware) on a real MicroPython VM, the board's
  modem emulator on its modem UART (UDP over real loopback sockets), a GNSS receiver, a Li-ion
  cell, the child's button and the vibration motor's edges;
- `haptic_patterns` / `pattern_name`: the motor's edges as the patterns a child feels.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from urelief.paths import BUILD_FIRMWARE
from urelief.provisioning import identity, romfs
from urelief.server.process import ServerProcess
from urelief.sim import events
from urelief.sim.device import PSRAM_HEAP_KB, VirtualDevice
from urelief.sim.models.axp2101 import Axp2101
from urelief.sim.models.battery import BatteryModel, LiIonCell
from urelief.sim.models.button import HumanButton
from urelief.sim.models.gnss_uart import GnssReceiver, Trajectory
from urelief.sim.models.pmu_supply import PmuSupply
from urelief.sim.modem import SmsNetwork, make

SERVER_NAME = "sos.urelief.test"  # what provisioning writes; the emulated network resolves it
GATEWAY_NUMBER = "+82112"  # the police SMS gateway
SEOUL = (37.5665, 126.9780, 38.0)  # Seoul City Hall
COVERAGE = ("data", "sms-only", "none")
FAULTS = ("modem-reboot", "modem-hang", "power-cut")
GAP_MS = 700  # silence that separates two haptic patterns (the firmware leaves 800 ms)


# ------------------------------------------------------------------------------ police side

class PoliceServer:
    """`urelief server` in a subprocess on loopback, with its registry seeded in-process: a
    school, a pupil with a guardian, and a dispatcher whose token drives the incident API."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_url = f"sqlite:///{self.workdir / 'urelief.db'}"
        self.key_hex = secrets.token_hex(32)
        self.gateway_token = secrets.token_urlsafe(24)  # what SmsGateway sends (X-Gateway-Token)
        self.proc: ServerProcess | None = None
        self.http = ""
        self.udp: tuple[str, int] = ("", 0)
        self.token = ""
        self.subscriber_id: int | None = None
        self.runs = 0  # server processes started so far (a restart is a new run)
        self._registry = None

    def seed(self) -> PoliceServer:
        from urelief.registry import migrate
        from urelief.registry.db import Database
        from urelief.registry.keys import ServerKey
        from urelief.registry.models import Role
        from urelief.registry.service import Registry, cli_actor

        migrate.upgrade(self.db_url)
        self._registry = reg = Registry(Database(self.db_url), ServerKey(bytes.fromhex(self.key_hex)))
        admin = cli_actor()
        school = reg.create_school(admin, "D1", "Demo Elementary", "110 Sejong-daero, Seoul")
        sub = reg.create_subscriber(admin, {
            "school_id": school["id"], "pupil_ref": "D-001", "full_name": "Kim Minji",
            "class_name": "4-2", "birth_year": 2016,
            "guardians": [{"name": "Kim Jiwoo", "phone": "+821055500001", "relation": "mother"}]})
        self.subscriber_id = sub["id"]
        for scope in ("registry", "location"):  # the roster's default consent form
            reg.record_consent(admin, sub["id"], {"given_by": "Kim Jiwoo", "scope": scope,
                                                  "given_at": "2026-03-02"})
        _, self.token = reg.create_operator(admin, "dispatcher", Role.ADMIN,
                                            password="demo dispatcher pass")
        return self

    def provision(self, cfg: identity.DeviceConfig, board: str = "sim") -> dict:
        assert self._registry is not None, "seed() first"
        return identity.register(self._registry, cfg, subscriber_id=self.subscriber_id,
                                  board=board)

    def start(self, udp_port: int = 0, http_port: int = 0) -> PoliceServer:
        self.proc = ServerProcess(self.workdir, self.db_url,
                                  {"URELIEF_SERVER_KEY": self.key_hex,
                                   "URELIEF_SMS_GATEWAY": "outbox",  # SmsGateway below
                                   "URELIEF_GATEWAY_TOKEN": self.gateway_token},
                                  args=("--tile-url", "")).start(udp_port, http_port)
        self.runs += 1
        self.http, self.udp = self.proc.http, self.proc.udp
        self.api = httpx.Client(base_url=self.http, timeout=10,
                                headers={"Authorization": f"Bearer {self.token}",
                                         "X-Gateway-Token": self.gateway_token})
        return self

    def log_tail(self, n: int = 3000) -> str:
        return self.proc.log_tail(n) if self.proc else ""

    def incidents(self, state: str = "all") -> list[dict]:
        return self.api.get("/api/incidents", params={"state": state}).raise_for_status().json()["items"]

    def incident(self, iid: int) -> dict:
        return self.api.get(f"/api/incidents/{iid}").raise_for_status().json()

    def act(self, iid: int, action: str, **body) -> dict:
        """A dispatcher's action on an incident (body: e.g. a question's kind, text, timeout_s)."""
        r = self.api.post(f"/api/incidents/{iid}/{action}", json=body or None)
        return r.raise_for_status().json()

    def restart(self, kill: bool = False) -> PoliceServer:
        """An operator's restart (SIGINT), or kill -9 then start: same ports, same database."""
        assert self.proc is not None
        (self.proc.kill if kill else lambda: self.proc.stop(15))()
        port = int(self.http.rsplit(":", 1)[1])
        self.api.close()
        return self.start(self.udp[1], port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(15)
            self.api.close()
        if self._registry is not None:
            self._registry.db.dispose()


class SmsGateway:
    """The police's SMS gateway outside the server, as a deployment wires one: what devices
    send to GATEWAY_NUMBER goes to the server's webhook (POST /sms/inbound); what the server
    sends (its `outbox` gateway, GET /api/sms/outbox) is delivered into the SMS network.
    While a message is with the server the device clock runs in real time (as for UDP).

    A message the network accepted is never lost here: a server that is down or answers 5xx
    is retried (RETRY_S, backing off) until it takes the message or the gateway closes; a
    4xx is the server's verdict on that message and is final. The outbox is read per server
    run (`PoliceServer.runs`): a restarted server numbers its refs from 1 again."""

    RETRY_S = (0.2, 0.5, 1.0, 2.0)  # wall seconds between attempts, the last one repeating

    def __init__(self, net: SmsNetwork, server: PoliceServer, clock):
        self.net, self.server, self.clock = net, server, clock
        self.forwarded: list[dict] = []  # webhook answers
        self.retries = 0  # attempts that found the server unable to take a message
        self._done: set[tuple[int, str]] = set()  # (server run, outbox ref) delivered
        self._lock = threading.Lock()
        self._closed = threading.Event()
        net.on_receive = self._on_receive

    def _on_receive(self, sms) -> None:  # the device's clock thread: never block it
        hold = self.clock.hold_realtime()
        threading.Thread(target=self._forward, args=(sms, hold), daemon=True).start()

    def _forward(self, sms, hold) -> None:
        try:
            body = ({"data_hex": sms.body.hex()} if isinstance(sms.body, bytes)
                    else {"text": sms.body})
            self.forwarded.append(self._retrying(lambda: self._post_inbound(sms.sender, body)))
            self._retrying(self.pump)
        except _Closed:
            pass
        finally:
            self.clock.post(hold.release)

    def _post_inbound(self, sender: str, body: dict) -> dict:
        r = self.server.api.post("/sms/inbound", json={"from": sender, **body})
        if r.status_code >= 500:
            r.raise_for_status()
        return r.json() if r.headers.get("content-type", "").startswith("application/json") \
            else {"status": r.status_code}

    def _retrying(self, call):
        for attempt in itertools.count():
            if self._closed.is_set():
                raise _Closed
            try:
                return call()
            except httpx.HTTPError:  # down, restarting, 5xx: the message stays with us
                self.retries += 1
                self._closed.wait(self.RETRY_S[min(attempt, len(self.RETRY_S) - 1)])

    def pump(self) -> int:
        """Deliver what the server has sent since the last pump. -> messages delivered."""
        with self._lock:
            run = self.server.runs
            items = self.server.api.get("/api/sms/outbox").raise_for_status().json()["items"]
            n = 0
            for it in items:
                key = (run, it["ref"])
                if key in self._done or not self.net.has(it["to"]):
                    continue  # a number on another network is that network's gateway's
                self._done.add(key)
                body = bytes.fromhex(it["data_hex"]) if "data_hex" in it else it.get("text", "")
                n += bool(self.net.deliver(it["to"], body, sender=GATEWAY_NUMBER))
            return n

    def close(self) -> None:
        self._closed.set()


class _Closed(Exception):
    """The gateway closed while a message waited for the server."""


def msisdn_for(device_id: int | str) -> str:
    """The SIM's own number, one per device: +8210 and 8 digits from the device id."""
    return "+8210" + f"{int(hashlib.sha256(str(device_id).encode()).hexdigest(), 16) % 10**8:08d}"


# ------------------------------------------------------------------------------ device side

@dataclass
class Rig:
    """One provisioned virtual terminal wired to emulated hardware and the police server."""

    workdir: Path
    server: PoliceServer
    gnss_ttff_ms: float | None = 1000  # None: no GNSS receiver fitted / no sky
    battery_soc: float = 0.8
    # A PSRAM board's heap (sim.device.PSRAM_HEAP_KB: megabytes on the chip, capped so leaks
    # show). The whole firmware peaks at ~195-215 KB live on this 64-bit VM as .mpy files
    # (bench/heap.py); at 256 KB an S3 board ran out to fragmentation at boot.
    heap_kb: int = PSRAM_HEAP_KB
    cfg: identity.DeviceConfig | None = None
    motor: list[tuple[int, float]] = field(default_factory=list)
    # A real board's file (boards/<name>.json, or a path): its modem dialect and GNSS source;
    # on the T-SIM7080G-S3 the AXP2101 (pmu_fitted) feeds the modem (sim/models/pmu_supply.py).
    board: str | Path = "sim"
    pmu_fitted: bool = True
    modem_gnss_ttff_ms: float | None = None  # the modem's own GNSS cold start; None: its default
    cpu_scale: float = 1.0  # device time per host CPU time (chipspeed.factor: the chip's speed)
    seed: int = 1  # the child's hand (contact bounce): a run is replayed by its seed
    # "files": the firmware as .mpy files on littlefs (a stock image); "romfs": its modules in
    # the ROMFS partition of an image built with ROMFS, littlefs keeping entry points and config
    deploy: str = "files"
    clock: str = "virtual"  # "real": a standing board a person drives (urelief sim device --police)
    where: list[float] = field(default_factory=lambda: list(SEOUL))  # the child (lat°, lon°, alt m)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        if self.cfg is None:
            self.cfg = identity.new_device(server=(SERVER_NAME, 7420), sms_number=GATEWAY_NUMBER)
            self.server.provision(self.cfg, board=Path(self.board).stem)
        tree = identity.deploy_tree(self.cfg, self.workdir / "fw", BUILD_FIRMWARE)
        image = None
        if self.deploy == "romfs":
            image = romfs.split(tree, self.workdir / "fs")
            tree = self.workdir / "fs"
        self.dev = VirtualDevice(board=self.board, flash=self.workdir / "flash.img", firmware=tree,
                                 heap_kb=self.heap_kb, cpu_scale=self.cpu_scale, clock=self.clock,
                                 run_ahead=self.clock == "real" or None,
                                 image="romfs" if image is not None else "stock")
        if image is not None:
            self.dev.spiflash.write_romfs(self.dev.soc, image)
        pins = self.dev.board["pins"]
        self.net = SmsNetwork()
        self.gateway = SmsGateway(self.net, self.server, self.dev.clock)
        self.msisdn = msisdn_for(self.cfg.device_id)
        self.modem = make(self.dev.board["modem"]["dialect"], sms_network=self.net, msisdn=self.msisdn,
                          position=tuple(self.where),
                          resolve={SERVER_NAME: ("127.0.0.1", self.server.udp[1])})
        self.pmu = self.supply = self.battery = None
        if "pmu_i2c" in pins:
            self._wire_pmu(pins)
        elif "modem_uart" in pins:  # a board file without one: no modem fitted
            self.modem.attach(self.dev, uart_id=pins["modem_uart"]["id"],
                              pwrkey_gpio=pins["modem_pwrkey"]["gpio"])
        if "modem_dtr" in pins and hasattr(self.modem, "attach_sleep_lines"):  # A76xx sleep
            self.modem.attach_sleep_lines(self.dev, pins["modem_dtr"]["gpio"],
                                          pins.get("modem_ri", {}).get("gpio"))
        self.gnss = None
        if "gnss_uart" not in pins:
            if self.modem_gnss_ttff_ms is not None:
                self.modem.t.gnss_ttff_ms = self.modem_gnss_ttff_ms
            if self.gnss_ttff_ms is None:
                self.modem.t.gnss_ttff_ms = self.modem.t.gnss_hot_ms = float("inf")  # no sky
        elif self.gnss_ttff_ms is not None:
            en = pins.get("gnss_enable")  # the receiver's supply switch, if the board has one
            self.gnss = GnssReceiver(self.dev, Trajectory(lambda t: tuple(self.where), sats=9, hdop=0.9),
                                     uart_id=pins["gnss_uart"]["id"], baud=pins["gnss_uart"]["baud"],
                                     ttff_ms=self.gnss_ttff_ms,
                                     power_pin=en["gpio"] if en else None,
                                     power_active=0 if en and en.get("active") == "low" else 1
                                     ).attach()
        if "battery_adc" in pins:
            adc = pins["battery_adc"]
            self.battery = BatteryModel(self.dev, adc["gpio"], adc["divider"],
                                        LiIonCell(soc=self.battery_soc), load_ma=30)
            self.battery.start(every_ms=1000)
        self.dev.pin(pins["vibration"]["gpio"]).on_change(lambda lv, t: self.motor.append((lv, t)))
        self.child = HumanButton(self.dev, pins["button"]["gpio"], seed=self.seed)

    def _wire_pmu(self, pins: dict) -> None:
        """The AXP2101 on the PMU bus holds the cell and feeds the modem; unfitted, nothing
        answers at its address and the modem stays unpowered."""
        if self.pmu_fitted:
            self.pmu = Axp2101(cell=LiIonCell(soc=self.battery_soc), load_ma=30)
            self.pmu.attach_to(self.dev, pins["pmu_i2c"].get("id", 0))
        else:
            self.pmu = Axp2101()  # its registers, never reached over I2C
        self.supply = PmuSupply(self.dev, self.pmu, self.modem, pins["modem_uart"]["id"],
                                pins["modem_pwrkey"]["gpio"])

    def start(self) -> Rig:
        self.dev.start()
        return self

    def wait_ready(self, timeout_ms: float = 60_000) -> float:
        """Boot until the data link is up; -> device ms."""
        self.dev.wait_line(events.line("link", state="up"), timeout_ms=timeout_ms)
        return self.dev.clock.now_ms()

    def hold(self, ms: float = 3500, after_ms: float = 100) -> float:
        """The child holds the button; -> device time the hold gesture completes (3 s held)."""
        t = self.dev.clock.now_ms() + after_ms
        self.child.press(ms, after_ms=after_ms)
        hold_ms = self.cfg.gesture["hold_ms"] if self.cfg else 3000
        return t + hold_ms

    def until(self, pred, timeout_ms: float = 30_000, timeout_s: float = 60) -> bool:
        return self.dev.run_until(pred, timeout_ms=timeout_ms, timeout_s=timeout_s)

    def console(self, name: str | None = None, **fields) -> list[events.Event]:
        """The device's console events (urelief.sim.events) of `name` with these fields."""
        return events.events(self.dev.output, name, **fields)

    def patterns(self) -> list[tuple[float, tuple[int, ...]]]:
        """The motor's vibration as (start ms, on-durations) per pattern."""
        return haptic_patterns(self.motor)

    # -- the world around the child, from any thread ---------------------------------------

    def move(self, lat: float, lon: float, alt: float | None = None) -> None:
        """The child is now here (both the GNSS receiver's sky and the modem's own GNSS)."""
        self.where[:] = [lat, lon, self.where[2] if alt is None else alt]
        self.modem.position = tuple(self.where)

    def set_coverage(self, mode: str) -> None:
        """"data" (LTE-M with a data bearer), "sms-only" (registered, datagrams lost), "none"."""
        if mode not in COVERAGE:
            raise ValueError(f"coverage is one of {', '.join(COVERAGE)}")
        def apply() -> None:
            self.modem.faults.data = mode == "data"
            if self.modem.faults.coverage != (mode != "none"):
                self.modem.set_coverage(mode != "none")
        self.dev.clock.post(apply)

    def inject(self, fault: str) -> None:
        """A fault now: "modem-reboot" (the module resets itself), "modem-hang" (UART silent
        until power-cycled), "power-cut" (the whole board loses power 100 ms)."""
        if fault == "modem-reboot":
            self.dev.clock.post(self.modem.reboot)
        elif fault == "modem-hang":
            self.dev.clock.post(lambda: setattr(self.modem.faults, "no_answer", True))
        elif fault == "power-cut":
            self.dev.clock.post(self.modem.power_off)
            self.dev.power_cycle()
        else:
            raise ValueError(f"fault is one of {', '.join(FAULTS)}")

    def save_logs(self, dest: Path) -> Path:
        """The device's console, its modem's AT traffic (device ms, direction, text) and the
        SMS it sent, into dest/ (a failing device's evidence outlives the work dir)."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "console.log").write_text(self.dev.output)
        (dest / "at.log").write_text("".join(f"{t:10.1f} {d} {text!r}\n"
                                             for t, d, text in list(self.modem.log)))
        (dest / "sms.log").write_text("".join(f"{m.sender} -> {m.to}: {m.body!r}\n"
                                              for m in list(self.net.submitted)))
        return dest

    def stop(self) -> None:
        self.gateway.close()
        if self.battery is not None:
            self.battery.stop()
        self.dev.stop()
        self.modem.close()


def haptic_patterns(edges: list[tuple[int, float]]) -> list[tuple[float, tuple[int, ...]]]:
    out: list[tuple[float, list[int]]] = []
    on_t = None
    last_off = None
    for level, t in edges:
        if level and on_t is None:
            if last_off is None or t - last_off >= GAP_MS or not out:
                out.append((t, []))
            on_t = t
        elif not level and on_t is not None:
            out[-1][1].append(round(t - on_t))
            on_t, last_off = None, t
    return [(t, tuple(d)) for t, d in out]


PATTERN_NAMES = {"s": "SENT", "ss": "SEEN", "sss": "DISPATCHED", "ssl": "QUESTION",
                 "ssss": "LOW_BATTERY", "ls": "CANCEL_ACK", "sssl": "CANNOT_SEND",
                 "sl": "SELF_CHECK_OK", "slsl": "SELF_CHECK_NOT_OK"}  # periph/haptics.py PATTERNS


def pattern_name(durations: tuple[int, ...]) -> str:
    """Told apart as a child feels them: the pulse count, and which pulses are long compared
    with the shortest of the pattern. Relative, because while a model waits on the real server
    the device clock runs in real time and a busy host stretches every pulse."""
    if not durations:
        return "?"
    short = min(durations)
    rhythm = "".join("l" if d > 1.8 * short else "s" for d in durations)
    return PATTERN_NAMES.get(rhythm, "?" + ",".join(map(str, durations)))
