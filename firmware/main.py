"""The terminal's entry point: everything lives in app.py (compiled to .mpy)."""
import asyncio

import app

asyncio.run(app.main())
