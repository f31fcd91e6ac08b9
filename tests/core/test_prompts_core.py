from _sites import build, raw_site
from _support import raises
from zongji.call import prompts
from zongji.call.prompts import PHRASES, file_name, parts, phrase, pieces, prompt_ids, spoken


def ids_of(site):
    return [p[0] for p in prompt_ids(site)]


def zh_site():
    raw = raw_site()
    raw["branch"]["language"] = "zh"
    return build(raw)


def test_phrase_fills_holes_and_falls_back_to_english():
    assert phrase("en", "connecting", "Sales") == "Connecting you to Sales."
    assert phrase("zh", "dbn_choice", "王小明", 2) == "王小明请按2。"
    assert phrase("fr", "goodbye") == PHRASES["en"]["goodbye"]
    assert phrase("en", "pin_locked") == "Too many wrong PINs. Goodbye."


def test_every_phrase_has_both_languages_with_the_same_holes():
    for pid in PHRASES["en"]:
        assert pid in PHRASES["zh"], pid
        assert len(pieces(PHRASES["en"][pid])) == len(pieces(PHRASES["zh"][pid])), pid


def test_pieces_cut_at_holes_and_keep_a_literal_percent():
    assert pieces("Connecting you to %s.") == ["Connecting you to ", "."]
    assert pieces("%s请按%d。") == ["", "请按", "。"]
    assert pieces("100%% sure") == ["100% sure"]
    assert spoken(".") == "" and spoken("。") == "" and spoken("  ") == ""
    assert spoken(", press ") == "press"
    assert spoken("Goodbye.") == "Goodbye."


def test_prompt_ids_list_menus_phrase_pieces_and_keys():
    got = prompt_ids(build())
    ids = [p[0] for p in got]
    assert ids[:3] == ["menu.closed", "menu.main", "menu.support"]
    by_id = {}
    for p in got:
        by_id[p[0]] = p
    assert by_id["menu.closed"] == ("menu.closed", "We are closed.", None)
    assert by_id["phrase.connecting.0"][1] == "Connecting you to"
    assert "phrase.connecting.1" not in by_id  # "." alone is not spoken
    assert by_id["phrase.dbn_choice.0"][1] == "For"
    assert by_id["phrase.dbn_choice.1"][1] == "press"
    assert by_id["phrase.pin_prompt.0"][1] == PHRASES["en"]["pin_prompt"]
    assert by_id["digit.0"][1] == "zero" and by_id["digit.hash"][1] == "hash"
    assert [i for i in ids if i.startswith("digit.")][-2:] == ["digit.star", "digit.hash"]
    assert not [i for i in ids if i.startswith("name.")]  # the site format has no name recordings
    assert len(ids) == len(set(ids))


def test_prompt_ids_follow_the_site_language():
    by_id = {}
    for p in prompt_ids(zh_site()):
        by_id[p[0]] = p[1]
    assert by_id["phrase.dbn_choice.1"] == "请按"
    assert "phrase.dbn_choice.0" not in by_id and "phrase.dbn_choice.2" not in by_id
    assert by_id["phrase.connecting.0"] == "正在为您转接"
    assert by_id["digit.1"] == "幺" and by_id["digit.star"] == "星号"


def test_a_menu_recording_is_listed_and_a_silent_menu_is_not():
    raw = raw_site()
    raw["menus"]["closed"] = {"audio": "closed.wav", "prompt": "We are closed.", "options": {"0": "operator"}}
    raw["menus"]["support"]["prompt"] = "   "
    got = prompt_ids(build(raw))
    menus = [p for p in got if p[0].startswith("menu.")]
    assert menus == [("menu.closed", "We are closed.", "closed.wav"), ("menu.main", got[1][1], None)]


def test_parts_of_a_menu_and_plain_phrases():
    site = build()
    assert parts(site, "menu", ("main",)) == ["menu.main"]
    assert parts(site, "goodbye") == ["phrase.goodbye.0"]
    assert parts(site, "pin_wrong", ()) == ["phrase.pin_wrong.0"]


def test_parts_read_a_name_recording_or_its_digits():
    site = build()
    have = {"name.201": True}
    got = parts(site, "connecting", (("name", "201"),), have.get)
    assert got == ["phrase.connecting.0", "name.201"]
    got = parts(site, "connecting", (("name", "202"),), have.get)
    assert got == ["phrase.connecting.0", "digit.2", "digit.0", "digit.2"]
    got = parts(site, "connecting", (("name", "201"),))  # no have: no recordings known
    assert got == ["phrase.connecting.0", "digit.2", "digit.0", "digit.1"]


def test_parts_of_a_choice_with_digits_and_an_int():
    site = build()
    got = parts(site, "dbn_choice", (("digits", "20*"), 3))
    assert got == ["phrase.dbn_choice.0", "digit.2", "digit.0", "digit.star", "phrase.dbn_choice.1", "digit.3"]
    got = parts(zh_site(), "dbn_choice", (("digits", "2#"), 12))
    assert got == ["digit.2", "digit.hash", "phrase.dbn_choice.1", "digit.1", "digit.2"]


def test_parts_skip_what_cannot_be_spoken():
    site = build()
    assert parts(site, "connecting", (("digits", "support"),)) == ["phrase.connecting.0"]
    assert parts(site, "connecting", ()) == ["phrase.connecting.0"]
    assert parts(site, "goodbye", (1, 2)) == ["phrase.goodbye.0"]
    raises(KeyError, parts, site, "no_such_phrase", ())


def test_every_part_is_a_listed_prompt():
    for site in (build(), zh_site()):
        listed = ids_of(site)
        for pid in PHRASES["en"]:
            for got in parts(site, pid, (("digits", "0123456789*#"), 45)):
                assert got in listed, got


def test_file_names_are_safe_and_distinct():
    assert file_name("digit.star") == "prompts/digit.star.ulaw"
    assert file_name("menu.main_2-b") == "prompts/menu.main_2-b.ulaw"
    assert file_name("menu.a b/c") == "prompts/menu.a~20b~2fc.ulaw"
    assert file_name("menu.总机") == "prompts/menu.~e6~80~bb~e6~9c~ba.ulaw"
    assert file_name("menu.~20") != file_name("menu. ")
    assert prompts.key_id("x") is None and prompts.key_id("12") is None
