"""What the switch tells its shell: small event classes, each with `kind` and `as_dict()`.

    for ev in sw.take_events():
        ev.kind                  "registered", "call", "banned", "trunk" ...
        ev.as_dict()             JSON-ready: {"event": kind, ...fields}

Times inside are the switch's now_ms; the shell turns them into wall time or seconds. Shells
print them (host mode's log, the device's status) and never parse their text back apart.
"""


class Event:
    kind = "event"
    fields = ()

    def __init__(self, *values):
        for name, value in zip(self.fields, values):
            setattr(self, name, value)

    def as_dict(self):
        out = {"event": self.kind}
        for name in self.fields:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def __repr__(self):
        return "<%s %s>" % (self.kind, self.as_dict())


class Listening(Event):
    kind = "listening"
    fields = ("host", "port")


class Registration(Event):
    """A phone's binding changed: kind is registered, unregistered, expired or replaced."""

    fields = ("number", "contact", "source")

    def __init__(self, kind, number, contact, source):
        Event.__init__(self, number, contact, source)
        self.kind = kind


class Banned(Event):
    """The guard stopped answering an address (enumeration, a flood) until `until_ms`."""

    kind = "banned"
    fields = ("ip", "until_ms", "reason")


class Locked(Event):
    """The guard stopped answering one extension at one address (a wrong password, repeated)."""

    kind = "locked"
    fields = ("ip", "number", "until_ms", "reason")


class Trunk(Event):
    """The provider registration changed state (idle, registering, registered, retrying, rejected)."""

    kind = "trunk"
    fields = ("state", "detail")


class CallEnded(Event):
    """A call is over; `record` is its call record (call.cdr keys)."""

    kind = "call"
    fields = ("record",)

    def as_dict(self):
        out = {"event": self.kind}
        out.update(self.record)
        return out


class Alert(Event):
    """Something the admin must see at once: an emergency call that could not go out."""

    kind = "alert"
    fields = ("text",)


_REGISTRATION = ("registered", "unregistered", "expired", "replaced")


def from_tuple(t):
    """The registrar's, guard's and trunk's own event tuples as events."""
    kind = t[0]
    if kind in _REGISTRATION:
        return Registration(kind, t[1], t[2], t[3])
    if kind == "banned":
        return Banned(t[1], t[2], t[3] if len(t) > 3 else "failed authentication")
    if kind == "locked":
        return Locked(t[1], t[2], t[3], t[4] if len(t) > 4 else "wrong password")
    if kind == "trunk":
        return Trunk(t[1], t[2])
    ev = Event()
    ev.kind = kind
    ev.fields = ("detail",)
    ev.detail = list(t[1:])
    return ev
