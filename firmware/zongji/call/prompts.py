"""Built-in phrases the attendant speaks, in each supported language.

Menu greetings come from the site; these are the few system phrases around them. The audio
for them is rendered on the host (TTS) with the same ids, so a text id is all the core needs.
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
    },
}


def phrase(language, pid, *args):
    table = PHRASES.get(language) or PHRASES["en"]
    text = table.get(pid) or PHRASES["en"][pid]
    return text % args if args else text
