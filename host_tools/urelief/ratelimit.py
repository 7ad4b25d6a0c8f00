"""Per-source token buckets, shared by the server's ingest and the registry's sign-in: one
flooding source (an IP, a phone number, a device) cannot starve the others. Buckets for idle
sources are dropped so the table stays small."""

from __future__ import annotations

import time


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int, max_sources: int = 100_000):
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_sources = max_sources
        self._buckets: dict[str, tuple[float, float]] = {}  # source -> (tokens, last_s)

    def allow(self, source: str, now: float | None = None) -> bool:
        t = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(source, (self.burst, t))
        tokens = min(self.burst, tokens + (t - last) * self.rate)
        if tokens < 1.0:
            self._buckets[source] = (tokens, t)
            return False
        self._buckets[source] = (tokens - 1.0, t)
        if len(self._buckets) > self.max_sources:
            self._prune(t)
        return True

    def exhausted(self, source: str, now: float | None = None) -> bool:
        """True if `allow(source)` would refuse now (nothing is taken)."""
        t = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(source, (self.burst, t))
        return tokens + (t - last) * self.rate < 1.0

    def _prune(self, t: float) -> None:
        full_after = self.burst / self.rate if self.rate > 0 else 0.0
        self._buckets = {s: v for s, v in self._buckets.items() if t - v[1] < full_after}
