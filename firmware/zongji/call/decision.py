"""The call decision: where a call goes, decided once, for the switch and for `zongji simulate`.

    d = decide(site, "600", caller=ext)          a staff call: ext is the caller's Extension
    d = decide_inbound(site, "02155550100", tm)  a call from the provider to one of our numbers
    d.action        RING, REFUSE or ATTEND (the switch answers the call itself)
    d.status, d.reason   the final answer when REFUSE (a SIP status and its reason phrase)
    d.target        ("ext", "201"), ("group", "600"), ("external", number, kind) ...
    d.plan          the ring plan (call.ringplan): stages of legs, caller left out
    d.verdict       the class of service: dialplan.OK, NEED_PIN or FORBIDDEN
    d.wait_ms       the digits are also the start of a longer number: a keypad waits this long
    d.note          why, in words; the switch logs the same words simulate prints
    d.wanted        what the site asks that the switch cannot do yet: ("menu", name) or
                    ("pin", kind); the decision then carries what the switch does instead

Nothing else decides where a call goes: the proxy, the trunk's inbound path, follow-me (a ring
plan stage) and `zongji simulate` all ask here, so what an admin simulates is what the switch
does. The switch adds only what depends on the moment: which phones are registered and whether
the provider is up.

A call the attendant answers (a menu, the main number, a PIN prompt) is ATTEND: the switch's
own user agent (switch/agent.py) answers it. Each such decision also carries `stand_in`, what a
switch without media does instead (a core run with no RTP port: fuzzers, unit harnesses), said
the same way everywhere: staff who dial a menu hear 480, a PIN-protected class gets 403, and an
outside call for a menu rings the operator. `entry` is the target text the attendant starts
from (a DID's entry, "menu:main", [hours] closed), `pin` the target a PIN unlocks.
"""

from zongji.call.ringplan import ring_plan
from zongji.site import dialplan

RING = "ring"
REFUSE = "refuse"
ATTEND = "attend"

NO_ATTENDANT = "this switch has no media for the attendant"


class Decision:
    def __init__(self, action, target=None, status=None, reason=None, note=""):
        self.action = action
        self.target = target
        self.status = status
        self.reason = reason
        self.note = note
        self.plan = []
        self.verdict = dialplan.OK
        self.wait_ms = 0
        self.wanted = None
        self.stand_in = None  # ATTEND: the Decision a switch without an attendant carries out
        self.entry = None  # ATTEND: the target text the attendant starts from
        self.pin = None  # ATTEND for a PIN: the target the PIN unlocks

    def as_dict(self):
        t = self.target
        return {
            "action": self.action,
            "target": list(t) if t else None,
            "status": self.status,
            "reason": self.reason,
            "plan": [{"legs": [list(leg) for leg in legs], "seconds": s} for legs, s in self.plan],
            "verdict": self.verdict,
            "wait_ms": self.wait_ms,
            "wanted": list(self.wanted) if self.wanted else None,
            "note": self.note,
            "stand_in": self.stand_in.as_dict() if self.stand_in is not None else None,
        }


def _refuse(status, reason, note, target=None):
    return Decision(REFUSE, target, status, reason, note)


def _ring(site, target, caller=None, note=""):
    plan = ring_plan(site, target, caller)
    if not site.trunk:  # no provider: trunk legs cannot ring
        plan = [([leg for leg in legs if leg[0] != "trunk"], s) for legs, s in plan]
        plan = [stage for stage in plan if stage[0]]
    if not plan:
        if target[0] == "emergency":
            return _refuse(503, "No Trunk", "EMERGENCY %s: the site has no trunk to call it on" % target[1], target)
        why = "the site has no trunk" if target[0] == "external" else "nobody to ring: no phone and no mobile"
        return _refuse(480, "Nobody To Ring", why, target)
    d = Decision(RING, target, note=note)
    d.plan = plan
    return d


def decide(site, digits, caller=None):
    """A call from staff: extension `caller` (an Extension) dialed `digits` en bloc."""
    status, target = site.dialplan.match(digits)
    if status == dialplan.NEED_MORE:
        return _refuse(484, "Address Incomplete", "%s is only the start of a number" % digits)
    if status == dialplan.NO_MATCH:
        return _refuse(404, "Not Found", "%s is not a number here" % digits)
    cls = (caller.cls if caller is not None else "") or site.default_class
    verdict = site.dialplan.authorize(cls, target)
    if verdict == dialplan.FORBIDDEN:
        d = _refuse(403, "Not Allowed", "class '%s' may not dial %s numbers" % (cls, target[2]), target)
    elif target[0] == "menu":
        d = _attend(site, target, ("menu", target[1]), 480, "Menus Need The Attendant")
        d.entry = "menu:" + target[1]
    elif verdict == dialplan.NEED_PIN:
        d = _attend(site, target, ("pin", target[2]), 403, "PIN Entry Needs The Attendant")
        d.note = "class '%s' needs a PIN for %s numbers: the attendant asks for it" % (cls, target[2])
        d.stand_in.note = "class '%s' needs a PIN for %s numbers, and %s" % (cls, target[2], NO_ATTENDANT)
        d.pin = target
        if caller is None or not caller.has_pin():
            # nobody could type the right PIN: say no at once rather than ask for one
            d = _refuse(403, "Not Allowed", "class '%s' needs a PIN for %s numbers, and %s has none" % (
                cls, target[2], caller.number if caller is not None else "the caller"), target)  # fmt: skip
    else:
        d = _ring(site, target, caller.number if caller is not None else None)
    d.verdict = verdict
    if status == dialplan.MATCH_OR_MORE:
        d.wait_ms = site.interdigit_ms
    return d


def _attend(site, target, wanted, status, reason):
    d = Decision(ATTEND, target, note="the attendant answers")
    d.stand_in = _refuse(status, reason, "%s needs the attendant, and %s" % (_what(wanted), NO_ATTENDANT), target)
    d.stand_in.wanted = d.wanted = wanted
    return d


def transfer(site, target, caller=None):
    """The attendant puts a caller through to `target` (a menu option, a number dialed in a
    menu, a name found, or the target a PIN unlocked): ring it as a call to it would."""
    return _ring(site, target, caller, note="put through by the attendant")


def _what(wanted):
    return "menu '%s'" % wanted[1] if wanted[0] == "menu" else "the PIN prompt"


def inbound_entry(site, did, tm=None):
    """Where an outside call to `did` starts: (target text, how it was chosen: "did", "main" or
    "closed"). The DID's entry in [trunk] did, else the main menu; outside opening hours,
    [hours] closed. tm is the branch's wall-clock time (hours.local_time), None when the clock
    is not set: then it counts as open."""
    return entry_at(site, ((site.trunk or {}).get("did") or {}).get(did or ""), tm)


def entry_at(site, text, tm=None):
    """Where a call for target text (None: the main number) starts at time tm: the one opening
    hours rule, shared by the switch's decision and the attendant."""
    if tm is not None and not site.is_open(tm):
        return site.data["hours"]["closed"], "closed"
    if text is not None:
        return text, "did"
    return "menu:" + (site.attendant.get("main_menu") or "main"), "main"


def decide_inbound(site, did, tm=None):
    """A call from the provider to `did`. Outside callers reach only what the site points a DID
    (or the menus) at: never the outside-line prefix, so nobody dials out at the branch's cost."""
    text, how = inbound_entry(site, did, tm)
    target = site.resolve(text)
    when = "outside opening hours, " if how == "closed" else ""
    if target is None:
        target = ("hangup", None)
    kind = target[0]
    if kind in ("ext", "group", "external"):
        return _ring(site, target, note=when + "rings %s" % _describe(target))
    if kind == "hangup":
        return _refuse(480, "Closed", when + "the site hangs up", target)
    # a menu, or dial-by-name: the attendant's; without one the operator takes the call
    wanted = ("menu", target[1]) if kind == "menu" else ("menu", "directory")
    d = Decision(ATTEND, target, note=when + "the attendant answers")
    d.entry = text
    d.wanted = wanted
    d.stand_in = _stand_in(site, target, when, wanted)
    return d


def anchored(inbound, target, has_ringback, has_hold):
    """Whether a ringing call (RING) goes through the switch's own user agent, which plays the
    branch's ringback to the caller as early media and its hold music when the call is held:
    an outside caller's while the site has a ringback or hold sound built; a staff call out
    over the trunk while it has hold music. The switch adds what depends on the moment (the
    INVITE offers SDP, an attendant line is free beyond those kept for the menus); simulate
    assumes both."""
    if inbound:
        return has_ringback or has_hold
    return target[0] == "external" and has_hold


def _stand_in(site, target, when, wanted):
    """An outside call for the menus, on a switch without an attendant: the operator takes it."""
    op = site.operator()
    if op is None or op[0] not in ("ext", "group"):
        d = _refuse(
            480,
            "No Operator",
            "%s%s needs the attendant, %s, and there is no operator" % (when, _what(wanted), NO_ATTENDANT),
            target,
        )
    else:
        d = _ring(
            site,
            op,
            note="%s%s needs the attendant, and %s: the operator takes the call" % (when, _what(wanted), NO_ATTENDANT),
        )
    d.wanted = wanted
    return d


def _describe(target):
    return "%s %s" % (target[0], target[1])
