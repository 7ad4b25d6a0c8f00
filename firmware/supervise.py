"""Supervision: the terminal never hangs or stays crashed.

- machine.WDT, fed by one task only while every watched task has checked in (alive(name,
  max_ms)) within its own bound: a task stuck on an await starves the watchdog as surely as a
  loop that blocks the CPU. The stuck task is named in the crash log before the reset.
- An exception that escapes the app or any task: written to the crash log, then machine.reset().
- The crash log on flash is bounded (CRASH_MAX bytes, then rotated to CRASH_OLD: two files).
- Crashes in a row (watchdog resets included) are counted on flash and cleared after STABLE_MS
  of running; SAFE_AFTER in a row, or the flag file SAFE_FILE, or the board's safe-mode pin held
  at boot -> safe mode: the app is skipped and no watchdog runs, so mpremote and provisioning
  always reach the board (provisioning removes the flag file with every file it does not own).
- Ctrl-C on the USB console (mpremote taking the board): the watchdog cannot be stopped once
  started, so it is given MAINTENANCE_MS; after that the board resets into its app by itself."""
import os
import time

import machine
from console import event
from micropython import const

CRASH_FILE = "/crash.log"
CRASH_OLD = "/crash.old"
CRASH_MAX = const(2048)  # bytes per file: two files, 4 KB of flash at most
STREAK_FILE = "/crash.n"  # crashes in a row
SAFE_FILE = "/safe"  # present: safe mode at every boot until removed
SAFE_AFTER = const(3)  # crashes in a row -> safe mode
STABLE_MS = const(600000)  # 10 min running without a crash clears the count
WDT_MS = const(30000)  # a hung terminal is back within 30 s (+ its boot)
FEED_MS = const(5000)
MAINTENANCE_MS = const(1800000)  # at the REPL after Ctrl-C: 30 min, then the app again

_seen: dict = {}  # task name -> [last check-in ticks_ms, max_ms]
_wdt = None


def alive(name, max_ms=120000):
    """A task checks in: it made progress. It must do so again within max_ms."""
    s = _seen.get(name)
    if s is None:
        _seen[name] = [time.ticks_ms(), max_ms]
    else:
        s[0] = time.ticks_ms()


def stale(now=None):
    """The first watched task past its bound, or None."""
    now = time.ticks_ms() if now is None else now
    for name, (t, bound) in _seen.items():
        if time.ticks_diff(now, t) > bound:
            return name
    return None


def log_crash(what, note=""):
    """One line on flash: reset cause, ms since boot, what, the note (an exception's repr)."""
    line = "%d %s %s %s\n" % (machine.reset_cause(), time.ticks_ms(), what, note[:200])
    try:
        try:
            if os.stat(CRASH_FILE)[6] + len(line) > CRASH_MAX:
                os.rename(CRASH_FILE, CRASH_OLD)  # replaces the older file
        except OSError:
            pass  # no log yet
        with open(CRASH_FILE, "a") as f:
            f.write(line)
    except OSError:
        pass  # a full or failing flash must not stop the reset
    print(event("crash", "what=" + what, note[:200] or None))


def streak():
    try:
        with open(STREAK_FILE) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def _set_streak(n):
    try:
        if n:
            with open(STREAK_FILE, "w") as f:
                f.write(str(n))
        else:
            os.remove(STREAK_FILE)
    except OSError:
        pass


def crashed(what, e=None):
    """An exception escaped (or a task hung): log it, count it, reset the board."""
    note = ""
    if e is not None:
        try:
            import io
            import sys
            buf = io.StringIO()
            sys.print_exception(e, buf)
            note = " | ".join(buf.getvalue().split("\n")[-3:-1])  # the innermost frame and error
        except Exception:
            note = repr(e)
    log_crash(what, note)
    _set_streak(streak() + 1)
    machine.reset()


def safe_mode(board=None):
    """-> why this boot is in safe mode ("flag", "crashes", "pin"), or None; counts a watchdog
    reset as a crash first."""
    if machine.reset_cause() == machine.WDT_RESET:
        log_crash("watchdog")  # what hung was logged before, if a task was late
        _set_streak(streak() + 1)
    try:
        os.stat(SAFE_FILE)
        return "flag"
    except OSError:
        pass
    if streak() >= SAFE_AFTER:
        return "crashes"
    p = (board or {}).get("pins", {}).get("safe_mode")
    if p is not None:
        active = 0 if p.get("active", "low") == "low" else 1
        pull = machine.Pin.PULL_UP if active == 0 else machine.Pin.PULL_DOWN
        if machine.Pin(p["gpio"], machine.Pin.IN, pull).value() == active:
            return "pin"
    return None


async def _feeder():
    import asyncio
    global _wdt
    _wdt = machine.WDT(timeout=WDT_MS)
    print(event("supervised", "wdt_ms=%d" % WDT_MS))
    t0 = time.ticks_ms()
    clear = streak() > 0
    while True:
        name = stale()
        if name is not None:
            log_crash("hung", "task=" + name)
            _set_streak(streak() + 1)
            while True:  # no more feeding: the watchdog resets the board
                await asyncio.sleep_ms(FEED_MS)
        _wdt.feed()
        if clear and time.ticks_diff(time.ticks_ms(), t0) >= STABLE_MS:
            clear = False
            _set_streak(0)
        await asyncio.sleep_ms(FEED_MS)


def _on_task_error(loop, context):
    crashed("task", context.get("exception"))


def run(main):
    """Run the app's main() coroutine supervised; never returns unless Ctrl-C stops it."""
    import asyncio

    async def top():
        asyncio.get_event_loop().set_exception_handler(_on_task_error)
        asyncio.create_task(_feeder())
        await main()

    try:
        asyncio.run(top())  # returns only when the app has nothing to run (no usable board)
    except KeyboardInterrupt:
        pass
    except Exception as e:
        crashed("app", e)
    if _wdt is not None:
        machine.WDT(timeout=MAINTENANCE_MS).feed()
    print(event("maintenance", "wdt_ms=%d" % MAINTENANCE_MS))
