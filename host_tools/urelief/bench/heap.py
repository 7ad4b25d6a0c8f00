"""Peak live heap of the real firmware through an SOS (boot, link up, hold, ack), deployed as
.mpy files on littlefs (a stock image) and as a ROMFS image (an image built with ROMFS), and
whether a plain ESP32 without PSRAM (96 KB for the firmware) boots and sends from each; then
where the heap goes: each firmware module's import cost, both ways, on the virtual board.
Heap is measured on the 64-bit unix VM and converted to the chip's 32-bit terms by a factor
measured on a real 32-bit MicroPython (word_ratio); the goal is 64 KB on the chip's terms."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from urelief.bench import publish
from urelief.paths import BUILD_FIRMWARE, FIRMWARE
from urelief.provisioning import romfs
from urelief.sim import events, vm
from urelief.sim.device import VirtualDevice, board_heap_kb
from urelief.sim.rig import PoliceServer, Rig
from urelief.sim.vmproc import SHIM_RESERVE_KB

PLAIN_ESP32 = "devkitc-sim7080g-ublox"  # ESP32-WROOM-32E, no PSRAM
GOAL_KB = 64
CHIP_HEAP_KB = vm.CHIP_HEAP_KB


def sos_heap(work: Path, police: PoliceServer, deploy: str, board: str = "sim",
             heap_kb: int = 256) -> tuple[bool, int, str]:
    """-> (SOS acked, peak live heap B, what went wrong)."""
    r = Rig(work / f"{board}-{deploy}-{heap_kb}", police, board=board, deploy=deploy,
            heap_kb=heap_kb).start()
    try:
        r.wait_ready(timeout_ms=90_000)
        r.hold(3500)
        ok = r.until(lambda: events.count(r.dev.output, "ack") > 0, timeout_ms=20_000)
        r.dev.run_for(3000)
        return ok, r.dev.heap_peak["live"], ""
    except Exception as e:  # a board that runs out of heap never brings its link up
        tail = [ln for ln in r.dev.output.splitlines() if "Error" in ln][-1:]
        return False, r.dev.heap_peak["live"], (tail[0] if tail else str(e)[:120])
    finally:
        r.stop()


# The real main.py with a watcher beside the app: every device second, the live heap after a
# collect and the modules imported since the last look (the watcher's own few hundred bytes
# are charged too). Firmware unchanged: the app and its supervisor run as on the board.
PHASE_MAIN = """import gc
import sys
import time
import asyncio
import micropython
import app
import supervise


async def watch():
    seen = set()
    n = 0
    while True:
        gc.collect()
        new = [m for m in sys.modules if m not in seen]
        seen.update(new)
        print('HEAPLIVE', time.ticks_ms(), gc.mem_alloc(), ','.join(new) or '-')
        if n % 10 == 0:
            micropython.qstr_info()  # qstr pool: n_pool=, n_qstr=, n_str_data_bytes=, n_total_bytes=
        n += 1
        await asyncio.sleep_ms(1000)


async def both():
    asyncio.create_task(watch())
    await app.main()

supervise.run(both)
"""
PHASES = ("boot", "idle", "sos", "tracking")


def phase_profile(work: Path, police: PoliceServer, deploy: str, board: str = "sim",
                  heap_kb: int = 512, track_ms: int = 60_000) -> dict[str, tuple[int, list[str]]]:
    """Peak live heap (B, the firmware's share) and the modules first imported in each phase
    of an SOS: boot (to link up), idle (10 s on), sos (hold to ack), tracking (track_ms after)."""
    r = Rig(work / f"phase-{board}-{deploy}", police, board=board, deploy=deploy, heap_kb=heap_kb)
    (r.dev.firmware / "main.py").write_text(PHASE_MAIN)
    marks = []
    r.start()
    try:
        marks.append(r.wait_ready(timeout_ms=90_000))
        r.dev.run_for(10_000)
        marks.append(r.dev.clock.now_ms())
        r.hold(3500)
        if not r.until(lambda: events.count(r.dev.output, "ack") > 0, timeout_ms=20_000):
            raise RuntimeError("no SOS ack: " + r.dev.output[-600:])
        r.dev.run_for(1500)
        marks.append(r.dev.clock.now_ms())
        r.dev.run_for(track_ms)
        marks.append(r.dev.clock.now_ms() + 1)
    finally:
        r.stop()
    reserve = SHIM_RESERVE_KB * 1024
    out = {p: [0, []] for p in PHASES}
    for ln in r.dev.output.splitlines():
        w = ln.split()
        if len(w) != 4 or w[0] != "HEAPLIVE" or not w[2].isdigit():
            continue
        t = int(w[1])
        phase = next((p for p, m in zip(PHASES, marks, strict=False) if t <= m), PHASES[-1])
        out[phase][0] = max(out[phase][0], int(w[2]) - reserve)
        out[phase][1] += [] if w[3] == "-" else w[3].split(",")
    qstr = [ln for ln in r.dev.output.splitlines() if ln.startswith("qstr pool:")]
    phase_profile.qstr = dict(kv.split("=") for kv in qstr[-1].split(": ", 1)[1].split(", ")) \
        if qstr else {}
    return {p: (v[0], v[1]) for p, v in out.items()}


def modules_in_import_order(src: Path = FIRMWARE) -> list[str]:
    """Every firmware module, each after the firmware modules it imports (leaves first), so
    that importing them in this order charges each one only its own cost."""
    names = {p.relative_to(src).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
             for p in src.rglob("*.py") if p.name not in ("main.py", "boot.py")}
    deps: dict[str, set[str]] = {}
    for n in names:
        path = src / (n.replace(".", "/") + ".py")
        if not path.exists():
            path = src / n.replace(".", "/") / "__init__.py"
        found = set()
        for node in _top_level(ast.parse(path.read_text()).body):  # lazy imports are no deps
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
        deps[n] = {d for d in found if d in names and d != n}
        deps[n] |= {n.rsplit(".", 1)[0]} & names if "." in n else set()
    order: list[str] = []

    def visit(n: str, seen: set[str]) -> None:
        if n in order or n in seen:
            return
        seen.add(n)
        for d in sorted(deps[n]):
            visit(d, seen)
        order.append(n)

    for n in sorted(names):
        visit(n, set())
    return order


# The chip's word size. The unix VM is 64-bit (8-byte words, 32-byte GC blocks); an ESP32 is
# 32-bit (4-byte words, 16-byte blocks). The WebAssembly port is a real 32-bit MicroPython: each
# module's import is weighed on both, from the same .mpy files, and the ratio converts the
# 64-bit figures. What that port lacks (asyncio, cryptolib, the board modules) is stubbed the
# same way on both VMs, each stub weighed as a module of its own.
WASM32 = Path(__file__).with_name("wasm32")
STUBS = {
    "asyncio.py": "class Event:\n    pass\n\n\nclass Lock:\n    pass\n\n\n"
                  "class ThreadSafeFlag:\n    pass\n\n\nclass StreamReader:\n    pass\n\n\n"
                  "StreamWriter = StreamReader\n\n\nclass TimeoutError(Exception):\n    pass\n",
    "cryptolib.py": "class aes:\n    pass\n",
    "machine.py": "PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5\n",
    "esp32.py": "",
}
WEIGH_64 = """import gc
import json
out = {{}}
for m in {mods!r}:
    gc.collect()
    a = gc.mem_alloc()
    try:
        __import__(m)
    except Exception as e:
        out[m] = repr(e)
        continue
    gc.collect()
    out[m] = gc.mem_alloc() - a
print(json.dumps(out))
"""


def word_ratio(work: Path) -> tuple[float, dict[str, tuple[int, int]]]:
    """-> (live heap on the 32-bit VM / on the 64-bit VM, summed over the firmware modules that
    import on both; {module: (32-bit B, 64-bit B)}), the modules imported as .mpy files."""
    tree = work / "weigh"
    shutil.copytree(BUILD_FIRMWARE, tree)
    for name, text in STUBS.items():
        (tree / name).write_text(text)
    mods = [n.removesuffix(".py") for n in STUBS] + modules_in_import_order()
    if not (WASM32 / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WASM32,
                       check=True)
    proc = subprocess.run(["node", str(WASM32 / "weigh.mjs"), str(tree), json.dumps(mods)],
                          capture_output=True, text=True, timeout=300, check=True)
    w32 = json.loads(proc.stdout.strip().splitlines()[-1])
    w64 = vm.run_json(WEIGH_64.format(mods=mods), path=(tree,), heap_kb=4096, timeout_s=300)
    both = {m: (w32[m], w64[m]) for m in modules_in_import_order()
            if isinstance(w32.get(m), int) and isinstance(w64.get(m), int)}
    return sum(a for a, _ in both.values()) / sum(b for _, b in both.values()), both


RUNTIME = ("asyncio", "json", "struct", "binascii", "hashlib", "cryptolib", "array", "io", "os")

def _top_level(body: list[ast.stmt]):
    """The statements run at import: the module body and its top-level if/try blocks."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            yield from _top_level(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            yield from _top_level(node.body + node.orelse + node.finalbody
                                  + [s for h in node.handlers for s in h.body])


PROFILE_MAIN = """import gc
gc.collect()
a = gc.mem_alloc()
for m in {runtime!r}:
    __import__(m)
gc.collect()
print('HEAPMOD (MicroPython:asyncio,json,...)', gc.mem_alloc() - a)
for m in {mods!r}:
    gc.collect()
    a = gc.mem_alloc()
    try:
        __import__(m)
        gc.collect()
        print('HEAPMOD', m, gc.mem_alloc() - a)
    except Exception as e:
        print('HEAPMOD', m, 'failed', repr(e))
print('HEAPMOD done')
"""


def module_profile(work: Path, deploy: str) -> dict[str, int]:
    """Live heap each module's import adds (bytes), imported leaves first, on the virtual
    board as a stock image (.mpy files) or one with ROMFS."""
    tree = work / f"profile-{deploy}"
    shutil.copytree(BUILD_FIRMWARE, tree)
    (tree / "main.py").write_text(PROFILE_MAIN.format(mods=modules_in_import_order(), runtime=RUNTIME))
    image = None
    if deploy == "romfs":
        image = romfs.split(tree, work / f"profile-{deploy}-fs")
        tree = work / f"profile-{deploy}-fs"
    dev = VirtualDevice(flash=work / f"profile-{deploy}.img", firmware=tree, heap_kb=512,
                        image="romfs" if image is not None else "stock")
    if image is not None:
        dev.spiflash.write_romfs(dev.soc, image)
    dev.start()
    try:
        dev.wait_output("HEAPMOD done", 120_000)
        out = {}
        for ln in dev.output.splitlines():
            w = ln.split()
            if len(w) == 3 and w[0] == "HEAPMOD" and w[2].isdigit():
                out[w[1]] = int(w[2])
        return out
    finally:
        dev.stop()


def smallest_heap(work: Path, police: PoliceServer, deploy: str, board: str = PLAIN_ESP32,
                  lo: int = 96, hi: int = 320, step: int = 4) -> int | None:
    """The smallest firmware heap (KB of the 64-bit VM, in steps) in which `board` boots and
    sends an SOS that is acked; None if not even `hi` does."""
    if not sos_heap(work, police, deploy, board, hi)[0]:
        return None
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        lo, hi = (lo, mid) if sos_heap(work, police, deploy, board, mid)[0] else (mid, hi)
    return hi


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ratio, weighed = word_ratio(work)
        print(f"32-bit / 64-bit live heap of the firmware's modules as .mpy files: {ratio:.2f} "
              f"({len(weighed)} modules, WebAssembly port vs unix port)")
        publish.figure("live heap on a 32-bit MicroPython / on the 64-bit VM (word-size factor)",
                       f"{ratio:.2f}", versus=f"the firmware's {len(weighed)} modules imported as .mpy "
                       "files on the WebAssembly port (wasm32) and the unix port (x86-64)")
        if abs(ratio - vm.WORD_RATIO) > 0.02:
            print(f"!! urelief.sim.vm.WORD_RATIO is {vm.WORD_RATIO}: set it to {ratio:.2f}")
        firmware = set(modules_in_import_order())
        police = PoliceServer(work / "police").seed().start()
        try:
            peak = {}
            for deploy in ("files", "romfs"):
                phases = phase_profile(work, police, deploy)
                peak[deploy] = max(b for b, _ in phases.values())
                chip = peak[deploy] * ratio
                print(f"heap, SOS scenario, firmware as {deploy}: peak live {peak[deploy] / 1024:.0f} KB "
                      f"on the 64-bit VM, {chip / 1024:.0f} KB on the chip's terms (x {ratio:.2f})")
                for p, (b, mods) in phases.items():
                    print(f"  {p:9} {b / 1024:6.1f} KB  imports {','.join(sorted(set(mods) & firmware)) or '-'}")
                publish.figure(f"peak live heap, SOS scenario, firmware as {deploy}",
                               f"{chip / 1024:.0f} KB on the chip's terms ({peak[deploy] / 1024:.0f} KB "
                               "on the 64-bit VM)", goal=f"<= {GOAL_KB} KB on the chip's terms",
                               met=chip <= GOAL_KB * 1024, versus=f"x {ratio:.2f}, the measured word-size factor")
                publish.figure(f"live heap by phase, as {deploy} (64-bit VM)", ", ".join(
                    f"{p} {b / 1024:.0f} KB" for p, (b, _) in phases.items()))
                q = getattr(phase_profile, "qstr", {})
                if q:
                    print(f"  interned strings: {q['n_qstr']} qstrs, {q['n_str_data_bytes']} B of "
                          f"text, {int(q['n_total_bytes']) / 1024:.0f} KB of qstr pools in all")
                    publish.figure(f"interned strings (qstrs) while tracking, as {deploy} (64-bit VM)",
                                   f"{q['n_qstr']} qstrs, {int(q['n_total_bytes']) / 1024:.0f} KB of pools "
                                   f"({int(q['n_str_data_bytes']) / 1024:.0f} KB of it text)")
            print(f"heap: ROMFS saves {(1 - peak['romfs'] / peak['files']) * 100:.0f} % "
                  f"of the peak live heap")
            publish.figure("ROMFS saves, peak live heap", f"{(1 - peak['romfs'] / peak['files']) * 100:.0f} %")
            plain_kb = board_heap_kb({"psram": "none"})
            for deploy in ("files", "romfs"):
                ok, live, why = sos_heap(work, police, deploy, PLAIN_ESP32, plain_kb)
                said = 'boots and sends an SOS' if ok else 'does not run: ' + why
                print(f"plain ESP32 without PSRAM (its ~{CHIP_HEAP_KB} KB heap: {plain_kb} KB of "
                      f"64-bit VM heap), firmware as {deploy}: {said}")
                publish.figure(f"plain ESP32 without PSRAM (~{CHIP_HEAP_KB} KB heap), as {deploy}",
                               said, goal="boots and sends an SOS", met=ok,
                               versus=f"{plain_kb} KB of 64-bit VM heap (x {vm.WORD_RATIO})")
                least = smallest_heap(work, police, deploy)
                need = f"{least} KB of 64-bit VM heap, {least * ratio:.0f} KB on the chip's terms" if least \
                    else "more than 320 KB"
                fits = least is not None and least * ratio <= CHIP_HEAP_KB
                print(f"plain ESP32, firmware as {deploy}: boots and sends an SOS from {need}; "
                      f"the chip's heap grows to ~{CHIP_HEAP_KB} KB: {'fits' if fits else 'does not fit'}")
                publish.figure(f"plain ESP32 without PSRAM, as {deploy}: smallest heap that boots and "
                               "sends an SOS", need, goal=f"<= ~{CHIP_HEAP_KB} KB on the chip's terms",
                               met=fits)
        finally:
            police.stop()
        prof = {d: module_profile(work, d) for d in ("files", "romfs")}
        rows = sorted(prof["files"], key=lambda m: -prof["files"][m])
        print(f"{'module':22} {'as .mpy':>8} {'ROMFS':>8} {'32-bit':>8}  (live heap its import adds, B)")
        for m in rows:
            print(f"{m:22} {prof['files'][m]:8d} {prof['romfs'].get(m, 0):8d} {weighed.get(m, (0, 0))[0]:8d}")
        total = {d: sum(v.values()) for d, v in prof.items()}
        print(f"{'all modules':22} {total['files']:8d} {total['romfs']:8d}")
        publish.figure("all firmware modules imported, live heap (64-bit VM)",
                       f"{total['files'] / 1024:.0f} KB as .mpy, {total['romfs'] / 1024:.0f} KB from ROMFS")
        table = ["Where the heap goes: the live heap each module's import adds on the virtual "
                 "board (64-bit VM), imported leaves first so each is charged only its own (the "
                 "interned-string pools grow by doubling: the module whose strings open a new "
                 "pool is charged for it), and as .mpy on the 32-bit WebAssembly port; the ten "
                 "largest as .mpy files:", "",
                 "| module | as .mpy files, B | from ROMFS, B | as .mpy, 32-bit, B |",
                 "| --- | --- | --- | --- |"]
        table += [f"| {m} | {prof['files'][m]} | {prof['romfs'].get(m, 0)} | {weighed.get(m, (0, 0))[0]} |"
                  for m in rows[:10]]
        publish.note("\n".join(table))
        publish.note(
            "The chip's terms: each module's import weighed on a real 32-bit MicroPython (the "
            "WebAssembly port, 4-byte words and 16-byte GC blocks as on the ESP32) and on the "
            "64-bit unix VM, from the same .mpy files; the ratio of the sums converts the VM's "
            "figures. It is measured for .mpy files only (that port has no VfsRom) and applied "
            "to ROMFS too. Per phase: boot to link up holds nearly all of it; idle, the SOS "
            "and tracking add little, the running firmware's objects (tasks, buffers, the "
            "outbox, the GNSS epoch) being a small share beside the imported modules. Most of "
            "what an import leaves is interned strings (every name, attribute and string "
            "constant: the qstr figures above, on the 64-bit VM even from ROMFS) "
            "and the functions' code objects. What would close the gap to 64 KB: freeze the "
            "firmware into the MicroPython image (frozen modules keep their strings and code "
            "in flash), fewer and shorter console strings, and fewer methods in the modem "
            "and alarm classes.")


if __name__ == "__main__":
    main()
