"""What the SIP transaction layer tells the transaction user (TU): small event classes, one per
kind of news, returned in lists by TransactionLayer.receive(), handle_timer() and
transport_error(). `tx` is always the Transaction concerned (or None), `addr` the peer's
(host, port)."""


class Event:
    def __repr__(self):
        return "<%s %r>" % (type(self).__name__, self.__dict__)


class NewRequest(Event):
    """A request that opened a server transaction `tx`; answer it with layer.respond(tx, ...).
    For a CANCEL, `cancels` is the INVITE server transaction it matches (section 9.2), or None
    (answer 481)."""

    def __init__(self, tx, request, addr, cancels=None):
        self.tx = tx
        self.request = request
        self.addr = addr
        self.cancels = cancels


class AckReceived(Event):
    """An ACK no transaction absorbed: the ACK for a 2xx (section 17.2.1), which the TU or dialog
    matches. `tx` is the INVITE server transaction in accepted state when one matched."""

    def __init__(self, request, addr, tx=None):
        self.request = request
        self.addr = addr
        self.tx = tx


class ResponseReceived(Event):
    """A response for the client transaction `tx`: provisional, final, or in accepted state a
    further 2xx (each needs its own ACK from the TU)."""

    def __init__(self, tx, response):
        self.tx = tx
        self.response = response


class StrayResponse(Event):
    """A response that matches no client transaction (17.1.3), passed to the core (18.1.2): a
    proxy forwards a 2xx for an INVITE statelessly (16.7); a UA re-ACKs a 2xx of a dialog it
    knows; anything else is dropped."""

    def __init__(self, response, addr):
        self.response = response
        self.addr = addr


class Absorbed(Event):
    """A retransmission (or an ACK for a non-2xx) the transaction dealt with itself; the TU need
    do nothing, but may count it."""

    def __init__(self, tx, message):
        self.tx = tx
        self.message = message


class Timeout(Event):
    """`tx` ended for want of an answer: timer "B" or "F" (no final response), "cancel" (no final
    response 64*T1 after a CANCEL), or "H" (the ACK for our 300-699 never came)."""

    def __init__(self, tx, timer):
        self.tx = tx
        self.timer = timer


class TransportError(Event):
    """Sending for `tx` failed (the shell said so with transport_error); the transaction ended."""

    def __init__(self, tx):
        self.tx = tx


class Overloaded(Event):
    """A new request was refused with 503 and Retry-After: max_transactions were running."""

    def __init__(self, request, addr):
        self.request = request
        self.addr = addr


class Malformed(Event):
    """A datagram that is not SIP we can use; `status` is the code it was answered with
    (400, 505) or None when it was dropped (a response, an ACK, no Via)."""

    def __init__(self, reason, addr, status=None):
        self.reason = reason
        self.addr = addr
        self.status = status
