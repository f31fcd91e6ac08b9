"""The shape of a site: which keys exist, their types and defaults.

`normalize(raw)` takes the dict parsed from site.toml (or carried in a bundle), checks every
key's type, fills defaults and reports unknown keys with a "did you mean" hint. Semantic
rules (duplicate numbers, missing targets ...) live in `checks.py`; this module only knows
shapes. It runs on the device too, so a bundle is re-checked by the very same table.
"""

REQUIRED = "<required>"

# type names: str int num bool strs (list of str) map (str -> str) tz (offset table)
BRANCH = {
    "name": ("str", REQUIRED),
    "country": ("str", REQUIRED),
    "timezone": ("str", REQUIRED),
    "language": ("str", "en"),
    "tz": ("tz", None),
}
STAFF = {
    "file": ("str", "staff.csv"),
    "default_class": ("str", "internal"),
    "realm": ("str", "zongji"),
    "digest": ("strs", ["MD5"]),
}
DIALPLAN = {"interdigit_timeout": ("num", 3), "outside_prefix": ("str", "0")}
OPERATOR = {"target": ("str", REQUIRED)}
ATTENDANT = {"main_menu": ("str", "main"), "dial_by_name": ("bool", True), "name_min_keys": ("int", 3)}
MENU = {
    "prompt": ("str", None),
    "audio": ("str", None),
    "number": ("str", None),
    "timeout": ("num", 5),
    "retries": ("int", 2),
    "on_timeout": ("str", "operator"),
    "on_invalid": ("str", "operator"),
    "dial_extensions": ("bool", False),
    "options": ("map", REQUIRED),
}
GROUP = {
    "name": ("str", REQUIRED),
    "members": ("strs", REQUIRED),
    "strategy": ("str", "ring-all"),
    "member_timeout": ("num", 15),
}
HOURS = {
    "open": ("strs", REQUIRED),
    "holidays": ("strs", []),
    "workdays": ("strs", []),
    "closed": ("str", REQUIRED),
}
SOUNDS = {"ringback": ("str", None), "hold": ("str", None)}  # recordings (WAV/MP3), site-relative
DIALOUT_CLASS = {"allow": ("strs", REQUIRED), "pin": ("strs", [])}
TRUNK = {
    "host": ("str", REQUIRED),
    "port": ("int", 5060),
    "username": ("str", REQUIRED),
    "password": ("str", REQUIRED),
    "register": ("bool", True),
    "did": ("map", {}),
}

# section -> (kind, keys); kind: "table" (always present), "optional" (None when absent),
# "named" (a table of tables, e.g. [menus.main]), "required"
SECTIONS = {
    "branch": ("required", BRANCH),
    "staff": ("table", STAFF),
    "dialplan": ("table", DIALPLAN),
    "operator": ("required", OPERATOR),
    "attendant": ("table", ATTENDANT),
    "menus": ("named", MENU),
    "groups": ("named", GROUP),
    "hours": ("optional", HOURS),
    "sounds": ("table", SOUNDS),
    "dialout": ("dialout", None),
    "trunk": ("optional", TRUNK),
}

# A class every site has, so a fresh extension can never dial out by accident.
BUILTIN_CLASSES = {"internal": {"allow": [], "pin": []}}

_TYPE_WORDS = {
    "str": "a string in quotes",
    "int": "a whole number",
    "num": "a number",
    "bool": "true or false",
    "strs": 'a list of strings, e.g. ["a", "b"]',
    "map": 'a table of strings, e.g. { "1" = "201" }',
    "tz": "a compiled time-zone table",
    "table": "a table",
}


def distance(a, b, limit=3):
    """Levenshtein distance, giving up (returning limit) once it reaches `limit`."""
    if abs(len(a) - len(b)) >= limit:
        return limit
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        best = i
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if cur[j] < best:
                best = cur[j]
        if best >= limit:
            return limit
        prev = cur
    return min(prev[len(b)], limit)


def suggest(word, choices):
    """The closest of `choices` to a mistyped `word`, or None."""
    best = None
    best_d = 3
    for c in sorted(choices):
        d = distance(word.lower(), c.lower())
        if d < best_d:
            best, best_d = c, d
    return best


def unknown_key_message(key, choices, where):
    hint = suggest(key, choices)
    msg = "unknown key '%s' in %s" % (key, where)
    if hint:
        return msg + ": did you mean '%s'?" % hint
    return msg + " (known keys: %s)" % ", ".join(sorted(choices))


def _type_ok(kind, value):
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "num":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "strs":
        if not isinstance(value, list):
            return False
        for v in value:
            if not isinstance(v, str):
                return False
        return True
    if kind == "map":
        if not isinstance(value, dict):
            return False
        for k in value:
            if not isinstance(value[k], str):
                return False
        return True
    if kind == "tz":
        if not isinstance(value, list) or not value:
            return False
        for row in value:
            if not isinstance(row, list) or len(row) != 2:
                return False
            if not isinstance(row[0], int) or not isinstance(row[1], int):
                return False
        return True
    return False


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _quoted(value):
    return '"%s"' % value


def _quote_hint(kind, key, value):
    """For numbers written where strings belong (members = [201, 202]): how to write them."""
    if kind == "str" and _number(value):
        return ": quote it, %s = %s" % (key, _quoted(value))
    if kind == "strs" and isinstance(value, list):
        for v in value:
            if _number(v):
                shown = [_quoted(v) if _number(v) else repr(v) for v in value[:4]]
                more = ", ..." if len(value) > 4 else ""
                return ": quote them, %s = [%s%s]" % (key, ", ".join(shown), more)
    if kind == "map" and isinstance(value, dict):
        for k in value:
            if _number(value[k]):
                return ': quote the numbers, e.g. "%s" = %s' % (k, _quoted(value[k]))
    return ""


def _copy(value):
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _table(raw, keys, path, problems, where):
    """Check one table against its key spec; returns the normalised dict."""
    out = {}
    for key in raw:
        if key not in keys:
            problems.append(("error", path + (key,), unknown_key_message(key, keys, where)))
    for key in keys:
        kind, default = keys[key]
        if key in raw:
            value = raw[key]
            finite = not isinstance(value, float) or value - value == 0  # inf - inf is nan
            if not finite:
                problems.append(("error", path + (key,), "'%s' in %s must be a finite number" % (key, where)))
                value = _copy(default) if default is not REQUIRED else None
            elif kind == "num" and isinstance(value, float) and value == int(value):
                value = int(value)
            if finite and not _type_ok(kind, value):
                problems.append(
                    (
                        "error",
                        path + (key,),
                        "'%s' in %s must be %s%s" % (key, where, _TYPE_WORDS[kind], _quote_hint(kind, key, value)),
                    )
                )
                value = _copy(default) if default is not REQUIRED else None
            elif finite and kind in ("num", "int") and value < 0:
                problems.append(("error", path + (key,), "'%s' in %s must not be negative" % (key, where)))
            out[key] = value
        elif default is REQUIRED:
            problems.append(("error", path, "%s needs '%s'" % (where, key)))
            out[key] = None
        elif default is not None:  # optional keys without a default stay absent
            out[key] = _copy(default)
    return out


def _named(raw, keys, path, problems, what):
    out = {}
    for name in raw:
        value = raw[name]
        where = "[%s.%s]" % (".".join(path), name)
        if not isinstance(value, dict):
            problems.append(("error", path + (name,), "%s must be a table" % where))
            continue
        out[name] = _table(value, keys, path + (name,), problems, where)
    return out


def normalize(raw):
    """Check a raw site dict; returns (site, problems). `site` always has every section."""
    problems = []
    site = {}
    if not isinstance(raw, dict):
        return {}, [("error", (), "the site must be a table of sections")]
    for section in raw:
        if section not in SECTIONS:
            problems.append(("error", (section,), unknown_key_message(section, SECTIONS, "site.toml")))
    for section in SECTIONS:
        kind, keys = SECTIONS[section]
        value = raw.get(section)
        where = "[%s]" % section
        if value is not None and not isinstance(value, dict):
            problems.append(("error", (section,), "%s must be a table" % where))
            value = None
        if kind == "named":
            site[section] = _named(value or {}, keys, (section,), problems, section)
        elif kind == "dialout":
            site[section] = _dialout(value or {}, problems)
        elif value is None and kind == "optional":
            site[section] = None
        elif value is None and kind == "required":
            problems.append(("error", (), "site.toml needs a %s table" % where))
            site[section] = _table({}, keys, (section,), [], where)
        else:
            site[section] = _table(value or {}, keys, (section,), problems, where)
    return site, problems


def _dialout(raw, problems):
    for key in raw:
        if key != "classes":
            problems.append(("error", ("dialout", key), unknown_key_message(key, ["classes"], "[dialout]")))
    classes = raw.get("classes") or {}
    if not isinstance(classes, dict):
        problems.append(("error", ("dialout", "classes"), "[dialout.classes] must be a table"))
        classes = {}
    out = {}
    for name in BUILTIN_CLASSES:
        out[name] = {"allow": [], "pin": []}
    out.update(_named(classes, DIALOUT_CLASS, ("dialout", "classes"), problems, "class"))
    return {"classes": out}
