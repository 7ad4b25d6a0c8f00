"""USB provisioning on virtual boards with the real mpremote: seconds per device and per step
(identify, copy, verify, register, boot, self-test), for a class of N plugged in one after
another, then a re-run (nothing to do)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from urelief.bench import publish

N = 4


def main() -> None:
    from urelief.build import build
    from urelief.provisioning.batch import Ports, load_roster, run_batch
    from urelief.provisioning.flow import Options, Provisioner
    from urelief.provisioning.log import ProvisionLog
    from urelief.provisioning.virtual import Bench, Police, roster_csv

    with tempfile.TemporaryDirectory(prefix="urelief-bench-prov-") as tmp:
        tmp = Path(tmp)
        fw = tmp / "firmware"
        build(out=fw)
        police = Police(tmp)
        bench = Bench(tmp)
        steps: dict[str, list[float]] = {}
        mark = {"step": None, "t": 0.0}

        def on_step(step: str) -> None:
            now = time.monotonic()
            if mark["step"]:
                steps.setdefault(mark["step"], []).append(now - mark["t"])
            mark.update(step=step, t=now)

        opts = Options(board="sim", server=("sos.urelief.test", 7420), sms_number="+82112",
                       labels_dir=tmp / "labels", firmware=fw)
        prov = Provisioner(police.registry, ProvisionLog(tmp / "prov.db"), opts, on_step=on_step)
        pupils = load_roster(police.registry, police.actor, "D1", roster_csv(N))
        try:
            for i in range(N):
                bench.board(f"tty{i}").plug()
            t0 = time.monotonic()
            out = run_batch(prov, pupils, Ports(str(bench.ports / "tty*")), 30, lambda s: None)
            wall = time.monotonic() - t0
            on_step("end")
            t1 = time.monotonic()
            again = run_batch(prov, pupils, Ports(str(bench.ports / "tty*")), 30, lambda s: None)
            rerun = time.monotonic() - t1
        finally:
            bench.close()
            police.registry.db.dispose()
        per = [r.seconds for r in out.results]
        print(f"provisioned {out.ok}/{N} virtual boards in {wall:.1f} s (with waiting for and "
              f"probing each board): {statistics.mean(per):.1f} s per device from identity to "
              f"label (min {min(per):.1f}, max {max(per):.1f})")
        for step in ("identify", "copy", "verify", "register", "boot", "self-test"):
            if steps.get(step):
                print(f"  {step:<9} {statistics.median(steps[step]):5.2f} s median")
        print(f"re-run with every pupil done: {rerun:.2f} s ({again.done_before}/{N} skipped)")
        publish.figure(f"provisioning, {N} virtual boards on a hub",
                       f"{statistics.mean(per):.1f} s per device, identity to label ({out.ok}/{N} ok)")
        publish.figure("re-run with the class done", f"{rerun:.2f} s, {again.done_before}/{N} skipped")


if __name__ == "__main__":
    main()
