"""Persisted outbox: every sealed uplink is stored on flash before it is sent, and kept until
the server acks its counter. One littlefs file per packet, <dir>/<counter, 8 hex digits>,
written as .tmp, closed, then renamed (atomic on littlefs): after a power cut a packet is
there whole or not at all, and the boot resends what is left. A duplicate at the server is
harmless (it re-acks). Bounded: when full, the oldest of the least important kind goes first
(_KEEP); SOS packets are kept over any other."""
import os

from micropython import const

_SOS = const(0x01)  # packet type byte (offset 1) of an SOS
# What goes last when the outbox is full, by packet type: routine heartbeats and receipts
# (a later receipt carries the same news) first, then
# positions (a newer one follows), then low battery, then the child's own words (cancel,
# duress cancel, tap reply); an SOS only ever gives way to a newer SOS.
_KEEP = {0x05: 0, 0x07: 0, 0x09: 0, 0x02: 1, 0x06: 2, 0x03: 3, 0x04: 3, _SOS: 4}
_MAX = const(16)  # packets kept; an SOS is 51 bytes, the file system block 4 KB each


class Entry:
    """One stored packet and its delivery state (RAM only: after a reboot it starts afresh)."""
    def __init__(self, packet):
        self.packet = packet
        self.counter = int.from_bytes(packet[6:10], "big")
        self.type = packet[1]
        self.due = None  # ticks_ms to look at it again; None = now (policy.py keeps these)
        self.first = None  # ticks_ms of the first attempt, or of the first wait for a channel
        self.tries = 0  # UDP sends the modem took
        self.sms = 0  # SMS sends the modem took
        self.udp_at = None  # ticks_ms when UDP may be tried again; None = now
        self.sms_at = None  # ticks_ms when another SMS copy may go; None = now
        self.up = False  # the data link was up when last decided

    @property
    def sos(self):
        return self.type == _SOS


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class Outbox:
    def __init__(self, path="/outbox", limit=_MAX):
        self.path = path
        self.limit = limit
        self.entries = []  # oldest (lowest counter) first
        self.dropped = 0  # statistics: packets dropped to make room
        if not _exists(path):
            os.mkdir(path)
        for name in os.listdir(path):
            full = path + "/" + name
            if name.endswith(".tmp"):
                os.remove(full)  # cut before the rename: never complete, never counted
                continue
            try:
                with open(full, "rb") as f:
                    pkt = f.read()
            except OSError:
                continue
            if len(pkt) < 18 or "%08x" % int.from_bytes(pkt[6:10], "big") != name:
                os.remove(full)  # not a packet of ours
                continue
            self._insert(Entry(pkt))

    def _insert(self, e):
        i = len(self.entries)
        while i > 0 and self.entries[i - 1].counter > e.counter:
            i -= 1
        self.entries.insert(i, e)

    def _file(self, counter):
        return "%s/%08x" % (self.path, counter)

    def add(self, packet):
        """Store a sealed packet (bytes); returns (entry, dropped entry or None). When full the
        oldest packet of the lowest _KEEP rank makes room; a new packet ranked below all that
        are stored is itself dropped (returned as both, not stored).
        Raises OSError if the flash refuses: the caller must not send what is not stored."""
        e = Entry(packet)
        dropped = None
        if len(self.entries) >= self.limit:
            victim = self.entries[0]
            for x in self.entries:  # oldest first: the first of the lowest rank
                if _KEEP.get(x.type, 1) < _KEEP.get(victim.type, 1):
                    victim = x
            self.dropped += 1
            if _KEEP.get(e.type, 1) < _KEEP.get(victim.type, 1):
                return e, e  # e.g. a position never displaces an SOS or a cancel
            dropped = self._remove(victim)
        name = self._file(e.counter)
        with open(name + ".tmp", "wb") as f:
            f.write(packet)
        os.rename(name + ".tmp", name)
        self._insert(e)
        return e, dropped

    def _remove(self, e):
        self.entries.remove(e)
        try:
            os.remove(self._file(e.counter))
        except OSError:
            pass
        return e

    def ack(self, counter):
        """The server has this counter: forget it. -> the entry, or None if not (or no longer) here."""
        for e in self.entries:
            if e.counter == counter:
                return self._remove(e)
        return None

    def get(self, counter):
        for e in self.entries:
            if e.counter == counter:
                return e
        return None

    def __len__(self):
        return len(self.entries)
