"""The alarm's state machine, pure: idle -> raised (SOS stored) -> sent (the server has it) ->
seen (a dispatcher acknowledged) -> dispatched (help is on its way) -> stood down (resolved,
false alarm, drill over, cancelled). Each step up is felt as its haptic pattern, once.
SENT means the police have *this* alert: nothing is felt, and no level counts, until an ACK names
one of the alert's own SOS counters (an ACK of a later position only says the server has that
position: the SOS may have been lost on the way, an SMS dropped or a coverage gap).
A cancel looks the same to anyone watching whether true or under duress; under duress the
alarm stays live (tracking continues silently) and is `covert`: nothing more is felt for it."""
from micropython import const
from periph.haptics import CANCEL_ACK, DISPATCHED, SEEN, SENT

IDLE = const(0)
RAISED = const(1)
SENT_ = const(2)
SEEN_ = const(3)
DISPATCHED_ = const(4)
STOOD_DOWN = const(5)
NAMES = ("idle", "raised", "sent", "seen", "dispatched", "stood_down")
_FELT = (None, SENT, SEEN, DISPATCHED)  # by ACK level 1..3
_SOS_KEPT = const(8)  # SOS counters of one alert remembered (repeat presses); oldest dropped


class Alarm:
    def __init__(self):
        self.state = IDLE
        self.first = None  # counter of the alert's first SOS: acks from here on belong to it
        self.sos = None  # counter of its latest SOS
        self.sos_counters = []  # every SOS counter of this alert (bounded): acks that confirm it
        self.confirmed = False  # an ACK named one of them: the server has this alert
        self.level = 0  # highest ACK level seen (1 received, 2 seen, 3 dispatched)
        self.drill = False
        self.cancelled = False
        self.duress = False
        self.raised_at = None  # ticks_ms
        self.reason = None  # stand-down reason

    @property
    def active(self):
        """Reporting: raised and not stood down (a duress cancel stays active)."""
        return RAISED <= self.state <= DISPATCHED_

    @property
    def covert(self):
        """Cancelled under duress and still live: nothing of this alert may be felt or seen."""
        return self.duress and self.active

    @property
    def name(self):
        return NAMES[self.state]

    def raise_(self, counter, now, drill=False):
        """An SOS with this counter was stored. -> True for a new alert, False for a repeat
        press while one is live (the same alert, a newer SOS)."""
        self.sos = counter
        if self.active:
            self._keep(counter)
            return False
        self.state = RAISED
        self.first = counter
        self.sos_counters = [counter]
        self.confirmed = False
        self.level = 0
        self.drill = drill
        self.cancelled = self.duress = False
        self.raised_at = now
        self.reason = None
        return True

    def _keep(self, counter):
        c = self.sos_counters
        if counter not in c:
            c.append(counter)
            if len(c) > _SOS_KEPT:
                c.pop(1)  # keep the first SOS: a late ack of it still confirms the alert

    def on_ack(self, acked, level):
        """An ACK of uplink `acked` at `level`. -> the haptic pattern to play, or None."""
        if not self.active or self.first is None or acked < self.first:
            return None
        if not self.confirmed:
            if acked not in self.sos_counters:
                return None  # not yet known to have this alert: the SOS is still on its way
            self.confirmed = True
        if level > 3:
            level = 3  # a level this firmware does not know is at most "dispatched", felt once
        if level <= self.level:
            return None
        self.level = level
        self.state = RAISED + self.level
        return None if self.cancelled else _FELT[self.level]

    def stand_down(self, reason, sos_counter):
        """STAND_DOWN for sos_counter (0: the current alert). -> True if it ended this alert."""
        if not self.active or (sos_counter and sos_counter < self.first):
            return False
        self.state = STOOD_DOWN
        self.reason = reason
        return True

    def cancel(self, duress):
        """The child's cancel pattern. -> the pattern to play (identical for both kinds)."""
        if not self.active:
            return None
        self.cancelled = True
        self.duress = duress
        if not duress:
            self.state = STOOD_DOWN
            self.reason = 4
        return CANCEL_ACK
