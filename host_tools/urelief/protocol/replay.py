"""Per-device counter windows: reject replays, let a bounded reordering through.

A device's counter only grows. The server keeps, per device, the highest counter accepted and a
bitmap of the WINDOW counters below it. A counter above the highest is new; within the window
and unseen it is a late arrival (accepted); seen, it is a duplicate (the SMS copy of a packet
that came by UDP, or a retry whose ack was lost); below the window it is too old.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from urelief.protocol.messages import Reason

WINDOW = 63  # counters tracked below the highest: the bitmap fits a signed 64-bit DB column
_MASK = (1 << WINDOW) - 1


@dataclass(frozen=True)
class WindowState:
    """Serialisable as two integers: `highest` (0 = nothing seen) and `bitmap` (< 2**63).

    Bit i-1 of `bitmap` set <=> counter `highest - i` was accepted (1 <= i <= WINDOW).
    """

    highest: int = 0
    bitmap: int = 0

    def check(self, counter: int) -> Reason | None:
        """None if `counter` may be accepted, else DUPLICATE or TOO_OLD. Does not change state."""
        if counter <= 0:
            return Reason.TOO_OLD
        if counter > self.highest:
            return None
        d = self.highest - counter
        if d == 0:
            return Reason.DUPLICATE
        if d > WINDOW:
            return Reason.TOO_OLD
        return Reason.DUPLICATE if (self.bitmap >> (d - 1)) & 1 else None

    def mark(self, counter: int) -> WindowState:
        """The state after accepting `counter` (which `check` allowed)."""
        if counter > self.highest:
            shift = counter - self.highest
            if shift > WINDOW:
                return WindowState(counter, 0)
            seen_old = (1 << (shift - 1)) if self.highest else 0
            return WindowState(counter, ((self.bitmap << shift) | seen_old) & _MASK)
        d = self.highest - counter
        return WindowState(self.highest, self.bitmap | (1 << (d - 1)))


class ReplayWindow(Protocol):
    """What `decode_uplink` needs from the server's replay state (implement it over the DB)."""

    def check(self, device_id: int, counter: int) -> Reason | None: ...

    def commit(self, device_id: int, counter: int) -> None: ...


class MemoryReplayWindow:
    """In-memory ReplayWindow: a dict of WindowState. Tests, benches and a single process."""

    def __init__(self) -> None:
        self.states: dict[int, WindowState] = {}

    def check(self, device_id: int, counter: int) -> Reason | None:
        return self.states.get(device_id, WindowState()).check(counter)

    def commit(self, device_id: int, counter: int) -> None:
        self.states[device_id] = self.states.get(device_id, WindowState()).mark(counter)


class KeyStore(Protocol):
    """Where `decode_uplink` finds a device's 32-byte secret for a key id (None: unknown)."""

    def key_for(self, device_id: int, key_id: int) -> bytes | None: ...


class MemoryKeyStore:
    def __init__(self, keys: dict[tuple[int, int], bytes] | None = None) -> None:
        self.keys: dict[tuple[int, int], bytes] = dict(keys or {})

    def add(self, device_id: int, key_id: int, secret: bytes) -> None:
        self.keys[(device_id, key_id)] = secret

    def key_for(self, device_id: int, key_id: int) -> bytes | None:
        return self.keys.get((device_id, key_id))
