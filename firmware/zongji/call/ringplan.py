"""Ring plans: who rings, in what order, for how long, once a call has a target.

`ring_plan(site, target, caller)` turns a dial-plan target into stages. Each stage is
`(legs, seconds)`: the legs ring together (a parallel fork) for `seconds` (None = until the
caller gives up), then the next stage starts. A leg is ("desk", number) — every registered
contact of that extension — or ("trunk", outside_number).

    extension                 [([desk], None)]
    extension with follow-me  [([desk], N), ([trunk mobile], None)]
    mobile-only colleague     [([trunk mobile], None)]
    ring-all group            [([desk of each member], member_timeout)]
    in-order group            [([member 1], t), ([member 2], t), ...]
    outside / emergency       [([trunk number], None)]

A group never rings the caller's own phone or mobile: 201 calling the sales group that 201 is
in rings the others. The call decision (call.decision) asks for the plan; the switch carries it
out and `zongji simulate` prints it.
"""


def _person(site, number):
    ext = site.extension(number)
    if ext is None:
        return None
    if ext.has_phone():
        return ("desk", number)
    if ext.mobile:
        return ("trunk", ext.mobile)
    return None


def ring_plan(site, target, caller=None):
    """The stages for `target`; `caller` (an extension number, or None for an outside caller)
    is left out of group stages."""
    kind = target[0]
    if kind == "ext":
        ext = site.extension(target[1])
        if ext is None:
            return []
        if not ext.has_phone():
            return [([("trunk", ext.mobile)], None)] if ext.mobile else []
        if ext.follow_me and ext.mobile:
            return [([("desk", ext.number)], ext.follow_me), ([("trunk", ext.mobile)], None)]
        return [([("desk", ext.number)], None)]
    if kind == "group":
        g = site.groups.get(target[1])
        if g is None:
            return []
        legs = [leg for leg in (_person(site, m) for m in g["members"] if m != caller) if leg is not None]
        t = g["member_timeout"]
        if g["strategy"] == "in-order":
            return [([leg], t) for leg in legs]
        return [(legs, t)] if legs else []
    if kind in ("external", "emergency"):
        return [([("trunk", target[1])], None)]
    return []
