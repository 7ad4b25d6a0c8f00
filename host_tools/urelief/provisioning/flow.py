"""Provisioning one board for one pupil, step by step, each step recorded in the log:

  [flash MicroPython with esptool] -> identify (mpremote: implementation, unique id, free flash,
  an existing /device.json) -> choose the identity (new, resumed, or --replace: same id, new key)
  -> copy the firmware tree + /board.json + /ctr, /device.json last -> verify (the board hashes
  every file; the set must equal the tree, byte for byte) -> register in the police registry
  (the key sealed there) -> reset: the firmware must boot provisioned -> self-test
  (firmware/selftest.py) judged here -> label.

Nothing counts as provisioned until verified and self-tested. A step that fails leaves the pupil
not provisioned; a device registered before the failure is marked retired in the registry, and
the next run on that board re-keys and re-registers it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from urelief.paths import BOARDS, BUILD_FIRMWARE
from urelief.provisioning import fit, identity, romfs
from urelief.provisioning import label as labels
from urelief.provisioning.board import BoardError, BoardInfo, UsbBoard
from urelief.provisioning.log import DONE, ProvisionLog
from urelief.registry.consent import LOCATION
from urelief.registry.errors import NotFound, RegistryError
from urelief.sim import events

BOOT_LINE = events.line("boot")
BOOT_BAD = ("cannot_send", "config_error", "safe_mode")  # console events a fresh board must not say
MAX_KEY_ID = 15  # a 4-bit field in the packet header
FS_HEADROOM_BLOCKS = 8  # littlefs metadata and the files the firmware writes later
BATTERY_MV = (3000, 4400)  # a plausible Li-ion cell, resting or charging


class ProvisionError(RuntimeError):
    """A refusal or failure with a message for the operator."""

    def __init__(self, step: str, message: str):
        super().__init__(f"{step}: {message}")
        self.step = step


class AlreadyDone(ProvisionError):
    """The pupil's device is this board, provisioned and verified: nothing to do."""


@dataclass
class Pupil:
    subscriber_id: int
    pupil_ref: str
    full_name: str
    class_name: str
    school: str  # name
    school_code: str = ""

    @classmethod
    def from_card(cls, card: dict) -> Pupil:
        school = card.get("school") or {}
        return cls(card["id"], card["pupil_ref"], card["full_name"], card.get("class_name") or "",
                   school.get("name", ""), school.get("code", ""))


@dataclass
class Options:
    board: str  # board name in boards/ (written to the device as /board.json)
    server: tuple[str, int] | None = None
    sms_number: str | None = None
    replace: bool = False
    labels_dir: Path = Path("labels")
    firmware: Path = BUILD_FIRMWARE
    flash_image: Path | None = None
    selftest_timeout_s: float = 60
    cancel: dict | None = None  # {"presses", "duress_presses"}: the child's secret cancel
    centre: str | None = None  # the police centre's voice line (E.164), for a silent call
    deploy: str = "auto"  # auto | romfs | files (provisioning.fit decides what "auto" means)

    @property
    def board_file(self) -> Path:
        p = Path(self.board)
        return p if p.suffix == ".json" else BOARDS / f"{self.board}.json"


@dataclass
class Result:
    pupil: Pupil
    ok: bool = False
    status: str = "failed"
    device_id: int | None = None
    key_id: int | None = None
    board_uid: str | None = None
    error: str | None = None
    failures: list[str] = field(default_factory=list)  # self-test findings
    check_code: str | None = None
    labels: tuple[Path, Path] | None = None
    seconds: float = 0.0
    skipped: bool = False  # already done: nothing was written
    started: bool = False  # the log holds this attempt (a failure from here marks it failed)


def firmware_version(firmware: Path) -> str:
    """A build's identity: "fw-" + the first 10 hex of a hash over its files."""
    h = hashlib.sha256()
    for p in sorted(Path(firmware).rglob("*")):
        if p.is_file():
            h.update(p.relative_to(firmware).as_posix().encode() + b"\0" + p.read_bytes())
    return "fw-" + h.hexdigest()[:10]


def manifest(tree: Path) -> dict[str, tuple[str, int]]:
    return {p.relative_to(tree).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                             p.stat().st_size)
            for p in sorted(tree.rglob("*")) if p.is_file()}


def boot_problem(console: str) -> str | None:
    """What the firmware's first words after reset say is wrong, or None. A traceback is
    reported by its exception line (the last unindented line after it)."""
    lines = [ln.rstrip() for ln in console.splitlines()]
    for i, ln in enumerate(lines):
        if "Traceback" in ln:
            tail = [t for t in lines[i + 1:] if t and not t.startswith(" ")]
            return "crashed at boot: " + (tail[0].strip() if tail else ln.strip())
        ev = events.parse(ln)
        if ev is not None and ev.name in BOOT_BAD:
            return ln.strip()[len(events.PREFIX):]
    return None


def judge(report: dict, board: dict, device_id: int, key_id: int) -> list[str]:
    """The host's verdict on a self-test report: [] = pass, else what failed, in words."""
    out: list[str] = []

    def part(name: str) -> dict:
        v = report.get(name)
        if not isinstance(v, dict):
            out.append(f"{name}: not reported")
            return {}
        if v.get("error"):
            out.append(f"{name}: {v['error']}")
        return v

    cfg = part("config")
    if cfg and not cfg.get("error"):
        if cfg.get("missing"):
            out.append(f"config: device.json lacks {', '.join(cfg['missing'])}")
        for line in cfg.get("errors") or ():
            out.append(f"config: {str(line)[len(events.PREFIX):]}")
        if cfg.get("device_id") != device_id or cfg.get("key_id") != key_id:
            out.append(f"config: the board says device {cfg.get('device_id')} key "
                       f"{cfg.get('key_id')}, expected {device_id} key {key_id}")
        if cfg.get("board") != board.get("name"):
            out.append(f"config: board.json is {cfg.get('board')!r}, expected {board.get('name')!r}")
    ctr = part("counter")
    if ctr and not ctr.get("error") and not isinstance(ctr.get("next"), int):
        out.append("counter: unreadable")
    modem = part("modem")
    if modem and not modem.get("error") and not modem.get("answered"):
        out.append("modem: no answer to AT (not fitted, not powered, or the UART pins are wrong)")
    gnss = part("gnss")
    if gnss and not gnss.get("error"):
        if gnss.get("source") == "uart" and not gnss.get("nmea"):
            out.append(f"gnss: no NMEA on the receiver's UART ({gnss.get('bytes', 0)} bytes)")
        if gnss.get("source") == "modem" and not gnss.get("present"):
            out.append("gnss: the modem's GNSS engine did not answer")
    bat = part("battery")
    if bat and not bat.get("error"):
        mv = bat.get("mv")
        if not isinstance(mv, int) or not BATTERY_MV[0] <= mv <= BATTERY_MV[1]:
            out.append(f"battery: {mv} mV is no charged cell (expected "
                       f"{BATTERY_MV[0]}-{BATTERY_MV[1]} mV)")
    vib = part("vibration")
    if vib and not vib.get("error") and not (vib.get("on") and vib.get("off")):
        out.append("vibration: the motor pin does not follow (shorted or wrong pin)")
    return out


class Provisioner:
    """registry: urelief.registry.service.Registry (with the server key); log: ProvisionLog."""

    def __init__(self, registry, log: ProvisionLog, opts: Options,
                 echo: Callable[[str], None] = lambda s: None, actor=None,
                 on_step: Callable[[str], None] | None = None):
        from urelief.registry.service import cli_actor

        self.registry, self.log, self.opts, self.echo = registry, log, opts, echo
        self.actor = actor or cli_actor()
        self.on_step = on_step or (lambda step: None)
        if not opts.board_file.is_file():
            raise ProvisionError("options", f"no board file {opts.board_file}")
        from urelief.boards import check_file

        report = check_file(opts.board_file)  # what `urelief boards check` says
        if report.errors:
            raise ProvisionError("options", f"board file {opts.board_file} is invalid: "
                                            + "; ".join(report.errors))
        self.board_json = json.loads(opts.board_file.read_text())
        if not opts.server and not opts.sms_number:
            raise ProvisionError("options", "give --server HOST:PORT and/or --sms NUMBER: the "
                                            "device must know where to send")
        try:  # the device's settings as identity.py checks them
            identity.DeviceConfig(1, bytes(32), server=opts.server, sms_number=opts.sms_number,
                                   cancel=opts.cancel, centre=opts.centre).device_json()
        except (ValueError, KeyError, TypeError) as e:
            raise ProvisionError("options", f"device settings: {e}") from None
        if not Path(opts.firmware).is_dir() or not (Path(opts.firmware) / "main.py").is_file():
            raise ProvisionError("options", f"no firmware at {opts.firmware}: run `make build`")
        if not (Path(opts.firmware) / "selftest.mpy").is_file():
            raise ProvisionError("options", f"{opts.firmware} has no selftest.mpy: run `make build`")
        if opts.deploy not in fit.DEPLOYS:
            raise ProvisionError("options", f"--deploy must be one of {', '.join(fit.DEPLOYS)}")
        try:
            self.build_mpy = fit.mpy_version(Path(opts.firmware))
        except fit.Unfit as e:
            raise ProvisionError("options", str(e)) from None
        self.fw_version = firmware_version(Path(opts.firmware))

    # -- pupils ---------------------------------------------------------------------------
    def pupil(self, subscriber_id: int) -> Pupil:
        try:
            card = self.registry.get_subscriber(self.actor, subscriber_id)
        except RegistryError as e:
            raise ProvisionError("pupil", str(e)) from None
        pupil = Pupil.from_card(card)
        self.check_pupil(pupil)
        return pupil

    def find_pupil(self, name_class: str, school_id: int | None = None) -> Pupil:
        """"Kim Minji/4-2" -> the one pupil of that name in that class."""
        name, _, cls = name_class.rpartition("/")
        if not name:
            name, cls = cls, ""
        name = name.strip()
        page = self.registry.list_subscribers(self.actor, school_id=school_id,
                                              class_name=cls.strip() or None, q=name, limit=50)
        hits = [s for s in page["items"] if s["full_name"].casefold() == name.casefold()]
        if len(hits) != 1:
            where = f" in class {cls.strip()}" if cls.strip() else ""
            raise ProvisionError("pupil", f"{len(hits)} pupils named {name!r}{where}; "
                                          "use --subscriber ID" if hits else
                                          f"no pupil named {name!r}{where} in the registry")
        return self.pupil(hits[0]["id"])

    def check_pupil(self, pupil: Pupil) -> None:
        """The pupil may have a terminal: active, with location consent in force (the registry's
        one consent check, the same for one device and for a class). Raises ProvisionError."""
        try:
            why = self.registry.consent_refusal(self.actor, pupil.subscriber_id, LOCATION,
                                                need_active=True)
        except RegistryError as e:
            raise ProvisionError("pupil", str(e)) from None
        if why:
            raise ProvisionError("pupil", why)

    # -- one device -----------------------------------------------------------------------
    def provision(self, board: UsbBoard, pupil: Pupil, info: BoardInfo | None = None) -> Result:
        t0 = time.monotonic()
        res = Result(pupil)
        try:
            self.check_pupil(pupil)  # again at the board: consent may be withdrawn meanwhile
            self._provision(board, pupil, info, res)
        except AlreadyDone as e:
            res.ok, res.status, res.skipped, res.error = True, DONE, True, None
            row = self.log.get(pupil.subscriber_id) or {}
            res.check_code, res.device_id = row.get("check_code"), row.get("device_id")
            res.key_id, res.board_uid = row.get("key_id"), row.get("board_uid")
            self.echo(str(e).split(": ", 1)[1])
        except (BoardError, ProvisionError, RegistryError) as e:
            res.error, res.status = str(e), "failed"
            if res.started:
                self._abandon(res, pupil, f"{getattr(e, 'step', 'registry')} failed")
            elif self.log.get(pupil.subscriber_id) is None:
                self.log.set(pupil.subscriber_id, **self._pupil_fields(pupil), status="failed",
                             error=res.error)
            self.log.event(pupil.subscriber_id, res.device_id, "failed", error=res.error)
        except KeyboardInterrupt:  # the operator stopped it: leave nothing half-made live
            if res.started:
                res.error = "interrupted"
                self._abandon(res, pupil, "interrupted")
            raise
        res.seconds = time.monotonic() - t0
        return res

    def _abandon(self, res: Result, pupil: Pupil, why: str) -> None:
        """An attempt stopped after it began: its device, if registered, is retired; the pupil
        is left failed (the next run re-keys that device or makes a new one)."""
        if res.device_id is not None and self._registered(res.device_id):
            self._retire(res.device_id, pupil, why)
        self.log.set(pupil.subscriber_id, status="failed", error=res.error)

    @staticmethod
    def _pupil_fields(pupil: Pupil) -> dict:
        return {"pupil_ref": pupil.pupil_ref, "full_name": pupil.full_name,
                "class_name": pupil.class_name, "school": pupil.school}

    def _provision(self, board: UsbBoard, pupil: Pupil, info: BoardInfo | None,
                   res: Result) -> None:
        opts, sid = self.opts, pupil.subscriber_id
        if opts.flash_image:
            self.on_step("flash")
            self.echo(f"flashing {opts.flash_image} with esptool")
            board.flash_micropython(Path(opts.flash_image), self.board_json.get("soc", "esp32"))
            info = board.wait_repl()
        self.on_step("identify")
        info = info or board.probe()
        res.board_uid = info.uid
        if info.impl != "micropython":
            raise ProvisionError("identify", f"{info.impl} {info.version} on the board: "
                                             "MicroPython is needed (--flash-micropython IMAGE)")
        mine = self.log.get(sid)
        device_id, key_id, rekey, other = self._identity(pupil, info)
        res.device_id, res.key_id = device_id, key_id
        before = mine["device_id"] if mine and mine["device_id"] != device_id else None
        # A re-key keeps the device's replay window (its old key stays valid until the new one
        # is used, docs/protocol.md §8): the new counter file starts above what the server saw.
        seen = (self._device(device_id) or {}).get("last_counter", 0) if rekey else 0
        cfg = identity.new_device(server=opts.server, sms_number=opts.sms_number,
                                   device_id=device_id, key_id=key_id, cancel=opts.cancel,
                                   centre=opts.centre, counter_start=seen + 1)
        self.log.set(sid, **self._pupil_fields(pupil), device_id=device_id, key_id=key_id,
                     board_uid=info.uid, board=self.board_json["name"], status="started",
                     error=None, selftest=None, check_code=None, firmware=self.fw_version,
                     label=None)
        res.started = True
        self.log.event(sid, device_id, "identify", uid=info.uid, impl=info.impl,
                       version=info.version, machine=info.machine, free=info.free,
                       had_device=info.device, rekey=rekey)
        with tempfile.TemporaryDirectory(prefix="urelief-prov-") as tmp:  # 0700: holds the key
            tree = identity.deploy_tree(cfg, Path(tmp) / "tree", Path(opts.firmware))
            shutil.copyfile(opts.board_file, tree / "board.json")
            fs, rom = Path(tmp) / "fs", Path(tmp) / "rom"
            image = romfs.split(tree, fs, rom)
            try:
                plan = fit.plan({**(info.caps or {}), "version": info.version}, self.board_json, self.build_mpy, len(image),
                                opts.deploy)
            except fit.Unfit as e:
                raise ProvisionError("identify", str(e)) from None
            self.echo(f"deploying as {plan.why}")
            self.log.event(sid, device_id, "deploy", deploy=plan.deploy, why=plan.why)
            if plan.deploy == "files":
                fs, image = tree, (romfs.empty() if (info.caps or {}).get("romfs") else None)
            on_fs = manifest(fs)
            want = dict(on_fs)
            if plan.deploy == "romfs":
                want.update({f"rom/{k}": v for k, v in manifest(rom).items()})
            self._check_space(info, on_fs)
            self.on_step("copy")
            self.echo(f"copying {len(want)} files ({sum(s for _, s in want.values())} bytes)")
            board.prepare(set(on_fs))
            if image is not None:
                (Path(tmp) / "firmware.romfs").write_bytes(image)
                board.deploy_romfs(Path(tmp) / "firmware.romfs")
            board.copy(fs, last=["device.json"])
        self.on_step("verify")
        self._verify(board, want)
        self.log.set(sid, status="copied")
        self.log.event(sid, device_id, "verified", files=len(want))
        self.on_step("register")
        self.registry.register_device(
            self.actor, device_id, cfg.secret, subscriber_id=sid, key_id=key_id,
            board=self.board_json["name"], firmware_version=self.fw_version, replace=rekey)
        cfg.secret = b""  # from here on the key lives on the board and, sealed, in the registry
        self._retire(before, pupil, f"replaced by 0x{device_id:08x}")
        if other is not None:
            self.log.set(other["subscriber_id"], status="failed",
                         error=f"device 0x{device_id:08x} re-provisioned for {pupil.full_name}")
        self.log.set(sid, status="registered")
        self.on_step("boot")
        text = board.reset_and_listen((BOOT_LINE,))
        boot = [ln for ln in text.splitlines() if events.parse(ln) is not None]
        self.log.event(sid, device_id, "boot", lines=boot[:8])
        if BOOT_LINE not in text:
            raise ProvisionError("boot", "the firmware did not start after reset; console: "
                                         + text[-300:].strip())
        bad = boot_problem(text)
        if bad:
            raise ProvisionError("boot", bad)
        self.on_step("self-test")
        board.stop_app()
        self.echo("self-test (the board buzzes once)")
        try:
            report = board.selftest(opts.selftest_timeout_s)
        except BoardError as e:
            if e.gone:
                raise
            self.echo(f"self-test: {e}; once more")  # it writes nothing: safe to repeat
            self.log.event(sid, device_id, "selftest-retry", error=str(e))
            report = board.selftest(opts.selftest_timeout_s)
        res.failures = judge(report, self.board_json, device_id, key_id)
        self.log.event(sid, device_id, "selftest", report=report, failures=res.failures)
        if res.failures:
            self._retire(device_id, pupil, "self-test failed")
            self.log.set(sid, status="selftest_failed", selftest=report,
                         error="; ".join(res.failures))
            res.status, res.error = "selftest_failed", "self-test: " + "; ".join(res.failures)
            return
        code = labels.check_code(device_id, key_id, info.uid, pupil.pupil_ref)
        lines = labels.label_lines(device_id, pupil.full_name, pupil.class_name, pupil.school,
                                   code)
        res.labels = labels.write_label(opts.labels_dir, lines, device_id)
        res.check_code = code
        self.log.set(sid, status=DONE, selftest=report, check_code=code, error=None,
                     label=str(res.labels[1]))
        self.log.event(sid, device_id, "done", check_code=code)
        res.ok, res.status = True, DONE

    # -- steps ----------------------------------------------------------------------------
    def _device(self, device_id: int) -> dict | None:
        try:
            return self.registry.get_device(self.actor, device_id)
        except NotFound:
            return None

    def _registered(self, device_id: int) -> bool:
        try:
            return self._device(device_id) is not None
        except RegistryError:
            return False

    def _identity(self, pupil: Pupil, info: BoardInfo) -> tuple[int, int, bool, dict | None]:
        """-> (device id, key id, re-key an existing registry entry, the log row of another
        pupil whose device this board was).

        - a blank board: a new id; or, if this pupil's unfinished attempt was on this very
          board (its /device.json already removed), that attempt's id;
        - a board with /device.json: continued without asking if it is this pupil's unfinished
          attempt, or an id nobody registered or logged; re-provisioned (same id, new key, key
          generation + 1) only with --replace if it is registered or finished."""
        sid = pupil.subscriber_id
        mine = self.log.get(sid)
        existing = info.device_id if isinstance(info.device_id, int) else None
        if mine and mine["status"] == DONE and not self.opts.replace:
            if mine["board_uid"] == info.uid and existing == mine["device_id"]:
                raise AlreadyDone("identify", f"{pupil.full_name} already has device "
                                              f"0x{existing:08x} on this board")
            raise ProvisionError("identify", f"{pupil.full_name} already has device "
                                             f"0x{mine['device_id']:08x} (board "
                                             f"{mine['board_uid']}); --replace gives them this "
                                             "board instead")
        if existing is None:
            if mine and mine["board_uid"] == info.uid and mine["status"] != DONE and mine["device_id"]:
                existing = mine["device_id"]  # our own attempt, stopped after the wipe
            else:
                return self._new_id(), 1, False, None
        reg = self._device(existing)
        owner = self.log.by_device(existing)
        ours = (owner is not None and owner["subscriber_id"] == sid and owner["status"] != DONE
                and (reg is None or reg.get("subscriber_id") in (None, sid)))
        if ours or (reg is None and owner is None):
            return existing, self._next_key(reg), reg is not None, None
        if reg is None and owner is not None and owner["status"] != DONE:
            # another pupil's unfinished attempt on this board: that pupil keeps the id
            return self._new_id(), 1, False, None
        if not self.opts.replace:
            who = (f"{owner['full_name']} ({owner['class_name']})" if owner else
                   f"subscriber {reg.get('subscriber_id')}" if reg else "another pupil")
            raise ProvisionError("identify", f"the board already holds device 0x{existing:08x} "
                                             f"for {who}; --replace re-provisions it for "
                                             f"{pupil.full_name} (rotates its key)")
        other = owner if owner is not None and owner["subscriber_id"] != sid else None
        return existing, self._next_key(reg), reg is not None, other

    def _new_id(self) -> int:
        """A random device id the registry does not know yet."""
        while True:
            device_id = identity.new_device_id()
            if self._device(device_id) is None:
                return device_id

    @staticmethod
    def _next_key(reg: dict | None) -> int:
        if reg is None:
            return 1
        return reg["key_id"] % MAX_KEY_ID + 1

    @staticmethod
    def _check_space(info: BoardInfo, want: dict) -> None:
        # Everything on the board now is removed or overwritten: the whole partition counts.
        blk = max(info.block or 4096, 512)
        need = sum(-(-size // blk) * blk for _, size in want.values())
        room = info.total - FS_HEADROOM_BLOCKS * blk
        if need > room:
            raise ProvisionError("identify", f"not enough flash: the firmware needs {need} bytes,"
                                             f" {max(room, 0)} can be had on the board")

    def _verify(self, board: UsbBoard, want: dict) -> None:
        got = board.hashes()
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        differ = sorted(k for k in set(want) & set(got) if got[k] != want[k][0])
        if missing or extra or differ:
            parts = [f"{n} {what}: {', '.join(files[:4])}{' ...' if len(files) > 4 else ''}"
                     for what, files in (("missing", missing), ("unexpected", extra),
                                         ("differ", differ)) for n in [len(files)] if files]
            raise ProvisionError("verify", "the board's files do not match the tree: "
                                           + "; ".join(parts))

    def _retire(self, device_id: int | None, pupil: Pupil, why: str) -> None:
        if device_id is None:
            return
        try:
            if self._device(device_id) is None:
                return
            self.registry.update_device(self.actor, device_id, {"status": "retired"})
        except RegistryError as e:
            self.echo(f"warning: could not retire device 0x{device_id:08x}: {e}")
            return
        self.log.event(pupil.subscriber_id, device_id, "retired", why=why)
