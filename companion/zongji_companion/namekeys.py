"""Keypad keys for dial-by-name, computed on the host (CPython only; uses pypinyin).

`name_keys(name)` spells a staff name in keypad digits in the compact format of
zongji.site.names (words separated by " ", syllables within a word by "."), which the device
matches callers' keys against (zongji.site.names.match). A caller may start typing at any word,
or type the initials of the whole name:

  Chinese name   王小明      "9264 9426.6464": the surname and the given name are words, so
                             "wangxiaoming", "xiaoming" and the initials "wxm" all match
  latin words    John Smith  "5646 76484": each latin word is one word of one syllable:
                             "johnsmith", "smith", "js"
  mixed          Lily 王丽   "5459 9264 54": "lilywangli", "wangli", "li", "lwl"

Surnames are read as surnames: pypinyin has no surname mode (python-pinyin issue #297), so
the readings where a surname differs from the character's everyday reading (曾 zeng not
ceng, 单 shan not dan ...) and the common compound surnames (欧阳, 司马, 诸葛 ...) are listed
here. Everything else uses pypinyin's default reading (heteronym=False, phrase-aware).
"""

import unicodedata

from pypinyin import Style, lazy_pinyin
from zongji.site.names import SYLLABLE, WORD, to_keys

# Compound (two-character) surnames, simplified and traditional, with their readings.
COMPOUND_SURNAMES = {
    "欧阳": "ou yang",
    "歐陽": "ou yang",
    "司马": "si ma",
    "司馬": "si ma",
    "诸葛": "zhu ge",
    "諸葛": "zhu ge",
    "上官": "shang guan",
    "东方": "dong fang",
    "東方": "dong fang",
    "皇甫": "huang fu",
    "令狐": "ling hu",
    "慕容": "mu rong",
    "司徒": "si tu",
    "司空": "si kong",
    "夏侯": "xia hou",
    "公孙": "gong sun",
    "公孫": "gong sun",
    "长孙": "zhang sun",
    "長孫": "zhang sun",
    "宇文": "yu wen",
    "轩辕": "xuan yuan",
    "軒轅": "xuan yuan",
    "南宫": "nan gong",
    "南宮": "nan gong",
    "西门": "xi men",
    "西門": "xi men",
    "端木": "duan mu",
    "独孤": "du gu",
    "獨孤": "du gu",
    "呼延": "hu yan",
    "尉迟": "yu chi",
    "尉遲": "yu chi",
    "万俟": "mo qi",
    "萬俟": "mo qi",
    "单于": "chan yu",
    "單于": "chan yu",
    "澹台": "tan tai",
    "闻人": "wen ren",
    "聞人": "wen ren",
    "钟离": "zhong li",
    "鍾離": "zhong li",
    "申屠": "shen tu",
    "淳于": "chun yu",
    "濮阳": "pu yang",
    "濮陽": "pu yang",
    "赫连": "he lian",
    "赫連": "he lian",
    "拓跋": "tuo ba",
    "太史": "tai shi",
    "公冶": "gong ye",
    "东郭": "dong guo",
    "東郭": "dong guo",
}

# Single-character surnames whose surname reading differs (in letters, tones don't matter
# on a keypad) from pypinyin's default reading of the character.
SURNAME_READINGS = {
    "单": "shan",
    "單": "shan",
    "解": "xie",
    "仇": "qiu",
    "区": "ou",
    "區": "ou",
    "查": "zha",
    "曾": "zeng",
    "朴": "piao",
    "盖": "ge",
    "蓋": "ge",
    "乐": "yue",
    "樂": "yue",
    "缪": "miao",
    "繆": "miao",
    "翟": "zhai",
    "覃": "qin",
    "召": "shao",
    "繁": "po",
    "员": "yun",
    "員": "yun",
    "贠": "yun",
    "种": "chong",
    "種": "chong",
    "重": "chong",
    "秘": "bi",
    "黑": "he",
    "折": "she",
    "佴": "nai",
    "粘": "nian",
    "藏": "zang",
    "都": "du",
    "薄": "bo",
    "乜": "nie",
    "阚": "kan",
    "卜": "bu",
    "能": "nai",
    "句": "gou",
    "隗": "wei",
    "洗": "xian",
    "祭": "zhai",
}

# Latin letters NFKD does not decompose into ASCII
_FOLD = {
    "ß": "ss",
    "æ": "ae",
    "Æ": "ae",
    "ø": "o",
    "Ø": "o",
    "œ": "oe",
    "Œ": "oe",
    "ł": "l",
    "Ł": "l",
    "đ": "d",
    "Đ": "d",
    "ð": "d",
    "þ": "th",
    "ı": "i",
}
_JOINERS = "'’"  # O'Brien is one word


def _is_han(ch):
    o = ord(ch)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3134F


def _latin(ch):
    """Lower-case ASCII letters for one character ('' if it is not a latin letter)."""
    if ch in _FOLD:
        return _FOLD[ch]
    out = ""
    for c in unicodedata.normalize("NFKD", ch):
        if "a" <= c.lower() <= "z" and c.isascii():
            out += c.lower()
    return out


def _join_han(name):
    """'王 小明' -> '王小明': spaces between Chinese characters don't split a name."""
    out = []
    for i, ch in enumerate(name):
        if ch.isspace() and out and _is_han(out[-1]):
            rest = name[i:].lstrip()
            if rest and _is_han(rest[0]):
                continue
        out.append(ch)
    return "".join(out)


def _tokens(name):
    """[("latin", "john"), ("han", "王小明"), ...] in the order they appear."""
    name = _join_han(name)
    tokens = []
    kind = None
    buf = ""
    for ch in name:
        if _is_han(ch):
            k, piece = "han", ch
        elif ch in _JOINERS and kind == "latin":
            continue
        else:
            piece = _latin(ch)
            k = "latin" if piece else None
        if k != kind and buf:
            tokens.append((kind, buf))
            buf = ""
        kind = k
        if k:
            buf += piece
    if buf and kind:
        tokens.append((kind, buf))
    return tokens


def _pinyin(text):
    return [s for s in lazy_pinyin(text, style=Style.NORMAL, errors="ignore") if s]


def han_syllables(run):
    """(surname syllables, given-name syllables) for a run of Chinese characters."""
    if len(run) >= 3 and run[:2] in COMPOUND_SURNAMES:
        return COMPOUND_SURNAMES[run[:2]].split(), _pinyin(run[2:])
    if len(run) >= 2:
        first = SURNAME_READINGS.get(run[0])
        return ([first] if first else _pinyin(run[0])), _pinyin(run[1:])
    return [], _pinyin(run)


def _words(name):
    """[["wang"], ["xiao", "ming"]]: the name's words, each a list of syllables in letters."""
    words = []
    for kind, text in _tokens(name):
        if kind == "latin":
            words.append([text])
        else:
            surname, given = han_syllables(text)
            words.extend(w for w in (surname, given) if w)
    return words


def name_keys(name):
    """The name's keys field for dial-by-name (format: zongji.site.names), e.g. 王小明 ->
    "9264 9426.6464"; "" when the name has nothing a keypad can spell.

    Words are kept as they are, repeats included: a word's place in the name is what the
    device matches (every word starts a spelling that runs on to the end of the name)."""
    if not isinstance(name, str):
        raise ValueError("a name must be text, not %r" % (name,))
    out = []
    for word in _words(name):
        syllables = [k for k in (to_keys(s) for s in word) if k]
        if syllables:
            out.append(SYLLABLE.join(syllables))
    return WORD.join(out)
