"""Checks of the staff: each row (name, SIP secret, mobile, follow-me, class, PIN), the dial-out
classes that stand between a phone and toll fraud, and the digest algorithms phones are offered.

Part of `checks.check` (the short-number space, duplicates included, is checked there). Problems
are `(level, path, message)` with paths `("staff", row, column)`; the messages say what to
type, because the rows usually come from a spreadsheet.
"""

from zongji.site import countries
from zongji.text import is_digits, is_hex

MIN_SECRET = 8
NUMBER_KINDS = ("local", "mobile", "national", "premium", "international")
GUESSED_SECRETS = ("1234", "12345678", "password", "0000")


# A secret or PIN as `zongji pull` writes them back from a device, which only holds their hashes:
# "ha1:<MD5 HA1>[:<SHA-256 HA1>]" (made with the site's realm) and "hash:<PIN hash>".
HA1_PREFIX = "ha1:"
PIN_PREFIX = "hash:"


def stored_secret(secret):
    """ "ha1:MD5[:SHA256]" -> (md5 hex, sha256 hex or ""), or None when it is not that form."""
    parts = secret[len(HA1_PREFIX) :].split(":")
    md5 = parts[0]
    sha = parts[1] if len(parts) > 1 else ""
    if len(parts) > 2 or not (is_hex(md5, 32) or (md5 == "" and sha)) or not (sha == "" or is_hex(sha, 64)):
        return None
    return md5, sha


def stored_pin(pin):
    h = pin[len(PIN_PREFIX) :]
    return h if is_hex(h, 16) else None


def _err(problems, path, msg):
    problems.append(("error", path, msg))


def _warn(problems, path, msg):
    problems.append(("warning", path, msg))


def _suggest(word, choices):
    from zongji.site.schema import suggest

    hint = suggest(word, choices)
    return ": did you mean '%s'?" % hint if hint else ""


def check_extensions(site, extensions, country, problems):
    """Every staff row: name, secret, mobile, follow-me, class and PIN. A generator: it yields
    after each row (checks.check_steps)."""
    classes = (site.get("dialout") or {}).get("classes") or {}
    default = (site.get("staff") or {}).get("default_class") or "internal"
    if default not in classes:
        _err(problems, ("staff", "default_class"), "default_class '%s' is not a class in [dialout.classes]" % default)
    has_trunk = bool(site.get("trunk"))
    for i, ext in enumerate(extensions):
        num = ext.get("number") or ""
        if not (ext.get("name") or "").strip():
            _err(problems, ("staff", i, "name"), "extension %s has no name" % num)
        secret = ext.get("secret") or ""  # a loaded bundle's record has no secret, only its HA1s
        phone = secret or ext.get("ha1")
        mobile = ext.get("mobile") or ""
        if not phone and not mobile:
            _err(
                problems,
                ("staff", i, "secret"),
                "extension %s has neither a SIP secret (desk phone) nor a mobile: give it one or the other" % num,
            )
        if secret.startswith(HA1_PREFIX):
            if stored_secret(secret) is None:
                _err(
                    problems,
                    ("staff", i, "secret"),
                    "extension %s's secret %s... is neither a password nor ha1:<32 hex>[:<64 hex>] "
                    "(the form `zongji pull` writes)" % (num, secret[:8]),
                )
        elif secret:
            if secret == num or secret in GUESSED_SECRETS:
                _err(
                    problems,
                    ("staff", i, "secret"),
                    "extension %s has a secret anyone would guess first; "
                    "use a random one (zongji init shows how)" % num,
                )
            elif len(secret) < MIN_SECRET:
                _warn(
                    problems,
                    ("staff", i, "secret"),
                    "extension %s's secret is shorter than %d characters: easy to crack" % (num, MIN_SECRET),
                )
        if mobile:
            if country and countries.classify(country, mobile) is None:
                _err(
                    problems,
                    ("staff", i, "mobile"),
                    "mobile '%s' of extension %s is not a phone number%s" % (mobile, num, mobile_hint(mobile)),
                )
            if not has_trunk:
                _err(
                    problems,
                    ("staff", i, "mobile"),
                    "extension %s has a mobile but the site has no [trunk] to reach it" % num,
                )
        follow = ext.get("follow_me") or 0
        if follow and not (mobile and phone):
            _err(
                problems,
                ("staff", i, "follow_me"),
                "follow_me on extension %s needs both a desk phone (secret) and a mobile" % num,
            )
        cls = ext.get("class") or default
        if cls not in classes:
            hint = _suggest(cls, classes)
            _err(problems, ("staff", i, "class"), "extension %s has unknown dial-out class '%s'%s" % (num, cls, hint))
        elif classes[cls].get("pin") and not (ext.get("pin") or ext.get("pin_hash")):
            _warn(
                problems,
                ("staff", i, "pin"),
                "extension %s's class '%s' asks for a PIN but the extension "
                "has none, so it can't dial %s" % (num, cls, ", ".join(classes[cls]["pin"])),
            )
        pin = ext.get("pin") or ""
        if pin.startswith(PIN_PREFIX):
            if stored_pin(pin) is None:
                _err(problems, ("staff", i, "pin"), "PIN of extension %s: hash:<16 hex> or digits" % num)
        elif pin and (not is_digits(pin) or len(pin) < 4):
            _err(problems, ("staff", i, "pin"), "PIN of extension %s must be at least 4 digits" % num)
        elif pin and trivial_pin(pin, num):
            _warn(
                problems,
                ("staff", i, "pin"),
                "PIN %s of extension %s is one of the first a thief tries (%s): "
                "pick random digits" % (pin, num, trivial_pin(pin, num)),
            )
        for field in ("name", "department", "secret", "mobile"):
            if _has_control(ext.get(field) or ""):
                _err(problems, ("staff", i, field), "%s of extension %s contains a control character" % (field, num))
        yield


def _has_control(text):
    """A character below U+0020 in text? Its UTF-8 bytes are read, not its characters: on
    MicroPython every character a str yields is interned for good, so walking 1000 Chinese
    names would leave each distinct character in the heap's string table until reboot."""
    for b in text.encode():
        if b < 32:
            return True
    return False


def _scientific(text):
    """'1.38001E+10': how Excel shows a long number in a General cell, its last digits gone."""
    t = text.strip().upper()
    e = t.find("E+")
    if e < 2 or not is_digits(t[e + 2 :]):
        return False
    mantissa = t[:e]
    dot = mantissa.find(".")
    if dot < 0:
        return is_digits(mantissa)
    return is_digits(mantissa[:dot]) and is_digits(mantissa[dot + 1 :])


def mobile_hint(mobile):
    """What to type instead of a mobile that is not a number, or ''."""
    if _scientific(mobile):
        return (
            ": this is how Excel shows a long number, and the digits after the first few were lost; "
            "format the column as Text in Excel and type the numbers again"
        )
    digits = ""
    others = ""
    for ch in mobile:
        if "0" <= ch <= "9":
            digits += ch
        elif ch not in "+":
            others += ch
    if digits and others and not others.strip(" -().\t\u00a0"):
        what = "spaces" if not others.strip(" \t\u00a0") else "spaces, dashes or brackets"
        plus = "+" if mobile.strip().startswith("+") else ""
        return ": remove the %s, write %s%s" % (what, plus, digits)
    return ""


def trivial_pin(pin, number):
    """Why a PIN is among the first guessed ('the extension itself', ...), or ''."""
    if pin == number or pin == number + number:
        return "the extension number"
    if pin.count(pin[0]) == len(pin):
        return "one digit repeated"
    up = down = True
    for k in range(1, len(pin)):
        step = (ord(pin[k]) - ord(pin[k - 1])) % 10
        up = up and step == 1
        down = down and step == 9
    if up or down:
        return "a straight run of digits"
    if pin in ("1212", "6969", "2580", "0852", "1122", "112233", "121212", "123123"):
        return "a common pattern"
    return ""


DIGESTS = ("MD5", "SHA-256")


def check_digest(site, problems):
    algs = (site.get("staff") or {}).get("digest") or []
    if not algs:
        _err(problems, ("staff", "digest"), "digest must name at least one of: %s" % ", ".join(DIGESTS))
    for alg in algs:
        if alg not in DIGESTS:
            _err(problems, ("staff", "digest"), "unknown digest algorithm '%s': use %s" % (alg, ", ".join(DIGESTS)))


def check_dialout(site, problems):
    classes = (site.get("dialout") or {}).get("classes") or {}
    for name in classes:
        c = classes[name]
        path = ("dialout", "classes", name)
        for kind in (c.get("allow") or []) + (c.get("pin") or []):
            if kind not in NUMBER_KINDS:
                _err(
                    problems,
                    path,
                    "class '%s': unknown number kind '%s', use: %s" % (name, kind, ", ".join(NUMBER_KINDS)),
                )
        for kind in c.get("pin") or []:
            if kind not in (c.get("allow") or []):
                _warn(problems, path + ("pin",), "class '%s' asks a PIN for %s but does not allow it" % (name, kind))
        if "international" in (c.get("allow") or []) and "international" not in (c.get("pin") or []):
            _warn(
                problems,
                path + ("allow",),
                "class '%s' may dial international numbers without a PIN: one "
                'stolen phone password becomes a large bill (toll fraud); add pin = ["international"]' % name,
            )
        if "premium" in (c.get("allow") or []) and "premium" not in (c.get("pin") or []):
            _warn(problems, path + ("allow",), "class '%s' may dial premium-rate numbers without a PIN" % name)
