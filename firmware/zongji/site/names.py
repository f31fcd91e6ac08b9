"""Dial-by-name on the telephone keypad: letters to keys, and the directory search.

Owns the keypad layout (ITU-T E.161: abc=2 def=3 ghi=4 jkl=5 mno=6 pqrs=7 tuv=8 wxyz=9), the
format of an extension's `keys` field and the matching rule. The field is computed on the
host (zongji_companion.namekeys), so the device only compares digits: no pinyin tables, no
Unicode data on the ESP32.

The keys field spells a name as words separated by one space, each word as its syllables
separated by ".", each syllable as keypad digits (at least one):

    王小明       "9264 9426.6464"     wang | xiao.ming: the surname, then the given name
    Lily 王丽    "5459 9264 54"       lily | wang | li
    John Smith   "5646 76484"         a latin word is one syllable
    欧阳娜娜     "68.9264 62.62"      ou.yang | na.na: a compound surname is one word

Words are the surname, the given name and each latin word, in the order written. A name with
nothing a keypad can spell has an empty field.

Matching rule. Let the *spelling from word w* be the digits of every syllable of word w and
of all the words after it, run together (separators dropped), and the *initials* be the
first digit of every syllable of every word, in order. The digits a caller typed match the
field when they are a prefix of

  * the spelling from some word: "9264942" (wangxi, the full name from the surname),
    "94266464" (xiaoming, the given name from its start), "76484" (Smith); not "6464"
    (ming: a syllable inside a word is not a start); or
  * the initials, from the first word only: "996" or "99" for 王小明 (not "96"), "595" for
    Lily 王丽, "57" for John Smith.

An empty field matches nothing; an empty string of typed digits matches every other field.
`match` and `search` compare in place (str.startswith/find, then digit by digit across a
separator): they build no strings per entry, since they run for every directory entry on
each key a caller presses.
"""

KEYPAD = {"2": "abc", "3": "def", "4": "ghi", "5": "jkl", "6": "mno", "7": "pqrs", "8": "tuv", "9": "wxyz"}

_KEYS = "22233344455566677778889999"  # key of 'a' .. 'z'

WORD = " "  # separates the words of a keys field
SYLLABLE = "."  # separates the syllables of a word


def key_of(ch):
    """The keypad digit for one latin letter (either case), or None."""
    o = ord(ch) | 0x20  # 'A'..'Z' -> 'a'..'z'; nothing else lands in 'a'..'z'
    if 0x61 <= o <= 0x7A:
        return _KEYS[o - 0x61]
    return None


def to_keys(text):
    """'John Smith' -> '56467648': the keys for each latin letter, other characters ignored."""
    out = []
    for ch in text:
        k = key_of(ch)
        if k is not None:
            out.append(k)
    return "".join(out)


def _separator(field, i):
    """The index of the first separator at or after i, or -1."""
    w = field.find(WORD, i)
    s = field.find(SYLLABLE, i)
    return w if s < 0 or 0 <= w < s else s


def _match(field, typed, first):
    """match() for a non-empty field and typed digits; first is typed[0]."""
    n = len(field)
    t = len(typed)
    i = 0  # a word start
    while i < n:
        if field[i] == first:
            if field.startswith(typed, i):  # the common case: no separator crossed
                return True
            if 0 <= _separator(field, i) < i + t:  # a separator among those digits: compare
                k = i  # again, one digit at a time, skipping separators
                j = 0
                while j < t and k < n:
                    c = field[k]
                    k += 1
                    if c != WORD and c != SYLLABLE:
                        if c != typed[j]:
                            break
                        j += 1
                if j == t:
                    return True
        i = field.find(WORD, i) + 1
        if i == 0:
            break
    # the initials: the first digit of every syllable
    if field[0] != first:
        return False
    i = 0
    for j in range(1, t):
        i = _separator(field, i) + 1  # the next syllable's start
        if i <= 0 or i >= n or field[i] != typed[j]:
            return False
    return True


def match(keys_field, typed):
    """True if the digits `typed` match a keys field (the rule in the module docstring)."""
    if not keys_field:
        return False
    if not typed:
        return True
    return _match(keys_field, typed, typed[0])


def search(entries, typed, limit):
    """Indexes of the entries whose keys match `typed`, in entry order, at most limit + 1 of
    them: one more than `limit` tells the caller there were too many to read out.

    `entries` is any iterable of (index, keys_field); it is walked once and stops early.
    """
    found = []
    if not typed:
        for index, keys in entries:
            if keys:
                found.append(index)
                if len(found) > limit:
                    break
        return found
    first = typed[0]
    spaced = WORD + first  # every match has `first` at a word start: a quick test in C
    for index, keys in entries:
        if keys and (keys[0] == first or spaced in keys) and _match(keys, typed, first):
            found.append(index)
            if len(found) > limit:
                break
    return found
