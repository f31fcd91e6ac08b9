"""Per-country telephone facts: emergency numbers, dialling prefixes, number kinds, tones.

Owns what the branch's `[branch] country` selects: the emergency numbers (always allowed,
never usable as short numbers), how an outside number is classified for the dial-out classes
(`classify`), when an outside number is complete so the dial plan can stop waiting
(`complete`), and the call-progress tones callers expect (`tones`).

Number ranges follow the national numbering plans as summarised in libphonenumber's metadata;
tones follow ITU-T E.180 Supplement 2 and national specs (BT SIN 350 for the UK). When a range
is unclear the classification errs towards the dearer kind: a number that may go abroad or
cost a premium rate is never called local, because dial-out classes are the toll-fraud guard.

Each country is a few strings, scanned in place on every lookup (no parsed copy is kept), so
the ten countries cost a few KB of constants, not ten tables of tuples.
"""

from zongji.text import is_digits

EMERGENCY = "emergency"
LOCAL = "local"
MOBILE = "mobile"
NATIONAL = "national"
PREMIUM = "premium"
INTERNATIONAL = "international"
KINDS = (EMERGENCY, LOCAL, MOBILE, NATIONAL, PREMIUM, INTERNATIONAL)

SUPPORTED = ("CN", "US", "CA", "GB", "DE", "FR", "HK", "SG", "AU", "JP")

MAX_E164 = 15  # ITU-T E.164: at most 15 digits after the country code's '+'

_KIND = {"e": EMERGENCY, "l": LOCAL, "m": MOBILE, "n": NATIONAL, "p": PREMIUM, "i": INTERNATIONAL}

# Rules, in the number's national form, tried in order; the first that applies decides.
# A rule is "PATTERN/KIND[/DONE[/MAX[/MIN]]]":
#   PATTERN  leading digits; 'x' is any digit, '[3-9]' / '[0369]' a set; empty matches all
#   KIND     l m n p i (see _KIND)
#   DONE     length at which the number is known to be complete (0: never known)
#   MAX      longest valid length, longer is not a number (0: up to E.164's limit)
#   MIN      the rule applies only from this length on (lets 7-digit local and 10-digit
#            national NANP numbers share leading digits)
# Every table ends in a catch-all, and every proper prefix of a valid number classifies
# (as something), because the dial plan classifies after each digit.

_CN = (
    "179/i 1[12]xxx00/i"  # IP carrier prefixes (17951 ...), may be followed by 00 + anything
    " 106[26]/p/8/8 16[08]/p/8/8"  # SMS service codes; 160/168 information lines
    " 1[3-9]/m/11/11 1/l/0/8"  # mobiles 13x-19x; 1xxxx carrier/government service numbers
    " 010/n/11/11 01[3-9]/m/12/12 02/n/11/11"  # Beijing, 0 + mobile, 2x metropolitan codes
    " 0/n/12/12 400/n/10/10 800/n/10/10 950/n/11/11 9[56]/l/0/8 /l/8/8"
)
_NANP = (
    "01/i 0/n/11/11"  # operator-assisted: 01 + international, 0 + national
    " 101/i"  # 101XXXX dial-around carrier access codes reach anywhere
    " 1900/p/11/11 1[2-9]xx976/p/11/11 1/n/11/11"
    " [2-9]11/l/3/3"  # N11 service codes (411, 311 ...): never area or exchange codes
    " 900/p/10/10/8 [2-9]xx976/p/10/10/8 [2-9]/n/10/10/8"  # ten digits: can't tell local
    " 976/p/7/7 /l/0/7"
)
_GB = (
    "07/m/11/11 09/p/11/11 084/p/11/11 087/p/11/11 0/n/11/11"
    " 118/p/6/6 155/i"  # directory enquiries (up to pounds per call); international operator
    " 1/l/0/6 /l/0/8"
)
_DE = (
    "010/i"  # call-by-call carrier selection 010xy: any destination follows
    " 0900/p/0/12 0137/p/11/11 01[5-7]/m/12/12 0/n/0/16"
    " 118/p/0/6 1/l/0/6 /l/0/0"  # 118xy directory enquiries are premium
)
_FR = (
    "0[67]/m/10/10 080/n/10/10 08/p/10/10 0/n/10/10"  # 081-089: surcharged (SVA) numbers
    " 10/p/4/4 16/i 118/p/6/6 1/l/0/6"  # 10XY operator lines; 16XY carrier selection
    " 3[01]/l/4/4 3/p/4/4 /l/0/6"  # 3BPQ service numbers: 30xx/31xx free, others surcharged
)
_HK = (
    "0/i 800/l/9/9 900/p/11/11"  # 0 only starts IDD prefixes; 800 free, 900 premium
    " 58/l/8/8 [4569]/m/8/8 7[01]/m/8/8 84/m/8/8 1/l/0/6 /l/8/8"
)
_SG = "0/i 1800/n/11/11 1900/p/11/11 1/l/0/5 800/n/10/10 7000/n/11/11 [89]/m/8/8 /l/8/8"
_AU = (
    "00/i 04/m/10/10 0/n/10/10"  # 0011/0014 ... international; 000 is emergency
    " 14/i 183/i"  # 14xx carrier override, 1831/1832 caller-ID prefixes: anything follows
    " 190/p/10/10 19/p/0/10 1234/p/4/4 12456/p/5/5 13/n/0/10 18/n/0/10 1/l/0/10 /l/8/8"
)
_JP = (
    "00/i"  # 00XY carrier codes, also ahead of international calls
    " 0[6-9]0/m/11/11 050/n/11/11 020/n/11/11 0120/n/10/10 0800/n/11/11"
    " 0570/n/10/10 0990/p/10/10 0/n/10/10 1/l/0/4 /l/0/8"
)

# Tones: "dial ringback busy congestion", each FREQ[+FREQ][/ON,OFF,...] in Hz and ms;
# no cadence means continuous. Amplitude-modulated tones (SG 425x24 Hz, JP 400x16 Hz
# ringback, AU 425x25 Hz given as 413+438) are listed by their carrier frequencies.
_T_NANP = "350+440 440+480/2000,4000 480+620/500,500 480+620/250,250"

# code: (country calling code, international prefixes (patterns, longest first), trunk
#        prefix, emergency numbers, rules, tones)
_DATA = {
    "CN": ("86", "00", "0", "110 119 120 122 112 12395", _CN, "450 450/1000,4000 450/350,350 450/700,700"),
    "US": ("1", "011", "1", "911 112 933 988", _NANP, _T_NANP),
    "CA": ("1", "011", "1", "911 112 988", _NANP, _T_NANP),
    "GB": ("44", "00", "0", "999 112", _GB, "350+440 400+450/400,200,400,2000 400/375,375 400/400,350,225,525"),
    "DE": ("49", "00", "0", "110 112", _DE, "425 425/1000,4000 425/480,480 425/240,240"),
    "FR": (
        "33",
        "00",
        "0",
        "15 17 18 112 114 115 119 191 196 116000",
        _FR,
        "440 440/1500,3500 440/500,500 440/250,250",
    ),
    "HK": ("852", "001 00", "", "999 112 992", _HK, "350+440 440+480/400,200,400,3000 480+620/500,500 480+620/250,250"),
    "SG": ("65", "0[0-3]x", "", "999 995 112", _SG, "425 425/400,200,400,2000 425/750,750 425/250,250"),
    "AU": (
        "61",
        "0011 001[4-689]",
        "0",
        "000 112 106",
        _AU,
        "413+438 413+438/400,200,400,2000 425/375,375 425/375,375",
    ),
    "JP": ("81", "010", "0", "110 118 119", _JP, "400 400/1000,2000 400/500,500 400/500,500"),
}

# NANP area codes of other countries (Caribbean, Bermuda): dialled like national calls,
# billed as international -- the classic "one ring" toll-fraud destinations.
_FOREIGN_NANP = (
    "242",
    "246",
    "264",
    "268",
    "284",
    "345",
    "441",
    "473",
    "649",
    "658",
    "664",
    "721",
    "758",
    "767",
    "809",
    "829",
    "849",
    "868",
    "869",
    "876",
)

TONE_NAMES = ("dial", "ringback", "busy", "congestion")


def _data(country):
    d = _DATA.get(country)
    if d is None:
        raise ValueError("unknown country '%s': use one of %s" % (country, " ".join(SUPPORTED)))
    return d


def _starts_at(number, pat, j, end):
    """Does number begin with pattern pat[j:end]? Works on indexes: no slices allocated."""
    i = 0
    while j < end:
        if i >= len(number):
            return False
        c = number[i]
        if pat[j] == "[":
            k = pat.find("]", j)
            ok = False
            m = j + 1
            while m < k:
                if m + 2 < k and pat[m + 1] == "-":
                    ok = ok or pat[m] <= c <= pat[m + 2]
                    m += 3
                else:
                    ok = ok or pat[m] == c
                    m += 1
            if not ok:
                return False
            j = k + 1
        else:
            if pat[j] != "x" and pat[j] != c:
                return False
            j += 1
        i += 1
    return True


def starts(number, pattern):
    """Does `number` begin with `pattern` (digits, 'x' for any digit, '[..]' sets)?"""
    return _starts_at(number, pattern, 0, len(pattern))


def _first_rule(rules, number):
    """(kind, done, max) of the first rule in the spec string that applies, or None."""
    n = len(number)
    i = 0
    size = len(rules)
    while i < size:
        end = rules.find(" ", i)
        if end < 0:
            end = size
        slash = rules.find("/", i, end)
        if slash >= 0 and _starts_at(number, rules, i, slash):
            nums = [int(v) for v in rules[slash + 3 : end].split("/") if v] + [0, 0, 0]
            if n >= nums[2]:  # MIN
                return _KIND[rules[slash + 1]], nums[0], nums[1]
        i = end + 1
        while i < size and rules[i] == " ":
            i += 1
    return None


def _in_words(words, w):
    """Is w one of the space-separated words (without splitting them into a list)?"""
    i = words.find(w)
    while i >= 0:
        e = i + len(w)
        if (i == 0 or words[i - 1] == " ") and (e == len(words) or words[e] == " "):
            return True
        i = words.find(w, i + 1)
    return False


def emergency(country):
    """The country's emergency numbers, e.g. ('110', '119', '120', '122', '112', '12395')."""
    return tuple(_data(country)[3].split())


def calling_code(country):
    """The country calling code without '+', e.g. '86'."""
    return _data(country)[0]


def international_prefix(country):
    """The usual international (IDD) prefix: '00', '011' (NANP), '0011' (AU), '010' (JP)...
    SG has several carrier prefixes; this returns '000', the one every line accepts."""
    first = _data(country)[1].split()[0]
    return "000" if first == "0[0-3]x" else first


def trunk_prefix(country):
    """The national trunk prefix: '0', '1' for NANP, '' where there is none (HK, SG)."""
    return _data(country)[2]


def _pattern_len(pattern):
    n = 0
    j = 0
    while j < len(pattern):
        j = pattern.find("]", j) + 1 if pattern[j] == "[" else j + 1
        n += 1
    return n


def _split(d, number):
    """("home", national number) or ("abroad", digits after the prefix) or (None, None).
    '+' or the international prefix followed by the country's own code counts as home and
    becomes trunk prefix + national number, as it would be dialled inside the country."""
    if not number:
        return None, None
    if number[0] == "+":
        rest = number[1:]
        if not is_digits(rest):
            return None, None
    else:
        if not is_digits(number):
            return None, None
        rest = None
        for pat in d[1].split():
            if starts(number, pat):
                rest = number[_pattern_len(pat) :]
                break
        if rest is None:
            return "home", number
    cc = d[0]
    if rest.startswith(cc) and len(rest) > len(cc):
        return "home", d[2] + rest[len(cc) :]
    return "abroad", rest


def normalize(country, number):
    """The number as dialled inside the country: '+8613800138000' -> '013800138000' (trunk
    prefix + national number); national numbers come back unchanged, foreign ones as '+'
    and the digits after the international prefix; None if it is not a number at all."""
    where, digits = _split(_data(country), number)
    if where is None:
        return None
    return digits if where == "home" else "+" + digits


def _resolve(country, number):
    """(kind, done_len, length) for a number; kind None if it is not a valid number."""
    d = _data(country)
    if number and number[0] != "+" and _in_words(d[3], number):
        return EMERGENCY, len(number), len(number)
    where, digits = _split(d, number)
    if where == "home":
        return _national(d, digits)
    if where == "abroad":
        return _foreign(digits)
    return None, 0, 0


def _foreign(digits):
    if len(digits) > MAX_E164:
        return None, 0, 0
    return INTERNATIONAL, MAX_E164, len(digits)


def _national(d, number):
    n = len(number)
    if d[0] == "1":  # NANP: a foreign area code makes it international
        if number[0] == "1":
            area = number[1:4]
        elif n > 7:
            area = number[:3]
        else:
            area = ""
        if area in _FOREIGN_NANP:
            if n > (11 if number[0] == "1" else 10):
                return None, 0, 0
            return INTERNATIONAL, 11 if number[0] == "1" else 10, n
    rule = _first_rule(d[4], number)
    if rule is None:
        return None, 0, 0
    kind, done, most = rule
    if (most and n > most) or n > MAX_E164 + 1:
        return None, 0, 0
    return kind, done, n


def classify(country, number):
    """One of "emergency" "local" "mobile" "national" "premium" "international", or None if
    `number` can't be a phone number (empty, not digits after an optional leading '+', too
    long for its range). '+' + the country's own code is classified as dialled at home.
    Works on partial numbers too: every prefix of a valid number classifies as something."""
    return _resolve(country, number)[0]


def complete(country, number):
    """True when the number is known to be complete (emergency numbers, a Chinese mobile at
    11 digits, an 8-digit HK/SG number, 1 + 10 digits in NANP ...), False when more digits
    may follow and the dial plan should wait for the inter-digit timeout."""
    kind, done, length = _resolve(country, number)
    return kind is not None and done > 0 and length >= done


def _tone(text):
    slash = text.find("/")
    freqs = text if slash < 0 else text[:slash]
    cadence = () if slash < 0 else tuple(int(v) for v in text[slash + 1 :].split(","))
    return tuple(int(f) for f in freqs.split("+")), cadence


def tones(country):
    """{"dial" "ringback" "busy" "congestion": (freqs_hz, cadence_ms)}; freqs are summed,
    cadence alternates on/off durations (ms) and repeats; () means continuous."""
    parts = _data(country)[5].split()
    plan = {}
    for i in range(len(TONE_NAMES)):
        plan[TONE_NAMES[i]] = _tone(parts[i])
    return plan
