"""The terminal's entry point: safe mode or the app (app.py), supervised (supervise.py)."""
import config
import supervise
from console import event

why = supervise.safe_mode(config.load_board())
if why:
    print(event("safe_mode", "reason=" + why))  # no app, no watchdog: the REPL is the board's
else:
    import app

    supervise.run(app.main)
