"""A call's lifecycle, and each leg's, as one table.

Theory of operation
-------------------
A call (the caller's side) and each of its legs (a phone rung, a call out through the trunk, and
later an analog line) move through the same four states:

    trying    the INVITE is out (or in); nobody has said more than 100 Trying
    ringing   a 1xx other than 100 came: the far end is alerting (RFC 3261 21.1.2, 13.2.2.1)
    answered  a 2xx: a dialog is up (13.2.2.4; the proxy's first 2xx wins, 16.7 step 10)
    ended     a final failure (3xx-6xx, 13.2.2.3), Timer B or a transport error (17.1.1.2),
              a CANCEL (9.1), Timer C on a leg that never answered (16.6 step 11, 16.8), a BYE
              (15.1), or the longest call we keep (a BYE we never saw)

Events are the words below; `step(state, event)` gives the next state, or None when the event
does not apply there (a late 1xx after the answer, a second final answer): the caller ignores it,
as sections 17.1.1.2 and 16.7 say to. `ended` is final: nothing leaves it.
"""

TRYING = "trying"
RINGING = "ringing"
ANSWERED = "answered"
ENDED = "ended"

PROVISIONAL = "provisional"  # 1xx other than 100
ANSWER = "answer"  # 2xx
FAIL = "fail"  # 3xx-6xx, Timer B, transport error
CANCEL = "cancel"  # the caller gave up, or another leg answered
TIMEOUT = "timeout"  # Timer C (never answered), or the longest call (answered)
HANGUP = "hangup"  # BYE from either side

_TABLE = {
    TRYING: {PROVISIONAL: RINGING, ANSWER: ANSWERED, FAIL: ENDED, CANCEL: ENDED, TIMEOUT: ENDED},
    RINGING: {PROVISIONAL: RINGING, ANSWER: ANSWERED, FAIL: ENDED, CANCEL: ENDED, TIMEOUT: ENDED},
    ANSWERED: {ANSWER: ANSWERED, HANGUP: ENDED, TIMEOUT: ENDED},
    ENDED: {},
}


def step(state, event):
    """The state after `event` in `state`, or None when the event does not apply."""
    return _TABLE[state].get(event)


class Lifecycle:
    """One call's or leg's state, with the time it was entered and when it was answered."""

    def __init__(self, now):
        self.state = TRYING
        self.since_ms = now
        self.start_ms = now
        self.answer_ms = None

    def go(self, event, now):
        """Apply `event`; True when it changed or confirmed the state (see step)."""
        nxt = _TABLE[self.state].get(event)
        if nxt is None:
            return False
        if nxt != self.state:
            self.state = nxt
            self.since_ms = now
            if nxt == ANSWERED:
                self.answer_ms = now
        return True

    @property
    def answered(self):
        return self.answer_ms is not None

    @property
    def ended(self):
        return self.state == ENDED

    @property
    def live(self):
        """Not answered and not ended: still setting up."""
        return self.state == TRYING or self.state == RINGING
