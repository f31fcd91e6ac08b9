"""Below the free-heap floor: new registrations and calls get 503 with Retry-After.

    low = LowHeap(sw)               wraps sw.tl.screen (the transaction layer's stateless hook)
    low.low = True                  the device sets it each second from gc.mem_free()

While low, a REGISTER from a source with no binding, or an INVITE without a To tag, is answered
503 with Retry-After before any transaction exists (within the switch's answer budget);
registered phones' refreshes and everything inside a call go on to the switch's own screen.
The switch has no notion of heap: this wrapper is the hook (a Switch attribute such as
refuse_new = (503, retry_after) would let the core do it itself).
"""

from zongji.switch.switch import make_response

RETRY_AFTER = "30"  # seconds


class LowHeap:
    def __init__(self, sw):
        self.sw = sw
        self.low = False
        self.refused = 0
        self._screen = sw.tl.screen
        sw.tl.screen = self.screen

    def screen(self, req, addr, cancels, now):
        if self.low and self._new(req, addr):
            self.refused += 1
            sw = self.sw
            if not sw.budget.may_answer(addr[0], now):
                return False
            return make_response(req, 503, to_tag=sw.stateless_tag(req), headers=(("Retry-After", RETRY_AFTER),))
        return self._screen(req, addr, cancels, now)

    def _new(self, req, addr):
        if req.method == "REGISTER":
            return not self.sw.registrar.has_source(addr)
        if req.method == "INVITE":
            to = req.to_addr()
            return to is None or not to.tag
        return False
