"""The site as the switchboard runs it: directory, dial plan, menus, hours, in one object.

Built from a normalised site dict and extension rows, either by the bundle loader on the
device or directly by the companion (simulate, host mode). Everything a call needs to decide
where to go is reached from here; it holds no per-call state.
"""

from zongji.site import hours, targets
from zongji.site.dialplan import DialPlan
from zongji.site.directory import Directory


def realm_of(site):
    """The digest realm of a normalised site dict: HA1s and PIN hashes are made with it."""
    return (site.get("staff") or {}).get("realm") or "zongji"


def digest_of(site):
    """The digest algorithms a normalised site dict offers, preferred first."""
    return tuple((site.get("staff") or {}).get("digest") or ("MD5",))


class Site:
    """`rows` are directory rows (directory.FIELDS: HA1s and PIN hashes, as bundle.stored_row
    makes them from staff rows with this site's realm), or pass a filled `directory`."""

    def __init__(self, site, rows=(), directory=None, version=""):
        self.data = site
        self.version = version
        self.branch = site["branch"]
        self.country = self.branch["country"]
        self.language = self.branch.get("language") or "en"
        self.tz = self.branch.get("tz") or [[0, 0]]
        self.realm = realm_of(site)
        self.digest = digest_of(site)
        self.directory = directory if directory is not None else Directory(self.digest)
        for row in rows:
            self.directory.add(row)
        self.directory.freeze()
        self.groups = site.get("groups") or {}
        self.menus = site.get("menus") or {}
        self.attendant = site.get("attendant") or {}
        self.sounds = site.get("sounds") or {}
        self.hours = hours.Hours(site["hours"]) if site.get("hours") else None
        self.trunk = site.get("trunk")
        self.default_class = (site.get("staff") or {}).get("default_class") or "internal"
        dp = site.get("dialplan") or {}
        self.interdigit_ms = int((dp.get("interdigit_timeout") or 3) * 1000)
        self.dialplan = DialPlan(
            self.directory,
            self.groups,
            self.menus,
            self.country,
            dp.get("outside_prefix"),
            (site.get("dialout") or {}).get("classes"),
        )

    def extension(self, number):
        return self.directory.get(number)

    def check_pin(self, number, pin):
        """Is `pin` extension `number`'s dial-out PIN? (False if it has none.)"""
        return self.directory.check_pin(number, pin, self.realm)

    def is_open(self, tm):
        """Open at local wall-clock time tm = (year, month, mday, hour, minute, weekday)?"""
        return self.hours is None or self.hours.is_open(tm)

    def local_time(self, utc_s):
        return hours.local_time(utc_s, self.tz)

    def resolve(self, text):
        """A target string -> ("ext", n) ("group", n) ("menu", name) ("external", n, kind)
        ("directory", None) ("hangup", None) ("repeat", None) ("back", None), or None."""
        t = targets.parse(text)
        if t is None:
            return None
        kind, arg = t
        if kind == targets.OPERATOR:
            return self.resolve((self.data.get("operator") or {}).get("target"))
        if kind == targets.NUMBER:
            return self.dialplan.lookup(arg)
        if kind == targets.MENU:
            return ("menu", arg) if arg in self.menus else None
        if kind == targets.TEL:
            return ("external", arg, "admin")
        return (kind, None)

    def operator(self):
        return self.resolve("operator")

    def name_of(self, target):
        """What a caller is told they are being connected to."""
        kind = target[0]
        if kind == "ext":
            ext = self.extension(target[1])
            return ext.name if ext else target[1]
        if kind == "group":
            return self.groups[target[1]]["name"]
        if kind == "menu":
            return target[1]
        return target[1] or kind
