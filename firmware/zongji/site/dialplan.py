"""The dial plan: dialed digits -> where the call goes, with overlap dialing.

Staff dial 2-6 digit short numbers, emergency numbers, or the outside-line prefix followed
by an outside number. `match(digits)` answers after every digit:

  NEED_MORE      the digits start some number: wait for more
  MATCH          complete and unique: connect now
  MATCH_OR_MORE  complete, but also the start of a longer number (or an outside number that
                 may go on): connect after the inter-digit timeout, or at once on '#'
  NO_MATCH       nothing starts like this: play an error / answer 404

Every lookup is one or two dict probes on integer codes (see directory.code), so the cost
grows with the digits dialed, never with the size of the directory. Emergency numbers win
over everything and are never subject to a class of service.
"""

from zongji.site import countries
from zongji.site.directory import code
from zongji.text import is_digits

NEED_MORE = 0
MATCH = 1
MATCH_OR_MORE = 2
NO_MATCH = 3
STATUS_NAMES = ("need-more", "match", "match-or-more", "no-match")

MAX_OUTSIDE_DIGITS = 20

OK = "ok"
NEED_PIN = "pin"
FORBIDDEN = "forbidden"


class DialPlan:
    def __init__(self, directory, groups, menus, country, outside_prefix, classes=None):
        self.directory = directory
        self.country = country
        self.outside_prefix = outside_prefix or ""
        self.classes = classes or {}
        self._emergency = countries.emergency(country)
        self._special = {}  # code -> ("group", number) | ("menu", name)
        self._prefixes = {}  # code of every proper prefix of every short number -> 1
        for num in groups:
            self._special[code(num)] = ("group", num)
        for name in menus:
            num = menus[name].get("number")
            if num:
                self._special[code(num)] = ("menu", name)
        for c in directory.codes():
            self._add_prefixes(c)
        for num in list(groups) + [menus[n]["number"] for n in menus if menus[n].get("number")]:
            self._add_prefixes(code(num))

    def _add_prefixes(self, c):
        # the code of a number's prefix one digit shorter is its code // 10 ("1" + digits):
        # integer arithmetic, so 1000 extensions leave no string garbage behind
        while c >= 100:
            c //= 10
            self._prefixes[c] = 1

    def lookup(self, number):
        """The target a complete short number names, or None."""
        if not is_digits(number) or len(number) > 6:
            return None
        c = code(number)
        special = self._special.get(c)
        if special is not None:
            return special
        if self.directory.has(number):
            return ("ext", number)
        return None

    def match(self, digits, internal=False):
        """(status, target) for the digits dialed so far (see the module docstring).
        internal=True: short numbers only (an outside caller dialing from a menu)."""
        if not is_digits(digits):
            return NO_MATCH, None
        if not internal:
            if digits in self._emergency:
                return MATCH, ("emergency", digits)
            op = self.outside_prefix
            if op and digits.startswith(op):
                return self._outside(digits[len(op) :])
        target = self.lookup(digits)
        longer = len(digits) < 6 and code(digits) in self._prefixes
        if target is not None:
            return (MATCH_OR_MORE if longer else MATCH), target
        if longer:
            return NEED_MORE, None
        if internal:
            return NO_MATCH, None
        for e in self._emergency:
            if e.startswith(digits):
                return NEED_MORE, None
        return NO_MATCH, None

    def _outside(self, number):
        if not number:
            return NEED_MORE, None
        if len(number) > MAX_OUTSIDE_DIGITS:
            return NO_MATCH, None
        if number in self._emergency:  # "0" + 110 still reaches the police
            return MATCH, ("emergency", number)
        kind = countries.classify(self.country, number)
        if kind is None:
            return NO_MATCH, None
        if kind == "emergency":
            return MATCH, ("emergency", number)
        target = ("external", number, kind)
        if countries.complete(self.country, number):
            return MATCH, target
        return MATCH_OR_MORE, target

    def authorize(self, cls, target):
        """May an extension of dial-out class `cls` reach `target`? OK, NEED_PIN or FORBIDDEN."""
        if target[0] != "external":
            return OK
        c = self.classes.get(cls)
        if c is None:
            return FORBIDDEN
        kind = target[2]
        if kind not in c.get("allow", ()):
            return FORBIDDEN
        if kind in c.get("pin", ()):
            return NEED_PIN
        return OK
