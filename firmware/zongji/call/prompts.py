"""What the attendant says: the built-in phrases, and the prompt files that speak them.

Menu greetings come from the site; PHRASES are the few system sentences around them. Audio is
made on the host (`zongji prompts build`: TTS or the site's recordings) as one file per prompt
id, and the device plays the ids `parts()` lists, one after another. A sentence with a hole
("Connecting you to %s.") is cut at the holes: each literal piece is a prompt of its own and
the hole is filled by digit prompts or a name recording, so no sentence is rendered per caller.

    prompt_ids(site)             [(id, text or None, recording path or None)]: every prompt
                                 the device may play for this site, in site.language
    parts(site, pid, args, have) the ids to play, in order, for one phrase (or a menu)
    file_name(id)                where the device keeps it: "prompts/<id>.ulaw" (raw 8 kHz
                                 G.711 µ-law, no header)
    phrase(language, pid, *args) the sentence as text (traces, simulate)

Ids:
    menu.<menu name>     a menu's greeting: its `audio` recording, else its `prompt` text
    phrase.<pid>.<i>     piece i of PHRASES[pid] cut at its %s/%d holes (pieces that are only
                         punctuation or spaces are not spoken, so have no id; i counts them)
    digit.0 .. digit.9, digit.star, digit.hash
    sound.ringback       [sounds] ringback: the branch's ringback (集团彩铃), looped while an
                         outside caller's call, or a caller the attendant put through, rings
    sound.hold           [sounds] hold: music on hold, looped to whoever is held
    name.<number>        a person's name, recorded: SITE/names/<number>.wav or .mp3 on the
                         host (the companion's promptfiles.name_recordings lists them, as
                         prompt_ids() cannot see files); without one the number is read out
"""

PHRASES = {
    "en": {
        "invalid": "Sorry, that is not a valid choice.",
        "goodbye": "Thank you for calling. Goodbye.",
        "connecting": "Connecting you to %s.",
        "unavailable": "Sorry, nobody is available to take your call. Please call again later.",
        "dbn_intro": "Please enter the first letters of the name, then press the hash key.",
        "dbn_none": "No name matches those letters.",
        "dbn_many": "Too many names match. Please enter more letters.",
        "dbn_choice": "For %s, press %d.",
        "pin_prompt": "Please enter your PIN, then press the hash key.",
        "pin_wrong": "That PIN is not correct.",
        "pin_locked": "Too many wrong PINs. Goodbye.",
    },
    "zh": {
        "invalid": "对不起，您的选择无效。",
        "goodbye": "感谢您的来电，再见。",
        "connecting": "正在为您转接%s。",
        "unavailable": "对不起，现在无人接听，请稍后再拨。",
        "dbn_intro": "请输入姓名拼音的前几个字母，以井号键结束。",
        "dbn_none": "没有找到匹配的姓名。",
        "dbn_many": "匹配的姓名太多，请多输入几个字母。",
        "dbn_choice": "%s请按%d。",
        "pin_prompt": "请输入您的密码，以井号键结束。",
        "pin_wrong": "密码不正确。",
        "pin_locked": "密码错误次数过多，再见。",
    },
}

# How a key is read out. Chinese reads 1 as 幺 (yāo) in numbers said digit by digit, as
# telephone operators do, so 1 and 7 (yī, qī) are not confused on a narrow-band line.
DIGITS = {
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "star", "hash"),
    "zh": ("零", "幺", "二", "三", "四", "五", "六", "七", "八", "九", "星号", "井号"),
}
KEYS = "0123456789*#"
_KEY_IDS = (
    "digit.0",
    "digit.1",
    "digit.2",
    "digit.3",
    "digit.4",
    "digit.5",
    "digit.6",
    "digit.7",
    "digit.8",
    "digit.9",
    "digit.star",
    "digit.hash",
)

SOUNDS = ("ringback", "hold")  # [sounds]: recordings looped while a call rings / is on hold
RINGBACK = "sound.ringback"
HOLD = "sound.hold"

DIR = "prompts"  # on the device's filesystem, beside the bundle; SITE/prompts on the host
EXT = ".ulaw"
# Not spoken on their own: a piece made only of these is left out ("." after a name).
_QUIET = " \t\r\n.,;:!?-'\"()…。，、；：！？“”‘’（）"


def _table(language):
    return PHRASES.get(language) or PHRASES["en"]


def template(language, pid):
    """PHRASES[language][pid], falling back to English; KeyError for an unknown pid."""
    text = _table(language).get(pid)
    return text if text is not None else PHRASES["en"][pid]


def phrase(language, pid, *args):
    text = template(language, pid)
    return text % args if args else text


def pieces(text):
    """A template cut at its %s/%d holes -> the literal pieces, holes + 1 of them ('%%' is a
    literal '%'). 'For %s, press %d.' -> ['For ', ', press ', '.']."""
    out = []
    cur = ""
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "%" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "%":
                cur += "%"
                i += 2
                continue
            if nxt == "s" or nxt == "d":
                out.append(cur)
                cur = ""
                i += 2
                continue
        cur += ch
        i += 1
    out.append(cur)
    return out


def spoken(piece):
    """What of a piece is said: without the punctuation and spaces it starts with and the
    spaces it ends with ('.', ', press ' -> '', 'press'); '' when nothing is left to say."""
    i = 0
    n = len(piece)
    while i < n and piece[i] in _QUIET:
        i += 1
    j = n
    while j > i and piece[j - 1] in _QUIET:
        j -= 1
    if j == i:
        return ""
    return piece[i:].rstrip()


def key_id(key):
    """'5' -> 'digit.5', '*' -> 'digit.star', '#' -> 'digit.hash'; None for anything else."""
    at = KEYS.find(key) if len(key) == 1 else -1
    return _KEY_IDS[at] if at >= 0 else None


def digit_ids(text):
    """The ids reading `text` key by key; characters that are not keys are skipped."""
    out = []
    for ch in str(text):
        pid = key_id(ch)
        if pid is not None:
            out.append(pid)
    return out


def file_name(pid):
    """The prompt's file, relative to the filesystem root (device) or the site folder (host).

    Ids keep [A-Za-z0-9._-]; any other byte of a menu's name (spaces, '/', Chinese) is written
    as '~' and two hex digits, so every id is one safe file name and no two ids share one."""
    out = ""
    for b in pid.encode("utf-8"):
        if 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or b == 45 or b == 46 or b == 95:
            out += chr(b)
        else:
            out += "~%02x" % b
    return DIR + "/" + out + EXT


def _menu_source(menu):
    prompt = menu.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        prompt = None
    audio = menu.get("audio")
    if not isinstance(audio, str) or not audio:
        audio = None
    return prompt, audio


def prompt_ids(site):
    """Every prompt the device may play for `site` (a model.Site), in site.language:
    [(id, text or None, recording or None)], menus first (by name), then the phrases, the
    keys, the [sounds] recordings. A menu with a recording lists it (its path as written in
    site.toml, relative to the site folder) and its text too, which the recording replaces; a menu with neither is
    silent and has no prompt. Every phrase is listed, whether or not this site uses it."""
    out = []
    menus = site.menus or {}
    for name in sorted(menus):
        prompt, audio = _menu_source(menus[name])
        if prompt is not None or audio is not None:
            out.append(("menu." + name, prompt, audio))
    language = site.language
    for pid in sorted(PHRASES["en"]):
        cut = pieces(template(language, pid))
        for i in range(len(cut)):
            text = spoken(cut[i])
            if text:
                out.append(("phrase.%s.%d" % (pid, i), text, None))
    words = DIGITS.get(language) or DIGITS["en"]
    for i in range(len(KEYS)):
        out.append((_KEY_IDS[i], words[i], None))
    sounds = getattr(site, "sounds", None) or {}
    for name in SOUNDS:
        if sounds.get(name):
            out.append(("sound." + name, None, sounds[name]))
    return out


def _arg_ids(arg, have):
    if isinstance(arg, int):
        return digit_ids(str(arg))
    if isinstance(arg, tuple) and len(arg) == 2:
        kind = arg[0]
        value = arg[1]
        if kind == "name":
            pid = "name.%s" % value
            if have is not None and have(pid):
                return [pid]
            return digit_ids(value)
        if kind == "digits":
            return digit_ids(value)
        return []
    if isinstance(arg, str):
        return digit_ids(arg)  # a number as text; other text has no audio and is skipped
    return []


def parts(site, pid, args=(), have=None):
    """The prompt ids to play, in order, for phrase `pid` with `args` in its holes.

    Each arg: an int is read as its digits; ("digits", "201") digit by digit; ("name", number)
    as the recording name.<number> when have(that id) is true, else as the number's digits.
    For a menu's greeting, pid "menu" and args (menu name,) -> ["menu.<name>"]. Extra args
    are ignored, a missing one leaves its hole silent. KeyError for an unknown pid."""
    if pid == "menu":
        return ["menu.%s" % args[0]] if args else []
    cut = pieces(template(site.language, pid))
    out = []
    for i in range(len(cut)):
        if spoken(cut[i]):
            out.append("phrase.%s.%d" % (pid, i))
        if i < len(cut) - 1 and i < len(args):
            out += _arg_ids(args[i], have)
    return out
