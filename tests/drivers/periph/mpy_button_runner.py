# Runs on MicroPython: a scenario on stdin (one JSON line of settings, then one "t level" line
# per edge) is fed to periph.button.Recogniser; prints the gestures as one JSON line.
# mode "edges": ticked at its own deadlines between edges (as the driver does);
# mode "poll": the level sampled every 10 ms; mode "lazy": updates at the edges only.
import json
import sys

from periph.button import Recogniser

spec = json.loads(sys.stdin.readline())
r = Recogniser.from_config(spec['cfg'], spec['active'])
for k, v in spec['tune'].items():
    setattr(r, k, v)
level, t0, woke = spec['begin'][:3]
r.begin(level, t0, woke, spec['begin'][3] if len(spec['begin']) > 3 else False)
mode, end = spec['mode'], spec['end']


def run_to(t):
    for _ in range(10000):
        d = r.deadline()
        if d is None or d > t:
            return
        r.tick(d)
    raise RuntimeError('deadline loop')


def edges():
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        t, lv = line.split()
        yield float(t), int(lv)


if mode == 'poll':
    t = t0
    for te, lv in edges():
        while t < te:
            r.update(level, t)
            t += 10
        level = lv
    while t <= end:
        r.update(level, t)
        t += 10
else:
    for t, lv in edges():
        if mode == 'edges':
            run_to(t)
        r.update(lv, t)
    run_to(end)
r.tick(end)
print(json.dumps({'gestures': r.gestures, 'bumps': r.bumps, 'pressed': r.pressed}))
