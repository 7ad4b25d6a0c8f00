"""Run every benchmark module in this package (or those named on the command line)."""

import importlib
import pkgutil
import sys
import time

import urelief.bench as pkg


def main(argv: list[str]) -> int:
    names = argv or sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))
    failed = 0
    for name in names:
        mod = importlib.import_module(f"urelief.bench.{name}")
        print(f"== bench {name}", flush=True)
        t0 = time.perf_counter()
        try:
            mod.main()
        except Exception as e:  # one broken bench must not hide the others' figures
            failed += 1
            print(f"!! bench {name} failed: {e!r}", flush=True)
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
