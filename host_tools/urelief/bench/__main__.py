"""Run every benchmark module in this package (or those named on the command line). A run of
them all writes docs/performance.md and docs/reliability.md from the figures it printed."""

import importlib
import pkgutil
import sys
import time

import urelief.bench as pkg
from urelief.bench import publish
from urelief.paths import ROOT

NOT_BENCHES = {"publish"}


def main(argv: list[str]) -> int:
    every = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                   if not m.name.startswith("_") and m.name not in NOT_BENCHES)
    names = argv or every
    failed = 0
    for name in names:
        mod = importlib.import_module(f"urelief.bench.{name}")
        print(f"== bench {name}", flush=True)
        publish.begin(name)
        t0 = time.perf_counter()
        try:
            mod.main()
        except Exception as e:  # one broken bench must not hide the others' figures
            failed += 1
            publish.FAILED[name] = repr(e)[:200]
            print(f"!! bench {name} failed: {e!r}", flush=True)
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    if set(names) >= set(every):
        for path in publish.write(ROOT / "docs"):
            print(f"wrote {path.relative_to(ROOT)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
