"""`zongji simulate`: narrate what the switch does with one call, from the core's own decision.

A staff call (`--from 201 --dial 305`) and an outside call (`--call NUMBER`, a DID) are decided
by zongji.call.decision, the very function the switch calls for each INVITE: simulate prints
what it returns (whom the switch rings, in which stages, or the status it answers and why) and
decides nothing itself. What depends on the moment only the running switch knows: whether each
phone is registered (simulate assumes every one is) and whether the provider is up.

Where the attendant answers (the main number, a menu's short number, a PIN prompt), simulate
walks the menus with the core's Attendant on a virtual clock, as the switch's own user agent
does (the caller's --keys, or -i): what it plays, what each key does, and when it puts the
caller through, whom that rings (the same decision.transfer() the switch asks).

Anchoring: where the site's ringback or hold sounds are built (`built`: the sound prompt ids
that exist, from SITE/prompts), decision.anchored says, as it does for the switch, whether a
call that rings goes through the switch's own user agent (the caller hears the branch's
ringback as early media, and its hold music when held); simulate says so, and says when
[sounds] names a sound that is not built yet (then the call is proxied without them).

Key scripts: each character is a key (0-9 * #); "," waits one second; "." waits until the
attendant's next timeout fires. Between keys a caller takes KEY_GAP_MS.
"""

from zongji.call import decision
from zongji.call.attendant import Attendant
from zongji.call.prompts import HOLD, RINGBACK

KEY_GAP_MS = 600
MAX_STEPS = 200  # a call that has not ended after this many events is reported as stuck
ATTENDANT = "the attendant answers:"


class Step:
    def __init__(self, t_ms, kind, text, data=None):
        self.t_ms = t_ms
        self.kind = kind
        self.text = text
        self.data = data or {}

    def as_dict(self):
        d = {"t": round(self.t_ms / 1000.0, 3), "kind": self.kind, "text": self.text}
        d.update(self.data)
        return d


class Result:
    def __init__(self):
        self.steps = []
        self.outcome = None  # what the switch does: "ring", "refused", or the attendant's end
        self.decision = None
        self.attendant = None  # a menu walk: {"outcome": "transfer"|"hangup"|"waiting", "target": ...}
        self.transfer = None  # the decision for the attendant's transfer, when it puts the caller through
        self.printed = False  # steps already shown (interactive mode)

    def add(self, t_ms, kind, text, **data):
        self.steps.append(Step(t_ms, kind, text, data))

    def as_dict(self):
        d = self.decision
        ring = self.transfer if self.transfer is not None else d
        target = ring.target if ring is not None else None
        return {
            "outcome": self.outcome,
            "status": d.status if d is not None else None,
            "reason": d.reason if d is not None else None,
            "target": list(target) if target else None,
            "ring": ring.as_dict()["plan"] if ring is not None else [],
            "decision": d.as_dict() if d is not None else None,
            "attendant": self.attendant,
            "steps": [s.as_dict() for s in self.steps],
        }


def describe_target(site, target):
    kind = target[0]
    if kind == "ext":
        ext = site.extension(target[1])
        return "extension %s %s" % (target[1], ext.name if ext else "?")
    if kind == "group":
        g = site.groups[target[1]]
        return "ring group %s %s (%s)" % (target[1], g["name"], g["strategy"])
    if kind == "menu":
        return "menu '%s'" % target[1]
    if kind == "external":
        return "outside number %s (%s) over the trunk" % (target[1], target[2])
    if kind == "emergency":
        return "EMERGENCY %s over the trunk" % target[1]
    return kind


def _leg_text(site, leg):
    if leg[0] == "desk":
        ext = site.extension(leg[1])
        return "%s %s's phone" % (leg[1], ext.name if ext else "")
    return "%s over the trunk" % leg[1]


def _narrate_decision(site, result, d, inbound=False, built=()):
    """What the switch does with the call: the steps and the outcome, from the decision alone."""
    result.decision = d
    if d.wait_ms:
        result.add(0, "wait", "waits %d ms for more digits (a phone that dials digit by digit)" % d.wait_ms)
    if d.action == decision.REFUSE:
        result.outcome = "refused"
        result.add(0, "refused", "answers %d %s: %s" % (d.status, d.reason, d.note), status=d.status, reason=d.reason)
        return
    if d.action == decision.ATTEND:
        result.outcome = "attend"
        result.add(0, "attend", d.note)
        return
    result.outcome = "ring"
    if d.note:
        result.add(0, "note", d.note)
    _narrate_anchor(site, result, d, inbound, built)
    _narrate_ring(site, result, d, 0)


def _narrate_anchor(site, result, d, inbound, built):
    ringback, hold = RINGBACK in built, HOLD in built
    if decision.anchored(inbound, d.target, ringback, hold):
        if inbound:
            text = "the switch answers with early media (183: the caller pays nothing yet) and plays %s while " \
                   "it rings" % ("the branch's ringback file" if ringback else "a ringing tone")  # fmt: skip
        else:
            text = "the switch carries the call itself (its user agent places it over the trunk)"
        if hold:
            text += "; put on hold, the %s hears the branch's hold music" % ("caller" if inbound else "outside party")
        result.add(0, "anchor", text, ringback=ringback, hold=hold)
        return
    named = [k for k in ("ringback", "hold") if (site.sounds or {}).get(k)]
    if named and (inbound or d.target[0] == "external"):
        result.add(0, "note", "[sounds] names %s, not built yet (zongji prompts build): the call is proxied, so the "
                   "caller hears the phones' own ringing and no hold music" % " and ".join(named))  # fmt: skip


def _narrate_ring(site, result, d, t_ms):
    result.add(t_ms, "connect", "connects to %s" % describe_target(site, d.target), target=list(d.target))
    for legs, secs in d.plan:
        text = ", ".join(_leg_text(site, leg) for leg in legs)
        result.add(
            t_ms,
            "ring",
            "rings %s%s" % (text, " for %s s" % secs if secs else ""),
            legs=[list(leg) for leg in legs],
            seconds=secs,
        )
        t_ms += (secs or 0) * 1000


def internal(site, caller, digits, tm, keys="", built=()):
    """A staff call: extension `caller` dials `digits` (en bloc, as a SIP phone sends them).
    built: the sound prompt ids the site has built (for anchoring)."""
    result = Result()
    ext = site.extension(caller)
    if ext is None:
        result.outcome = "refused"
        result.add(0, "refused", "%s is not an extension of this site: its phone cannot sign in" % caller, status=407)
        return result
    result.add(0, "call", "%s %s dials %s" % (caller, ext.name, digits))
    d = decision.decide(site, digits, ext)
    _narrate_decision(site, result, d, False, built)
    if d.action == decision.ATTEND:
        pin = (d.pin, ext.number) if d.pin else None
        _attend(site, result, Attendant(site, tm, d.entry, pin=pin), keys, ext.number)
    return result


def inbound(site, number, tm, keys="", built=()):
    """An outside call to `number` (a DID of [trunk] did; anything else reaches the main number)."""
    entry, how = decision.inbound_entry(site, number, tm)
    text = {"did": "DID %s" % number, "main": "the main number"}.get(how)
    if text is None:
        text = "%s, outside opening hours" % (number or "the main number")
    result = Result()
    result.add(0, "call", "outside call to %s" % text)
    d = decision.decide_inbound(site, number, tm)
    _narrate_decision(site, result, d, True, built)
    if d.action == decision.ATTEND:
        _attend(site, result, Attendant(site, tm, entry), keys, None)
    return result


def _attend(site, result, a, keys, caller):
    walk = Result()
    walk_attendant(site, walk, a, keys)
    _finish(site, result, walk, caller)


def _finish(site, result, walk, caller):
    """The attendant's walk is over (or waiting): its steps, its outcome, and whom a transfer rings."""
    result.steps += walk.steps
    target = walk.attendant
    result.attendant = {"outcome": walk.outcome, "target": list(target) if target else None}
    result.outcome = walk.outcome
    if walk.outcome == "transfer" and target is not None:
        d = decision.transfer(site, target, caller)
        result.transfer = d
        t_ms = walk.steps[-1].t_ms if walk.steps else 0
        if d.action == decision.REFUSE:
            result.add(t_ms, "refused", "  the transfer fails: %s; the attendant tries the operator" % d.note)
        else:
            _narrate_ring(site, result, d, t_ms)


def _narrate(site, result, t_ms, actions):
    for a in actions:
        if a[0] == "menu":
            what = "dial-by-name" if a[1] == "directory" else "menu '%s'" % a[1]
            result.add(t_ms, "menu", "  enters %s" % what, menu=a[1])
        elif a[0] == "play":
            what = a[3] or a[2]
            result.add(t_ms, "play", "  plays %s" % (repr(what) if what else "(silence)"), prompt=a[1], audio=a[3])
        elif a[0] == "transfer":
            result.outcome = "transfer"
            result.attendant = a[1]
            result.add(
                t_ms, "transfer", "  puts the caller through to %s" % describe_target(site, a[1]), target=list(a[1])
            )
        elif a[0] == "hangup":
            result.outcome = "hangup"
            result.add(t_ms, "hangup", "  hangs up (%s)" % a[1], reason=a[1])
        elif a[0] == "pin_failed":
            result.add(t_ms, "pin", "  the PIN is wrong (the switch counts it against %s)" % a[1])


def parse_keys(script):
    """Validate a key script; returns it stripped of spaces. Raises ValueError."""
    keys = script.replace(" ", "")
    for k in keys:
        if k not in "0123456789*#,.":
            raise ValueError("'%s' is not a key: use 0-9 * #, ',' to wait 1 s, '.' to wait for a timeout" % k)
    return keys


def walk_attendant(site, result, a, keys=""):
    """Feed a key script to the attendant on a virtual clock until it is done or stuck."""
    _narrate(site, result, 0, a.start(0))
    now = run_keys(site, a, result, 0, parse_keys(keys))
    steps = 0
    while not a.done and a.deadline is not None and steps < MAX_STEPS:  # the caller goes quiet
        now = max(now, a.deadline)
        _narrate(site, result, now, a.timer(now))
        steps += 1
    if not a.done:
        result.outcome = "waiting"
    return result


def interactive(site, tm, ask, say, number="", built=()):
    """An outside call typed live: the decision, then the attendant answers the keys typed."""
    d = decision.decide_inbound(site, number, tm)
    result = Result()
    result.add(0, "call", "outside call to %s" % (number or "the main number"))
    _narrate_decision(site, result, d, True, built)
    for step in result.steps:
        say("%7.1fs  %s" % (step.t_ms / 1000.0, step.text))
    if d.action != decision.ATTEND:
        result.printed = True
        return result
    a = Attendant(site, tm, decision.inbound_entry(site, number, tm)[0])
    walk = Result()
    now = 0
    shown = 0

    def flush():
        nonlocal shown
        for step in walk.steps[shown:]:
            say("%7.1fs  %s" % (step.t_ms / 1000.0, step.text))
        shown = len(walk.steps)

    say(ATTENDANT + " type keys (0-9 * #) and Enter; Enter alone waits for the timeout; q hangs up")
    _narrate(site, walk, now, a.start(now))
    while not a.done and len(walk.steps) < MAX_STEPS:
        flush()
        line = ask("keys", default="", show_default=False).strip()
        if line == "q":
            walk.outcome = "hangup"
            walk.add(now, "hangup", "  caller hangs up")
            break
        try:
            keys = parse_keys(line) if line else "."
        except ValueError as e:
            say(str(e))
            continue
        now = run_keys(site, a, walk, now, keys)
    flush()
    before = len(result.steps) + len(walk.steps)
    _finish(site, result, walk, None)
    for step in result.steps[before:]:  # whom the transfer rings
        say("%7.1fs  %s" % (step.t_ms / 1000.0, step.text))
    result.printed = True
    return result


def run_keys(site, a, result, now, keys):
    """Feed a key script to a running attendant; returns the new virtual time."""
    for k in keys:
        if a.done:
            break
        if k == ",":
            now += 1000
            _narrate(site, result, now, a.timer(now))
        elif k == ".":
            if a.deadline is not None:
                now = max(now, a.deadline)
                _narrate(site, result, now, a.timer(now))
        else:
            now += KEY_GAP_MS
            if a.deadline is not None and a.deadline <= now:
                _narrate(site, result, a.deadline, a.timer(a.deadline))
                if a.done:
                    break
            result.add(now, "key", "  caller presses %s" % k, key=k)
            _narrate(site, result, now, a.key(k, now))
    return now
