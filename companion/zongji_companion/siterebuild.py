"""A site folder rebuilt from a device's bundle: what `zongji pull` writes, so a lost PC folder
is never the end.

    site, rows, header = read_bundle(data)      the bundle's site dict and staff rows (BundleError)
    text = site_toml(site, header, note)         site.toml, editable, with a header comment
    text = staff_csv(site, rows)                 the staff CSV

The bundle holds the site as `zongji check` normalised it (every default written out), so the
rebuilt site.toml says more than the admin's own did, but means the same: `zongji bundle` of
the rebuilt folder gives the same version, on the same zongji. Two things cannot come back:

* comments and layout of the original site.toml (the bundle never had them);
* SIP secrets and PINs: the device holds only their hashes. The staff CSV gets them in the
  forms the checks accept for exactly this ("ha1:<MD5 HA1>[:<SHA-256 HA1>]", "hash:<PIN hash>",
  zongji.site.staffchecks). Those hashes are made with the realm (and a PIN's with its
  extension's number): change [staff] realm, or renumber an extension, and that phone needs a
  new password (or PIN) written in the CSV. The site.toml says so beside the realm.

`branch.tz` (the compiled time zone) is left out: `zongji bundle` compiles it again from
`branch.timezone`. The trunk password is in the bundle in the clear and comes back so.
"""

import csv
import io
import json

from zongji.site.bundle import BundleError, read_header
from zongji.site.directory import FIELDS, HA1_COLUMNS
from zongji.site.staffchecks import HA1_PREFIX, PIN_PREFIX

ORDER = ("branch", "staff", "dialplan", "operator", "attendant", "sounds", "menus", "groups", "hours", "dialout",
         "trunk")  # fmt: skip
LEFT_OUT = {("branch", "tz")}  # compiled from branch.timezone by `zongji bundle`
CSV_COLUMNS = ("number", "name", "department", "secret", "mobile", "class", "follow_me", "pin")
_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def read_bundle(data):
    """(site dict, [row dict by directory.FIELDS], header) of bundle bytes. Checks the header
    and the SHA-256 (a damaged backup is no base to rebuild from); BundleError otherwise."""
    import hashlib

    lines = data.split(b"\n")
    header = read_header(lines[0])
    body = data[len(lines[0]) + 1 :]
    if hashlib.sha256(body).hexdigest() != header["sha256"]:
        raise BundleError("bundle content does not match its sha256: it was damaged or altered")
    try:
        site = json.loads(lines[1].decode())
        rows = [dict(zip(FIELDS, json.loads(line.decode()))) for line in lines[2:] if line.strip()]
    except (IndexError, ValueError, UnicodeError) as e:
        raise BundleError("the bundle does not parse: %s" % e) from None
    if not isinstance(site, dict) or len(rows) != header["count"]:
        raise BundleError("the bundle holds %d extensions, its header says %d" % (len(rows), header["count"]))
    return site, rows, header


# ---------------------------------------------------------------- TOML


def _key(k):
    k = str(k)
    # digits are a bare key too, but "1" = ... reads as the key pressed, as site.toml has it
    return k if k and all(c in _BARE for c in k) and not k.isdigit() else _string(k)


def _string(s):
    out = ['"']
    for c in s:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 32 or ord(c) == 127:
            out.append("\\u%04x" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _scalar(v):
    return isinstance(v, (str, bool, int, float))


def _value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join("%s = %s" % (_key(k), _value(v[k])) for k in v) + " }"
    if v is None:
        raise ValueError("TOML has no null")
    raise ValueError("can't write %r as TOML" % (v,))


def _inline(v):
    """A dict written on its key's line: one whose values are all plain (menu options, DIDs)."""
    return isinstance(v, dict) and all(_scalar(x) for x in v.values())


def _table(out, path, table):
    here = [k for k in table if tuple(path) + (k,) not in LEFT_OUT]
    plain = [k for k in here if table[k] is not None and not (isinstance(table[k], dict) and not _inline(table[k]))]
    nested = [k for k in here if isinstance(table[k], dict) and not _inline(table[k])]
    if plain or not nested:
        out.append("")
        out.append("[%s]" % ".".join(_key(p) for p in path))
        for k in plain:
            out.append("%s = %s" % (_key(k), _value(table[k])))
    for k in nested:
        _table(out, path + [k], table[k])


def site_toml(site, header=None, note=None):
    """The site dict as site.toml text (a header comment first, `note` lines in it)."""
    out = ["# zongji site file, rebuilt by `zongji pull` from the device's bundle"]
    if header is not None:
        out.append("# version %s (%d staff)" % (header.get("sha256", "?"), header.get("count", 0)))
    for line in note or ():
        out.append("# " + line)
    out += [
        "# Every value is written out, defaults too; comments of the original file are not in a bundle.",
        "# Check it with `zongji check`, then edit and `zongji sync` as usual. Keys: docs/site-format.md.",
    ]
    keys = [k for k in ORDER if k in site] + sorted(k for k in site if k not in ORDER)
    for k in keys:
        v = site[k]
        if isinstance(v, dict):
            if k == "staff":
                _staff_table(out, v)
            else:
                _table(out, [k], v)
        else:
            out.append("%s = %s" % (_key(k), _value(v)))  # pragma: no cover - a site has tables only
    return "\n".join(out).lstrip("\n") + "\n"


def _staff_table(out, staff):
    out.append("")
    out.append("[staff]")
    for k in staff:
        if k == "realm":
            out.append("# The secrets in the staff CSV are hashes made with this realm: changing it")
            out.append("# needs every desk phone's password written in the CSV again.")
        out.append("%s = %s" % (_key(k), _value(staff[k])))


# ---------------------------------------------------------------- the staff CSV


def stored_secret(row):
    """A row's HA1s as the CSV's "ha1:..." form, "" when the extension has no desk phone."""
    md5 = row[FIELDS[HA1_COLUMNS["MD5"][0]]]
    sha = row[FIELDS[HA1_COLUMNS["SHA-256"][0]]]
    if not md5 and not sha:
        return ""
    return HA1_PREFIX + md5 + (":" + sha if sha else "")


def staff_csv(rows):
    """The staff CSV text for bundle rows: secrets and PINs as their hashes."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow(
            [
                r["number"],
                r["name"],
                r["department"],
                stored_secret(r),
                r["mobile"],
                r["class"],
                str(r["follow_me"]) if r["follow_me"] else "",
                PIN_PREFIX + r["pin_hash"] if r["pin_hash"] else "",
            ]
        )
    return buf.getvalue()
