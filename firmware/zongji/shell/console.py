"""The device's console lines: one per switch event, in host mode's words.

line = describe(event, now_ms, site)    None for an event the banner already told
"""

import json


def describe(event, now=0, site=None):
    """One event as a line for the console (host mode's words), None for 'listening'."""
    kind = event.kind

    def who(number):
        ext = site.extension(number) if site is not None and number else None
        return "%s %s" % (number, ext.name) if ext is not None else number

    if kind == "listening":
        return None
    if kind in ("registered", "unregistered", "expired", "replaced"):
        where = " from %s:%d" % tuple(event.source) if kind == "registered" else ""
        return "%s %s%s (%s)" % (kind, who(event.number), where, event.contact)
    if kind == "call":
        r = event.record
        text = "call %s -> %s: %s" % (r["from"] or "?", r["to"] or "?", r["outcome"])
        if r["outcome"] == "answered":
            if " -> " in r["route"]:
                text += " by " + who(r["route"].rsplit(" -> ", 1)[1])
            return text + ", %d s" % r["duration"]
        text += " (%d)" % r["status"] if r["status"] else ""
        return text + (": " + r["reason"] if r.get("reason") else "")
    if kind == "banned":
        return "banned %s for %d s: %s" % (event.ip, _left(event.until_ms, now), event.reason)
    if kind == "locked":
        return "locked %s at %s for %d s: %s" % (who(event.number), event.ip, _left(event.until_ms, now), event.reason)
    if kind == "trunk":
        return "trunk %s: %s" % (event.state, event.detail or "")
    if kind == "alert":
        return "ALERT: " + event.text
    d = event.as_dict()
    d.pop("event", None)
    return "%s %s" % (kind, json.dumps(d))


def _left(until_ms, now):
    return max(0, (until_ms - now + 999) // 1000)
