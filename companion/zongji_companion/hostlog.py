"""Host mode's log: the switch's events (zongji.switch.events) as lines for people or JSON.

Lines carry the branch's local time, labelled with its UTC offset (`14:03:07+08:00`), the same
clock `zongji cdr` prints, so a log line and a call record of the same call agree.
"""

import time

from zongji.site.hours import utc_offset
from zongji.text import bracket_host


def clean(text):
    # peers choose contact URIs and caller names: no terminal escape sequences in the log
    return "".join(c if c >= " " and c != "\x7f" else "?" for c in str(text))


def hostport(host, port):
    return "%s:%d" % (bracket_host(host), port)


def _who(site, number):
    ext = site.extension(number) if number else None
    return "%s %s" % (number, ext.name) if ext is not None else number


def _seconds_left(until_ms, now):
    return max(0, (until_ms - now + 999) // 1000)


def describe(event, site, now):
    """One event as a line for people, or None for one the banner already told."""
    kind = event.kind
    if kind == "listening":
        return None
    if kind in ("registered", "unregistered", "expired", "replaced"):
        ip, port = event.source
        where = " from %s" % hostport(ip, port) if kind == "registered" else ""
        return clean("%s %s%s (%s)" % (kind, _who(site, event.number), where, event.contact))
    if kind == "banned":
        return clean("banned %s for %d s: %s" % (event.ip, _seconds_left(event.until_ms, now), event.reason))
    if kind == "locked":
        return clean(
            "locked %s at %s for %d s: %s"
            % (_who(site, event.number), event.ip, _seconds_left(event.until_ms, now), event.reason)
        )
    if kind == "call":
        r = event.record
        text = "call %s -> %s: %s" % (r["from"] or "?", r["to"] or "?", r["outcome"])
        if r["outcome"] == "answered":
            if r.get("by"):
                text += " by " + _who(site, r["by"])
            return clean(text + ", %d s" % r["duration"])
        text += " (%d)" % r["status"] if r["status"] else ""
        return clean(text + (": " + r["reason"] if r.get("reason") else ""))
    if kind == "trunk":  # the detail often starts with the state
        state, detail = event.state, event.detail or ""
        return clean("trunk " + (detail if detail.startswith(state) else "%s: %s" % (state, detail)))
    if kind == "alert":
        return clean("ALERT: " + event.text)
    return clean("%s %s" % (kind, event.as_dict()))


def as_json(event, now):
    """One event as a JSON-ready dict (`--json-events`)."""
    out = event.as_dict()
    out["time"] = round(time.time(), 3)
    for key in ("until_ms",):
        if key in out:
            out["seconds"] = _seconds_left(out.pop(key), now)
    return out


def stamp(site, utc_s=None):
    """'HH:MM:SS+08:00': the branch's local time, with its offset."""
    utc_s = int(time.time()) if utc_s is None else int(utc_s)
    tm = site.local_time(utc_s)
    offset = utc_offset(utc_s, site.tz)
    sign = "+" if offset >= 0 else "-"
    offset = abs(offset)
    return "%02d:%02d:%02d%s%02d:%02d" % (tm[3], tm[4], utc_s % 60, sign, offset // 3600, offset % 3600 // 60)
