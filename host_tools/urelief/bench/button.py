"""Button recogniser cost on the MicroPython VM: time and heap per edge, and what the driver
adds to press -> gesture latency. The unix port runs several times faster than an ESP32 at
160 MHz, so the per-edge figure is a lower bound for the board."""

from urelief.sim import vm

CODE = """
import sys
if '' in sys.path:
    sys.path.remove('')
import gc, time, json
from periph.button import Recogniser, Button
r = Recogniser(hold_ms=3000, presses=3, window_ms=2000)
r.begin(1, 0)
N = 2000
gc.collect(); gc.disable()
a = gc.mem_alloc()
t0 = time.ticks_us()
t = 2000
for i in range(N // 4):                # a 50 ms bump with bounce: 4 edges + 2 ticks
    r.update(0, t); r.update(1, t + 1); r.update(0, t + 2); r.tick(t + 30)
    r.update(1, t + 50); r.tick(t + 80)
    t += 300
us = time.ticks_diff(time.ticks_us(), t0)
b = gc.mem_alloc()
gc.enable()
print(json.dumps({'us_per_call': us / (N * 1.5), 'bytes_per_edge': (b - a) / N,
                  'bumps': r.bumps, 'poll_ms': Button.poll_ms,
                  'debounce_ms': Recogniser.debounce_ms}))
"""


def main() -> None:
    out = vm.run_json(CODE)
    print(f"recogniser: {out['us_per_call']:.2f} us per update/tick call (unix port), "
          f"{out['bytes_per_edge']:.3f} heap bytes per edge, {out['bumps']} bumps rejected")
    print(f"driver: a hold is reported at most {out['poll_ms']} ms after hold_ms is reached; "
          f"an edge is settled {out['debounce_ms']} ms after the last bounce")


if __name__ == "__main__":
    main()
