"""`zongji simulate`: drive the device's own core through one call and record every step.

An outside call (`--call NUMBER`) starts the attendant at the number's DID target (or the main
menu) under the opening hours at `--at`; keys are fed with a virtual clock. A staff call
(`--from 201 --dial 305`) goes through the dial plan and class of service exactly as a phone's
INVITE will. Nothing here decides anything: the rules are the core's, this file only narrates.

Key scripts: each character is a key (0-9 * #); "," waits one second; "." waits until the
attendant's next timeout fires. Between keys a caller takes KEY_GAP_MS.
"""

from zongji.call import ringplan
from zongji.call.attendant import Attendant
from zongji.site import dialplan

KEY_GAP_MS = 600
MAX_STEPS = 200  # a call that has not ended after this many events is reported as stuck


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
        self.outcome = None  # "transfer", "hangup", "refused", "waiting"
        self.target = None
        self.ring = []
        self.printed = False  # steps already shown (interactive mode)

    def add(self, t_ms, kind, text, **data):
        self.steps.append(Step(t_ms, kind, text, data))

    def as_dict(self):
        return {
            "outcome": self.outcome,
            "target": list(self.target) if self.target else None,
            "ring": [{"legs": [list(leg) for leg in legs], "seconds": secs} for legs, secs in self.ring],
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


def _ring(site, result, t_ms, target):
    plan = ringplan.ring_plan(site, target)
    result.ring = plan
    for legs, secs in plan:
        text = ", ".join(_leg_text(site, leg) for leg in legs)
        result.add(
            t_ms,
            "ring",
            "rings %s%s" % (text, " for %s s" % secs if secs else ""),
            legs=[list(leg) for leg in legs],
            seconds=secs,
        )
        t_ms += (secs or 0) * 1000


def _narrate(site, result, t_ms, actions):
    for a in actions:
        if a[0] == "menu":
            result.add(
                t_ms, "menu", "enters %s" % ("dial-by-name" if a[1] == "directory" else "menu '%s'" % a[1]), menu=a[1]
            )
        elif a[0] == "play":
            what = a[3] or a[2]
            result.add(t_ms, "play", "plays %s" % (repr(what) if what else "(silence)"), prompt=a[1], audio=a[3])
        elif a[0] == "transfer":
            result.outcome = "transfer"
            result.target = a[1]
            result.add(
                t_ms, "transfer", "puts the caller through to %s" % describe_target(site, a[1]), target=list(a[1])
            )
            _ring(site, result, t_ms, a[1])
        elif a[0] == "hangup":
            result.outcome = "hangup"
            result.add(t_ms, "hangup", "hangs up (%s)" % a[1], reason=a[1])


def parse_keys(script):
    """Validate a key script; returns it stripped of spaces. Raises ValueError."""
    keys = script.replace(" ", "")
    for k in keys:
        if k not in "0123456789*#,.":
            raise ValueError("'%s' is not a key: use 0-9 * #, ',' to wait 1 s, '.' to wait for a timeout" % k)
    return keys


def run_attendant(site, tm, keys="", entry=None, attendant=None):
    """Simulate an outside call; returns a Result."""
    result = Result()
    a = attendant or Attendant(site, tm, entry)
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


def inbound(site, number, tm, keys=""):
    """An outside call to `number` (a DID, or a short number such as a menu's)."""
    entry, how = _entry(site, number)
    result = run_attendant(site, tm, keys, entry=entry)
    state = "open" if site.is_open(tm) else "closed"
    result.steps.insert(0, Step(0, "call", "outside call to %s, %s" % (how, state)))
    return result


def internal(site, caller, digits, tm, keys=""):
    """A staff call: extension `caller` dials `digits` (en bloc, as a SIP phone sends them)."""
    result = Result()
    ext = site.extension(caller)
    if ext is None:
        result.outcome = "refused"
        result.add(0, "refused", "%s is not an extension of this site" % caller, status=403)
        return result
    result.add(0, "call", "%s %s dials %s" % (caller, ext.name, digits))
    status, target = site.dialplan.match(digits)
    if status == dialplan.NEED_MORE:
        result.outcome = "refused"
        result.add(0, "refused", "%s is incomplete: it is only the start of a number" % digits, status=484)
        return result
    if status == dialplan.NO_MATCH:
        result.outcome = "refused"
        result.add(0, "refused", "%s is not a number here" % digits, status=404)
        return result
    if status == dialplan.MATCH_OR_MORE:
        result.add(0, "wait", "waits %d ms for more digits, then takes %s" % (site.interdigit_ms, digits))
    cls = ext.cls or site.default_class
    verdict = site.dialplan.authorize(cls, target)
    if verdict == dialplan.FORBIDDEN:
        result.outcome = "refused"
        result.add(0, "refused", "class '%s' may not dial %s numbers" % (cls, target[2]), status=403)
        return result
    if verdict == dialplan.NEED_PIN:
        result.add(0, "pin", "asks for %s's PIN before dialing a %s number" % (caller, target[2]))
    if target[0] == "menu":
        inner = run_attendant(site, tm, keys, entry="menu:" + target[1])
        result.steps += inner.steps
        result.outcome, result.target, result.ring = inner.outcome, inner.target, inner.ring
        return result
    result.outcome = "transfer"
    result.target = target
    result.add(0, "transfer", "connects to %s" % describe_target(site, target), target=list(target))
    _ring(site, result, 0, target)
    return result


def _entry(site, number):
    """Where an outside call to `number` starts: (entry target text or None, description)."""
    entry = ((site.trunk or {}).get("did") or {}).get(number)
    if entry is not None:
        return entry, "DID %s" % number
    t = site.dialplan.lookup(number) if number else None
    if t is not None:
        return ("menu:" + t[1] if t[0] == "menu" else t[1]), "short number %s" % number
    return None, "the main number"


def interactive(site, tm, ask, say, number=""):
    """Simulate an outside call typed live: ask(prompt) -> a line of keys; say(text) prints."""
    a = Attendant(site, tm, _entry(site, number)[0])
    result = Result()
    now = 0
    shown = 0

    def flush():
        nonlocal shown
        for step in result.steps[shown:]:
            say("%7.1fs  %s" % (step.t_ms / 1000.0, step.text))
        shown = len(result.steps)

    say("outside call: type keys (0-9 * #) and Enter; Enter alone waits for the timeout; q hangs up")
    _narrate(site, result, now, a.start(now))
    while not a.done and len(result.steps) < MAX_STEPS:
        flush()
        line = ask("keys", default="", show_default=False).strip()
        if line == "q":
            result.outcome = "hangup"
            result.add(now, "hangup", "caller hangs up")
            break
        try:
            keys = parse_keys(line) if line else "."
        except ValueError as e:
            say(str(e))
            continue
        now = run_keys(site, a, result, now, keys)
    flush()
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
            result.add(now, "key", "caller presses %s" % k, key=k)
            _narrate(site, result, now, a.key(k, now))
    return now
