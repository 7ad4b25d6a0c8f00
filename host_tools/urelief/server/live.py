"""Live updates for dashboards: a hub that fans events out to Server-Sent-Events subscribers.

Publish from the event loop (`hub.publish(...)`) or from a thread (`hub.publish_threadsafe`).
A slow client's queue is bounded; when it overflows the client is told to reload (`resync`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

from urelief.server import metrics

_QUEUE_MAX = 1000
ALIVE_EVERY_S = 2.0  # a logged-out or revoked session's stream ends within this (plus a check)


class LiveHub:
    def __init__(self) -> None:
        self._subs: set[asyncio.Queue] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    def publish(self, kind: str, data: dict) -> None:
        msg = (kind, data)
        for q in list(self._subs):
            try:
                q.put_nowait(msg)
            except asyncio.QueueFull:
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(("resync", {}))

    def publish_threadsafe(self, kind: str, data: dict) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.publish, kind, data)

    async def stream(self, allow=lambda kind, data: True, keepalive_s: float = 15.0,
                     alive: Callable[[], bool] | None = None,
                     alive_every_s: float = ALIVE_EVERY_S) -> AsyncIterator[str]:
        """SSE text frames for one subscriber; `allow` filters by the viewer's scope. `alive`
        (blocking: run in a thread) says whether the viewer's session still holds; asked every
        `alive_every_s`, and when it says no the stream sends `session_ended` and ends."""
        q: asyncio.Queue = asyncio.Queue(_QUEUE_MAX)
        self._subs.add(q)
        metrics.LIVE_CLIENTS.inc()
        clock = asyncio.get_running_loop().time
        beat = checked = clock()
        try:
            yield "retry: 2000\n\nevent: hello\ndata: {}\n\n"
            while True:
                wait = keepalive_s if alive is None else min(keepalive_s, alive_every_s)
                try:
                    kind, data = await asyncio.wait_for(q.get(), wait)
                except TimeoutError:
                    kind = None
                if alive is not None and clock() - checked >= alive_every_s:
                    checked = clock()
                    if not await asyncio.to_thread(alive):
                        yield "event: session_ended\ndata: {}\n\n"
                        return
                if kind is None:
                    if clock() - beat >= keepalive_s:
                        beat = clock()
                        yield ": keepalive\n\n"
                    continue
                if kind == "resync" or allow(kind, data):
                    yield f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"
        finally:
            self._subs.discard(q)
            metrics.LIVE_CLIENTS.dec()
