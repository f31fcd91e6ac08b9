"""Semantic checks of a normalised site: what makes a branch work for callers.

Shapes and types are `schema.py`'s job; this module checks meaning: the short-number space
(duplicates, prefixes that force an inter-digit wait, emergency collisions), that every
target exists, that menus are reachable and escapable, ring groups, opening hours and the
dial-out classes (`staffchecks`: each staff row, classes, digests).

Problems are `(level, path, message)` (see docs/internals.md). Walks over menus are
iterative, so a 100-level menu tree costs a loop, not a stack overflow.
"""

from zongji.site import countries, hours, staffchecks, targets
from zongji.text import is_digits

MIN_DIGITS = 2
MAX_DIGITS = 6
MAX_MENU_DEPTH = 10  # the device keeps a bounded "back" stack; deeper trees lose callers anyway
NUMBER_KINDS = staffchecks.NUMBER_KINDS
STRATEGIES = ("ring-all", "in-order")
LANGUAGES = ("en", "zh")


def _err(problems, path, msg):
    problems.append(("error", path, msg))


def _warn(problems, path, msg):
    problems.append(("warning", path, msg))


MAX_ERRORS = 20  # errors kept when only errors are asked for (the device shows the first)


class ErrorsOnly:
    """Where the checks put problems when only errors are wanted (bundle.load on the device):
    warnings are dropped as they come and at most MAX_ERRORS errors kept, so a broken
    1000-row bundle cannot fill the heap with messages nobody reads."""

    def __init__(self):
        self.items = []

    def append(self, problem):
        if problem[0] == "error" and len(self.items) < MAX_ERRORS:
            self.items.append(problem)


def check(site, extensions, warnings=True):
    """All semantic checks; returns a list of problems. warnings=False: errors only (the first
    MAX_ERRORS), and the checks that can only warn (overlapping hours, a workday that is also a
    holiday, numbers that start others) are not run: what bundle.load on the device wants, where
    nobody reads a warning. `extensions` is walked twice, one row at a time; given a Directory's
    view with warnings=False, its index stands in for the short numbers of the extensions, so
    the heap the checks take does not grow with the staff (bundle.load, on a small heap)."""
    problems = [] if warnings else ErrorsOnly()
    for _ in check_steps(site, extensions, problems, warnings):
        pass
    return problems if warnings else problems.items


def check_steps(site, extensions, problems, warnings=True):
    """check() as a generator that yields after each extension row it reads (each row is read
    twice), appending to `problems` (a list, or an ErrorsOnly): a shell can serve calls between
    rows while a sync loads, and a bench can measure the heap at every step (bundle.Loader)."""
    branch = site.get("branch") or {}
    country = branch.get("country")
    if country not in countries.SUPPORTED:
        if country is not None:
            _err(
                problems,
                ("branch", "country"),
                "unknown country '%s': use one of %s" % (country, ", ".join(countries.SUPPORTED)),
            )
        country = None
    if branch.get("language") not in LANGUAGES:
        _err(problems, ("branch", "language"), "language must be one of: %s" % ", ".join(LANGUAGES))
    if branch.get("timezone") and not branch.get("tz"):
        _err(
            problems,
            ("branch", "timezone"),
            "time zone '%s' was not compiled: check its spelling, e.g. Asia/Shanghai" % branch.get("timezone"),
        )
    directory = None if warnings else getattr(extensions, "directory", None)
    numbers = _Numbers(directory)
    for _ in _check_numbers(site, extensions, country, problems, numbers, warnings):
        yield
    for _ in staffchecks.check_extensions(site, extensions, country, problems):
        yield
    _check_groups(site, numbers, problems)
    _check_targets(site, numbers, problems)
    _check_menus(site, numbers, problems, warnings)
    _check_hours(site, problems, warnings)
    staffchecks.check_dialout(site, problems)
    staffchecks.check_digest(site, problems)


class _Numbers:
    """The short-number space: number -> (kind, path, label), as a dict would answer.

    Given a Directory (the device's loader), the extensions' numbers are not copied: its index
    answers for them, and `refused` holds those that failed a check (they are not in the space).
    A Directory has no duplicates (add() refuses them), so only groups and menus can clash."""

    def __init__(self, directory=None):
        self.own = {}
        self.directory = directory
        self.refused = {}

    def get(self, num, default=None):
        v = self.own.get(num)
        if v is not None:
            return v
        d = self.directory
        if d is not None and num not in self.refused and d.has(num):
            return ("extension", ("staff",), d.get(num).name)
        return default

    def __contains__(self, num):
        return self.get(num) is not None

    def __iter__(self):
        for num in self.own:
            yield num
        if self.directory is not None:
            for num in self.directory.numbers():
                if num not in self.refused:
                    yield num

    def __getitem__(self, num):
        return self.get(num)


def _number_problem(num, numbers, emergency, prefix):
    """Why `num` cannot join the short-number space, or None."""
    if not is_digits(num) or not MIN_DIGITS <= len(num) <= MAX_DIGITS:
        return "short number '%s' must be %d to %d digits" % (num, MIN_DIGITS, MAX_DIGITS)
    if numbers is not None:
        other = numbers.get(num)
        if other is not None:
            return "short number %s is already used by %s %s (%s)" % (num, other[0], num, other[2])
    for e in emergency:
        if num.startswith(e) or e.startswith(num):
            return (
                "short number %s collides with the emergency number %s; emergency calls "
                "must never be delayed or captured: pick another number" % (num, e)
            )
    if prefix and num.startswith(prefix):
        return (
            "short number %s starts with the outside-line prefix %s: staff dialing it "
            "would get an outside line; renumber it or change [dialplan] outside_prefix" % (num, prefix)
        )
    return None


def _check_numbers(site, extensions, country, problems, numbers, warnings=True):
    """Fill the short-number space `numbers` (see _Numbers), yielding after each extension.
    Reports bad numbers, duplicates, clashes; with warnings, the numbers that start others."""
    directory = numbers.directory
    prefix = (site.get("dialplan") or {}).get("outside_prefix") or ""
    if not is_digits(prefix) or len(prefix) > 2:
        _err(problems, ("dialplan", "outside_prefix"), 'outside_prefix must be 1 or 2 digits, e.g. "0" or "9"')
        prefix = ""
    emergency = countries.emergency(country) if country else ()
    wait = (site.get("dialplan") or {}).get("interdigit_timeout") or 3
    if directory is not None:  # only its numbers are read: no record is decoded
        for i, num in enumerate(directory.numbers()):
            why = _number_problem(num, None, emergency, prefix)
            if why:
                _err(problems, ("staff", i, "number"), why)
                numbers.refused[num] = 1
            yield
    else:
        for i, ext in enumerate(extensions):
            num = ext.get("number") or ""
            path = ("staff", i, "number")
            why = _number_problem(num, numbers, emergency, prefix)
            if why:
                _err(problems, path, why)
            else:
                numbers.own[num] = ("extension", path, ext.get("name") or "")
            yield
    groups = site.get("groups") or {}
    menus = site.get("menus") or {}
    others = [(num, "group", ("groups", num), (groups[num] or {}).get("name") or "") for num in groups]
    for name in menus:
        if menus[name].get("number"):
            others.append((menus[name]["number"], "menu", ("menus", name, "number"), name))
    for num, kind, path, label in others:
        why = _number_problem(num, numbers, emergency, prefix)
        if why:
            _err(problems, path, why)
        else:
            numbers.own[num] = (kind, path, label)
    if not warnings:
        return
    # One sorted pass finds every prefix pair: a prefix sorts right before its extensions.
    ordered = sorted(numbers)
    for i, num in enumerate(ordered):
        j = i + 1
        longer = []
        while j < len(ordered) and ordered[j].startswith(num):
            longer.append(ordered[j])
            j += 1
        if longer:
            _warn(
                problems,
                numbers[num][1],
                "short number %s is the start of %s: whoever dials %s waits %s s "
                "for another digit before the call goes through"
                % (num, ", ".join(longer[:3]) + (" …" if len(longer) > 3 else ""), num, wait),
            )


def _suggest(word, choices):
    from zongji.site.schema import suggest

    hint = suggest(word, choices)
    return ": did you mean '%s'?" % hint if hint else ""


def _check_groups(site, numbers, problems):
    groups = site.get("groups") or {}
    for num in groups:
        g = groups[num]
        path = ("groups", num)
        members = g.get("members") or []
        if not members:
            _err(problems, path + ("members",), "ring group %s has no members" % num)
        seen = {}
        for m in members:
            kind = numbers.get(m, (None,))[0]
            if kind is None:
                _err(problems, path + ("members",), "ring group %s lists %s, which is not an extension" % (num, m))
            elif kind != "extension":
                _err(
                    problems,
                    path + ("members",),
                    "ring group %s lists %s, a %s: members must be extensions" % (num, m, kind),
                )
            if m in seen:
                _warn(problems, path + ("members",), "ring group %s lists %s twice" % (num, m))
            seen[m] = 1
        if g.get("strategy") not in STRATEGIES:
            _err(
                problems,
                path + ("strategy",),
                "strategy of ring group %s must be one of: %s" % (num, ", ".join(STRATEGIES)),
            )
        if not g.get("member_timeout"):
            _err(problems, path + ("member_timeout",), "member_timeout of ring group %s must be above 0" % num)


def _target_problem(text, numbers, site, in_menu):
    """None if `text` names something that exists, else the reason why not."""
    t = targets.parse(text)
    if t is None:
        name = text.strip() if isinstance(text, str) else ""
        if name and name in (site.get("menus") or {}):
            return "'%s' is not a target, but there is a menu of that name: write \"menu:%s\"" % (text, name)
        return "'%s' is not a target: write %s" % (text, targets.describe())
    kind, arg = t
    if kind in targets.MENU_ONLY and not in_menu:
        return "'%s' only makes sense as a menu option" % text
    if kind == targets.NUMBER and arg not in numbers:
        return "'%s' is not a short number of this site" % text
    if kind == targets.MENU and arg not in (site.get("menus") or {}):
        hint = _suggest(arg, site.get("menus") or {})
        return "there is no menu '%s'%s" % (arg, hint)
    if kind == targets.DIRECTORY and not (site.get("attendant") or {}).get("dial_by_name"):
        return "'directory' needs [attendant] dial_by_name = true"
    if kind == targets.TEL and not site.get("trunk"):
        return "'%s' needs a [trunk] to call out" % text
    return None


def _check_targets(site, numbers, problems):
    op = (site.get("operator") or {}).get("target")
    if op is not None:
        t = targets.parse(op)
        kind = numbers.get(t[1], (None,))[0] if t and t[0] == targets.NUMBER else None
        if kind not in ("extension", "group"):
            _err(
                problems,
                ("operator", "target"),
                "the operator must be an extension or ring group number, not '%s'" % op,
            )
    hrs = site.get("hours")
    if hrs and hrs.get("closed") is not None:
        why = _target_problem(hrs["closed"], numbers, site, False)
        if why:
            _err(problems, ("hours", "closed"), why)
    trunk = site.get("trunk")
    if trunk:
        did = trunk.get("did") or {}
        for k in did:
            why = _target_problem(did[k], numbers, site, False)
            if why:
                _err(problems, ("trunk", "did", k), why)
        if not 0 < (trunk.get("port") or 0) < 65536:
            _err(problems, ("trunk", "port"), "trunk port must be 1–65535")
        if trunk.get("password") == "":
            _warn(
                problems,
                ("trunk", "password"),
                "the provider password is empty: registration and outside calls will be refused by "
                "any provider that asks for one; put the account's password here",
            )


def _menu_edges(menu):
    """(path-key, target text) for every way out of a menu."""
    out = []
    options = menu.get("options") or {}
    for k in options:
        out.append((("options", k), options[k]))
    out.append((("on_timeout",), menu.get("on_timeout")))
    out.append((("on_invalid",), menu.get("on_invalid")))
    return out


def _check_menus(site, numbers, problems, warnings=True):
    menus = site.get("menus") or {}
    att = site.get("attendant") or {}
    main = att.get("main_menu")
    if main not in menus:
        _err(problems, ("attendant", "main_menu"), "main menu '%s' is not defined: add [menus.%s]" % (main, main))
    wait = (site.get("dialplan") or {}).get("interdigit_timeout") or 3
    for name in menus:
        m = menus[name]
        path = ("menus", name)
        if not targets.valid_name(name):
            _err(problems, path, "menu name '%s' may use letters, digits, '_' and '-' only" % name)
        if not m.get("prompt") and not m.get("audio"):
            _err(problems, path, "menu '%s' needs a prompt (text) or an audio file" % name)
        if not m.get("options"):
            _err(problems, path + ("options",), "menu '%s' has no options" % name)
        if m.get("retries", 0) > 9:
            _err(problems, path + ("retries",), "menu '%s' retries must be at most 9" % name)
        for key, text in _menu_edges(m):
            if key[0] == "options" and (len(key[1]) != 1 or key[1] not in "0123456789*#"):
                _err(problems, path + key, "menu option key '%s' must be one key: 0-9, * or #" % key[1])
                continue
            if text is None:
                continue
            why = _target_problem(text, numbers, site, key[0] == "options")
            if why:
                _err(problems, path + key, why)
        if warnings and m.get("dial_extensions"):
            opts = m.get("options") or {}
            for k in opts:
                starts = [n for n in numbers if n.startswith(k)]
                if starts:
                    _warn(
                        problems,
                        path + ("options", k),
                        "in menu '%s', key %s also starts short number %s: "
                        "callers pressing %s wait %s s before it is taken" % (name, k, starts[0], k, wait),
                    )
    if main in menus:
        _reachability(site, menus, main, problems)


def _menu_links(menus, name):
    """Menus a menu leads to, and whether any edge leaves the menu graph (a person, hangup)."""
    linked = []
    escapes = False
    for _key, text in _menu_edges(menus[name]):
        t = targets.parse(text) if text is not None else None
        if t is None:
            continue
        if t[0] == targets.MENU:
            if t[1] in menus:
                linked.append(t[1])
        elif t[0] not in targets.MENU_ONLY:
            escapes = True
    return linked, escapes


def _reachability(site, menus, main, problems):
    roots = [main]
    hrs = site.get("hours")
    for text in ([hrs.get("closed")] if hrs else []) + list(((site.get("trunk") or {}).get("did") or {}).values()):
        t = targets.parse(text)
        if t and t[0] == targets.MENU and t[1] in menus:
            roots.append(t[1])
    for name in menus:
        if menus[name].get("number"):
            roots.append(name)
    depth = {}
    queue = []
    for r in roots:
        if r not in depth:
            depth[r] = 1
            queue.append(r)
    i = 0
    links = {}
    while i < len(queue):  # breadth-first: depth = shortest way in
        name = queue[i]
        i += 1
        links[name] = _menu_links(menus, name)
        for nxt in links[name][0]:
            if nxt not in depth:
                depth[nxt] = depth[name] + 1
                queue.append(nxt)
    for name in menus:
        if name not in depth:
            _warn(
                problems,
                ("menus", name),
                "menu '%s' can't be reached from the main menu '%s' (nor from "
                "closed hours, a DID or a number of its own)" % (name, main),
            )
            links[name] = _menu_links(menus, name)
        elif depth[name] > MAX_MENU_DEPTH:
            _err(
                problems,
                ("menus", name),
                "menu '%s' is %d levels below the main menu (limit %d): callers get "
                "lost long before that, flatten the tree" % (name, depth[name], MAX_MENU_DEPTH),
            )
    _traps(menus, links, problems)


def _traps(menus, links, problems):
    """Menus from which no sequence of keys ever reaches a person or a goodbye."""
    # A menu escapes if it has an outside edge or links to a menu that escapes: iterate to a
    # fixed point over reversed links (linear in edges).
    back = {}
    for name in links:
        for nxt in links[name][0]:
            back.setdefault(nxt, []).append(name)
    free = {}
    queue = [n for n in links if links[n][1]]
    for n in queue:
        free[n] = True
    i = 0
    while i < len(queue):
        for prev in back.get(queue[i], ()):
            if prev not in free:
                free[prev] = True
                queue.append(prev)
        i += 1
    for name in sorted(links):
        if name not in free:
            _err(
                problems,
                ("menus", name),
                "menu '%s' is a trap: every key, timeout and invalid entry leads only "
                "to menus that never reach a person or hang up; add an option to the operator" % name,
            )


def _check_hours(site, problems, warnings=True):
    hrs = site.get("hours")
    if not hrs:
        return
    ranges = []
    for i, spec in enumerate(hrs.get("open") or []):
        try:
            for r in hours.parse_open(spec):
                ranges.append((r, i))
        except ValueError as e:
            _err(problems, ("hours", "open", i), str(e))
    if warnings:
        _overlaps(ranges, problems)
    spans = {}
    for key in ("holidays", "workdays"):
        spans[key] = []
        for i, spec in enumerate(hrs.get(key) or []):
            try:
                spans[key].append((hours.parse_days(spec), i, spec))
            except ValueError as e:
                _err(problems, ("hours", key, i), str(e))
    if not warnings:
        return
    for (first, last), i, spec in spans["workdays"]:
        for (hfirst, hlast), _j, hspec in spans["holidays"]:
            if first <= hlast and hfirst <= last:
                _warn(
                    problems,
                    ("hours", "workdays", i),
                    "workday %s is also a holiday (%s): a date listed as both opens with Monday's "
                    "hours; if it is a day off, take it out of workdays" % (spec, hspec),
                )
                break


def _overlaps(ranges, problems):
    """Opening ranges that cover the same minutes of a weekday: one per day, sorted, is linear."""
    said = {}
    for day in range(7):
        bit = 1 << day
        todays = sorted([(r[1], r[2], i) for r, i in ranges if r[0] & bit])
        reach = None  # the range reaching latest so far
        for start, end, i in todays:
            if reach is not None and start < reach[1] and i not in said:
                said[i] = True
                _warn(
                    problems,
                    ("hours", "open", i),
                    "opening hours overlap on %s: %s-%s and %s-%s; merge them into one range"
                    % (hours.DAYS[day], _hhmm(reach[0]), _hhmm(reach[1]), _hhmm(start), _hhmm(end)),
                )
            if reach is None or end > reach[1]:
                reach = (start, end)


def _hhmm(minute):
    return "%02d:%02d" % (minute // 60, minute % 60)
