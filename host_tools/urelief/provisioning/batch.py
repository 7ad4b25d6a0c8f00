"""A class at a time: the roster imported into the registry (every row or none), then one board
per pupil in the roster's order. The operator plugs boards in one after another (or several on
a hub: PORT may be a glob); each board is identified by its unique id, so a finished board still
plugged in is never taken for the next pupil. Pupils already done are skipped; a pupil whose
board failed is left for the next run.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from urelief.provisioning.board import BoardError, BoardInfo, UsbBoard
from urelief.provisioning.flow import Provisioner, ProvisionError, Pupil, Result
from urelief.provisioning.log import DONE
from urelief.registry.errors import Invalid, RegistryError

REPROBE_S = 5.0  # a port that did not answer is asked again after this


class RosterError(RuntimeError):
    def __init__(self, message: str, errors: list[dict]):
        super().__init__(message)
        self.errors = errors


def load_roster(registry, actor, school_code: str, csv_text: str,
                country_code: str = "") -> list[Pupil]:
    """Import the roster (all rows or none; re-importing the same file changes nothing) and
    return its pupils in file order."""
    try:
        school = registry.school_by_code(actor, school_code)
        registry.import_roster(actor, school["id"], csv_text, country_code=country_code)
    except Invalid as e:
        raise RosterError(str(e), e.errors) from None
    except RegistryError as e:
        raise RosterError(str(e), []) from None
    from urelief.registry import roster

    rows, _ = roster.parse(csv_text, country_code=country_code)
    by_ref: dict[str, dict] = {}
    offset = 0
    while True:
        page = registry.list_subscribers(actor, school_id=school["id"], offset=offset, limit=500)
        by_ref.update({s["pupil_ref"]: s for s in page["items"]})
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            break
    return [Pupil(s["id"], s["pupil_ref"], s["full_name"], s["class_name"] or "", school["name"],
                  school["code"])
            for s in (by_ref[r["subscriber"]["pupil_ref"]] for r in rows)]


class Ports:
    """Boards appearing on a port path or glob. A plug-in is told apart by the device node
    (a re-plugged board gets a new one), so a board is probed once per plug-in."""

    def __init__(self, pattern: str, poll_s: float = 0.5):
        self.pattern, self.poll_s = pattern, poll_s
        self._probed: dict[tuple, str | None] = {}  # plug-in -> uid (None: did not answer)
        self._silent_at: dict[tuple, float] = {}

    def paths(self) -> list[str]:
        if glob.has_magic(self.pattern):
            return sorted(glob.glob(self.pattern))
        return [self.pattern] if os.path.exists(self.pattern) else []

    @staticmethod
    def _plug(path: str) -> tuple | None:
        # A plug-in makes a new device node (and udev a new /dev/serial/by-id link). Numbers
        # are reused at once (the next board often gets the same ttyACM0 / pts number and
        # inode), so the nodes' creation (change) times tell two plug-ins apart.
        try:
            st, link = os.stat(path), os.lstat(path)
        except OSError:
            return None
        return (os.path.realpath(path), st.st_rdev, st.st_ino, st.st_ctime_ns, link.st_ino,
                link.st_ctime_ns)

    def next_board(self, skip_uids: set[str], wait_s: float | None,
                   skip_plugs: set[tuple] = frozenset()) -> tuple[UsbBoard, BoardInfo, tuple]:
        """The first board that answers and is not in skip_uids; waits up to wait_s (None:
        for ever). Raises TimeoutError."""
        deadline = None if wait_s is None else time.monotonic() + wait_s
        while True:
            for path in self.paths():
                plug = self._plug(path)
                if plug is None or plug in skip_plugs:
                    continue
                if plug in self._probed and (self._probed[plug] in skip_uids or (
                        self._probed[plug] is None
                        and time.monotonic() - self._silent_at[plug] < REPROBE_S)):
                    continue
                board = UsbBoard(path)
                try:
                    info = board.probe()
                except BoardError:
                    self._probed[plug] = None  # not MicroPython, or still booting: later
                    self._silent_at[plug] = time.monotonic()
                    continue
                self._probed[plug] = info.uid
                if info.uid not in skip_uids:
                    return board, info, plug
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no new board on {self.pattern} within {wait_s:.0f} s")
            time.sleep(self.poll_s)


@dataclass
class BatchResult:
    total: int
    done_before: int = 0
    results: list[Result] = field(default_factory=list)
    waiting_for: int = 0  # pupils left when no board came

    @property
    def ok(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.ok]

    @property
    def complete(self) -> bool:
        return self.done_before + self.ok == self.total


def run_batch(prov: Provisioner, pupils: list[Pupil], ports: Ports, wait_s: float | None,
              echo: Callable[[str], None]) -> BatchResult:
    n = len(pupils)
    out = BatchResult(n)
    used_uids = prov.log.done_uids()  # boards finished for some pupil: never taken again
    failed_plugs: set[tuple] = set()  # a failed board is retried only once re-plugged
    for i, pupil in enumerate(pupils, 1):
        who = f"{i}/{n} {pupil.full_name}" + (f" ({pupil.class_name})" if pupil.class_name else "")
        row = prov.log.get(pupil.subscriber_id)
        if row and row["status"] == DONE:
            out.done_before += 1
            echo(f"{who} ... already provisioned (device 0x{row['device_id']:08x}, check "
                 f"{row['check_code']})")
            continue
        try:  # before a board is asked for: an ineligible pupil takes none
            prov.check_pupil(pupil)
        except ProvisionError as e:
            out.results.append(Result(pupil, error=str(e)))
            echo(f"{who} ... REFUSED: {e}")
            continue
        echo(f"{who}: plug in a board")
        try:
            board, info, plug = ports.next_board(used_uids, wait_s, failed_plugs)
        except TimeoutError as e:
            out.waiting_for = n - i + 1
            echo(f"{who} ... stopped: {e}")
            break
        res = prov.provision(board, pupil, info)
        out.results.append(res)
        if res.ok:
            used_uids.add(info.uid)
            echo(f"{who} ... ok: device 0x{res.device_id:08x}, check {res.check_code} "
                 f"({res.seconds:.1f} s) - unplug it")
        else:
            failed_plugs.add(plug)
            echo(f"{who} ... FAILED ({res.seconds:.1f} s): {res.error}")
    return out
