"""A dispatcher's question to a child who cannot speak ("Knock Knock"): felt as the QUESTION
pattern, answered by a run of presses closed by a quiet gap (the button's COUNT gesture), or
by no answer (0 presses) when its timeout passes. One question at a time: a new one replaces
an unanswered one. Pure: the runner feeds it ticks_ms and counted presses."""
import time

from micropython import const

YES_NO = const(1)  # 1 press = yes, 2 presses = no
PRESS_N = const(2)  # answer 1..choices presses
_MAX_PRESSES = const(255)  # the reply's presses field is one byte


class Ask:
    def __init__(self):
        self.qid = None  # the open question's id, None when none is open
        self.kind = None
        self.choices = None
        self.deadline = None  # ticks_ms by which the answer must be given

    @property
    def open(self):
        return self.qid is not None

    def start(self, qid, kind, choices, timeout_s, now):
        """A question arrived (verified). -> True if it is a new one to put to the child."""
        if qid == self.qid:
            return False  # the same question again (resent by the server): still open
        self.qid = qid
        self.kind = kind
        self.choices = choices
        self.deadline = time.ticks_add(now, timeout_s * 1000)
        return True

    def answer(self, presses):
        """The child pressed `presses` times. -> (question id, presses) to send, or None."""
        if self.qid is None or presses <= 0:
            return None
        qid = self.qid
        self.qid = None
        return qid, presses if presses < _MAX_PRESSES else _MAX_PRESSES

    def remaining_ms(self, now):
        """ms until the open question times out (0: due now), or None when none is open."""
        if self.qid is None:
            return None
        left = time.ticks_diff(self.deadline, now)
        return left if left > 0 else 0

    def expire(self, qid, now):
        """The timer for `qid` ran out. -> (qid, 0) "no answer" to send, or None if it was
        answered or replaced meanwhile."""
        if self.qid != qid or self.remaining_ms(now):
            return None
        self.qid = None
        return qid, 0
